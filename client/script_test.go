package client

import (
	"context"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/slotrouter/slotrouter/internal/redistest"
)

// A script loaded on no node runs on every master: EVALSHA, NOSCRIPT,
// EVAL; afterwards EVALSHA alone.
func TestScriptRunsEverywhereWithoutLoading(t *testing.T) {
	cl := startCluster(t, redistest.ClusterOptions{Masters: 3, Replicas: 1})
	c := newTestClient(t, cl, Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	incr := NewScript(`return redis.call('INCRBY', KEYS[1], ARGV[1])`)

	for i, m := range cl.Masters() {
		key := keyIn(slotOwnedBy(t, cl, m, 1000*i), "script")
		for run := 1; run <= 2; run++ {
			n, err := incr.Run(ctx, c, []string{key}, 5).Int64()
			if err != nil || n != int64(5*run) {
				t.Fatalf("run %d on %s: %d, %v", run, m.Name, n, err)
			}
		}
		if got := errorStat(t, m, "NOSCRIPT"); got != 1 {
			t.Fatalf("%s answered NOSCRIPT %d times, want 1 (the first EVALSHA)", m.Name, got)
		}
		stats, err := m.Do(ctx, "INFO", "commandstats")
		if err != nil {
			t.Fatal(err)
		}
		// Two EVALSHA (the first failed with NOSCRIPT), one EVAL.
		if !strings.Contains(stats.(string), "cmdstat_eval:calls=1,") || !regexp.MustCompile(`cmdstat_evalsha:calls=2,.*failed_calls=1\b`).MatchString(stats.(string)) {
			t.Fatalf("%s: want one EVAL and two EVALSHA, one failed:\n%s", m.Name, stats)
		}
	}

	// Read-only runs go to replicas under ReplicaOnly, with EVALSHA_RO.
	ro := newTestClient(t, cl, Options{ReadPolicy: ReplicaOnly})
	get := NewScript(`return redis.call('GET', KEYS[1])`)
	m := cl.Masters()[0]
	key := keyIn(slotOwnedBy(t, cl, m, 0), "script")
	deadline := time.Now().Add(5 * time.Second)
	for {
		// The replica may not have the write yet: poll, bounded.
		v, err := get.RunRO(ctx, ro, []string{key}).Text()
		if err == nil && v == "10" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("RunRO: %q, %v; want 10", v, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
	rep := cl.ReplicasOf(m)[0]
	stats, err := rep.Do(ctx, "INFO", "commandstats")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(stats.(string), "cmdstat_eval_ro:calls=1,") {
		t.Fatalf("replica %s did not run EVAL_RO:\n%s", rep.Name, stats)
	}
}
