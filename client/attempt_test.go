package client

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/slotrouter/slotrouter/internal/redistest"
)

// Do and Pipeline drive the same attempt state machine: a command whose
// master is gone is retried by both until the retry budget runs out and
// ends in the same RetryError, with its tries counted (a pipeline used to
// report Attempts 1), while the pipeline's other commands are served.
func TestPipelineSharesDoAttemptRules(t *testing.T) {
	cl := startCluster(t, redistest.ClusterOptions{Masters: 3})
	const budget = 400 * time.Millisecond
	c := newTestClient(t, cl, Options{RetryBudget: budget})
	const dead, alive = 100, 16000
	kd, ka := keyIn(dead, "attempt"), keyIn(alive, "attempt")
	for _, k := range []string{kd, ka} {
		mustDoOK(t, c, "SET", k, "v")
	}
	if cl.MasterOf(dead) == cl.MasterOf(alive) {
		t.Fatal("test slots share a master")
	}
	cl.MasterOf(dead).Kill()

	check := func(name string, r Result, took time.Duration) {
		t.Helper()
		var re *RetryError
		if err := r.Err(); !errors.As(err, &re) || !errors.Is(err, ErrRetryBudget) {
			t.Fatalf("%s: want a RetryError matching ErrRetryBudget, got %v", name, err)
		}
		if re.Attempts < 2 || re.Last == nil {
			t.Fatalf("%s: Attempts %d, Last %v: the retries were not counted", name, re.Attempts, re.Last)
		}
		t.Logf("%s: %v after %v", name, r.Err(), took)
	}
	ctx := context.Background() // no deadline: the retry budget ends it
	start := time.Now()
	r := c.Do(ctx, "GET", kd)
	check("Do", r, time.Since(start))

	p := c.Pipeline()
	p.Do("GET", kd)
	p.Do("GET", ka)
	start = time.Now()
	res, _ := p.Exec(ctx)
	check("Pipeline", res[0], time.Since(start))
	if v, err := res[1].Text(); err != nil || v != "v" {
		t.Fatalf("pipeline, live shard: %q %v", v, err)
	}
}
