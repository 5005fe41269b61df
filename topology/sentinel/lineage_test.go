package sentinel_test

import (
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/slotrouter/slotrouter/internal/redistest"
	"github.com/slotrouter/slotrouter/topology/sentinel"
)

// A replica promoted (REPLICAOF NO ONE) before the Sentinels name it: the old master, which
// the Sentinels still name, says master too, but the replica's master_replid2 is its
// master_replid, so it is superseded. Discover returns a view with no master (writes wait)
// rather than the old master, and the named master again once the promotion is undone.
func TestSupersededMasterHeld(t *testing.T) {
	f := startFixture(t, 1, 1, 30*time.Second)
	sentIO, nodeIO := redistest.NewGoRedisIO(t, f.sentinelPW), redistest.NewGoRedisIO(t, f.nodePW)
	var logs redistest.SyncBuffer
	src, err := sentinel.New(sentinel.Options{
		MasterName: f.name, Sentinels: f.sentinels, Exec: sentIO.Exec, NodeExec: nodeIO.Exec,
		Reconcile: -1, Logger: slog.New(slog.NewTextHandler(&logs, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { src.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	discover := func() observation {
		t.Helper()
		snap, err := src.Discover(ctx, nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		return observe(time.Now(), snap)
	}
	if o := discover(); o.master != f.master.Addr {
		t.Fatalf("first view master %q, want %s", o.master, f.master.Addr)
	}

	b := f.replicas[0]
	if _, err := b.Do(ctx, "REPLICAOF", "NO", "ONE"); err != nil {
		t.Fatal(err)
	}
	if _, err := f.master.Do(ctx, "SET", "k", "1"); err != nil { // the old master keeps its offset ahead
		t.Fatal(err)
	}
	if o := discover(); o.master != "" {
		t.Fatalf("with %s promoted out of %s's history the view names %q, want no master", b.Addr, f.master.Addr, o.master)
	}
	if out := logs.String(); !strings.Contains(out, "superseded") || !strings.Contains(out, b.Addr) {
		t.Fatalf("hold not logged with its reason:\n%s", out)
	}

	if _, err := b.Do(ctx, "REPLICAOF", f.master.Host, f.master.Port); err != nil {
		t.Fatal(err)
	}
	redistest.WaitLinked(t, f.master.Addr, b)
	if o := discover(); o.master != f.master.Addr {
		t.Fatalf("after the promotion was undone the view names %q, want %s", o.master, f.master.Addr)
	}
}
