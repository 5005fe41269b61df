package client

import (
	"context"
	"testing"
	"time"

	"github.com/slotrouter/slotrouter/internal/redistest"
)

// A pipeline's commands for one node run in queue order, blocking ones
// included. [DEL q, RPUSH q x, BLPOP q 1] used to return (0, 1, nil) after
// the BLPOP's full second: the BLPOP ran on its own connection before the
// RPUSH was sent. Now it pops x at once.
func TestPipelineBlockingInQueueOrder(t *testing.T) {
	srv := redistest.StartServer(t, redistest.ServerOptions{})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	c := standaloneClient(t, srv, Options{})
	for round := range 3 { // the pipeline is reused
		p := c.Pipeline()
		p.Do("SET", "order:before", round)
		p.Do("DEL", "order:q")
		p.Do("RPUSH", "order:q", "x", "y")
		p.Do("BLPOP", "order:q", 1)
		p.Do("LLEN", "order:q")
		p.Do("GET", "order:before")
		start := time.Now()
		res, err := p.Exec(ctx)
		took := time.Since(start)
		if err != nil {
			t.Fatalf("round %d: %v", round, err)
		}
		if n, _ := res[2].Int64(); n != 2 {
			t.Fatalf("round %d: RPUSH = %s", round, res[2])
		}
		if kv, err := res[3].Strings(); err != nil || len(kv) != 2 || kv[0] != "order:q" || kv[1] != "x" {
			t.Fatalf("round %d: BLPOP = %s %v, want [order:q x]", round, res[3], err)
		}
		if n, _ := res[4].Int64(); n != 1 {
			t.Fatalf("round %d: LLEN after the BLPOP = %s, want 1", round, res[4])
		}
		if v, _ := res[5].Int64(); v != int64(round) {
			t.Fatalf("round %d: GET = %s", round, res[5])
		}
		if took > 500*time.Millisecond {
			t.Fatalf("round %d: took %v: the BLPOP waited instead of popping what the pipeline pushed", round, took)
		}
	}
}
