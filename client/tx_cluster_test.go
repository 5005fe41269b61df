package client

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/slotrouter/slotrouter/internal/redistest"
	"github.com/slotrouter/slotrouter/slots"
)

// Transactions on a cluster that moves: each rule of the issue, on real
// servers.

// The acceptance run: 50 goroutines x 20 Watch increments of one key while
// its master is failed over (CLUSTER FAILOVER) and then its slot migrated
// to another master. Exactly 1000.
func TestWatchCounterAcrossFailoverAndMigration(t *testing.T) {
	cl := startCluster(t, redistest.ClusterOptions{Masters: 3, Replicas: 1})
	c := newTestClient(t, cl, Options{})
	key := "counter:{moving}"
	slot := int(slots.Of(key))
	old := cl.MasterOf(slot)
	replica := cl.ReplicasOf(old)[0]

	var done atomic.Int64
	finished := make(chan int64)
	go func() {
		// Paced so the run outlasts the failover and the migration (the
		// workers' own speed is ~1000 increments a second).
		pace := func() { time.Sleep(time.Duration(100+rand.IntN(400)) * time.Millisecond) }
		finished <- runCounter(t, c, key, 50, 20, pace, &done)
	}()
	waitCount := func(n int64) {
		deadline := time.Now().Add(60 * time.Second)
		for done.Load() < n && time.Now().Before(deadline) {
			time.Sleep(5 * time.Millisecond)
		}
	}
	waitCount(100)
	cl.ManualFailover(replica)
	atFailover := done.Load()
	dst := cl.Masters()[0]
	for _, m := range cl.Masters() {
		if m.ID != replica.ID {
			dst = m
			break
		}
	}
	// The slot stays open (MIGRATING/IMPORTING, key already moved) for a
	// hundred increments: those run on the importing node through ASK.
	cl.BeginMigration(slot, replica, dst)
	moved := cl.MoveKeys(slot, replica, dst)
	asks := errorStat(t, replica, "ASK")
	waitCount(atFailover + 100)
	cl.FinishMigration(slot, replica, dst)
	atMigration := done.Load()
	runs := <-finished
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	n, err := c.Do(ctx, "GET", key).Int64()
	if err != nil || n != 1000 {
		t.Fatalf("counter = %d, %v; want 1000", n, err)
	}
	if atMigration >= 1000 {
		t.Fatalf("the run ended before the migration did (%d at failover, %d at migration)", atFailover, atMigration)
	}
	if errorStat(t, replica, "ASK") == asks {
		t.Fatal("no transaction met the open migration (no ASK)")
	}
	if got := cl.MasterOf(slot); got.ID != dst.ID {
		t.Fatalf("slot %d on %s, want %s", slot, got.Name, dst.Name)
	}
	t.Logf("counter 1000; failover done at %d increments, migration (%d key moved) at %d; %d runs of fn; MOVED from old master %d, ASK from the migration source %d",
		atFailover, moved, atMigration, runs, errorStat(t, old, "MOVED"), errorStat(t, replica, "ASK"))
}

// A MOVED to a command queued inside MULTI (the slot moved between WATCH
// and EXEC) discards the transaction; the whole of it runs again on the new
// owner, and only there.
func TestWatchRerunsOnNewOwnerAfterMoved(t *testing.T) {
	cl := startCluster(t, redistest.ClusterOptions{Masters: 3})
	c := newTestClient(t, cl, Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	src := cl.Masters()[0]
	slot := slotOwnedBy(t, cl, src, 100)
	dst := cl.Masters()[1]
	key := keyIn(slot, "moved")
	var addrs []string
	err := c.Watch(ctx, incrTx(ctx, key, func(tx *Tx) {
		addrs = append(addrs, tx.Addr())
		if len(addrs) == 1 {
			// The slot (empty: nothing watched is touched) moves now.
			cl.MigrateSlot(int(slot), src, dst)
		}
	}), key)
	if err != nil {
		t.Fatal(err)
	}
	if len(addrs) != 2 || addrs[0] != src.Addr || addrs[1] != dst.Addr {
		t.Fatalf("runs on %v, want %s then %s", addrs, src.Addr, dst.Addr)
	}
	if v, err := dst.Do(ctx, "GET", key); err != nil || v != "1" {
		t.Fatalf("on the new owner: %v, %v", v, err)
	}
	if errorStat(t, src, "MOVED") == 0 || errorStat(t, src, "EXECABORT") == 0 {
		t.Fatal("the old owner sent no MOVED/EXECABORT: the rerun was not caused by the move")
	}
}

// A migrating slot: WATCH of a key already moved gets ASK, and the whole
// transaction is pinned to the importing node, every command behind
// ASKING. A TxPipeline whose queued command gets ASK runs again there too,
// and a queued TRYAGAIN (keys split between the nodes) is retried until
// the migration ends.
func TestTxPinnedToImportingNodeWithAsking(t *testing.T) {
	cl := startCluster(t, redistest.ClusterOptions{Masters: 3})
	c := newTestClient(t, cl, Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	src, dst := cl.Masters()[0], cl.Masters()[2]
	slot := slotOwnedBy(t, cl, src, 200)
	moving, staying := keyIn(slot, "moving"), keyIn(slot, "staying")
	for _, k := range []string{moving, staying} {
		if err := c.Do(ctx, "SET", k, 5).Err(); err != nil {
			t.Fatal(err)
		}
	}
	cl.BeginMigration(int(slot), src, dst)
	// Move only one key, as MIGRATE does key by key.
	if _, err := src.Do(ctx, "MIGRATE", dst.Host, dst.Port, "", 0, 5000, "KEYS", moving); err != nil {
		t.Fatal(err)
	}
	asks := errorStat(t, src, "ASK")

	var addrs []string
	err := c.Watch(ctx, incrTx(ctx, moving, func(tx *Tx) { addrs = append(addrs, tx.Addr()) }), moving)
	if err != nil {
		t.Fatal(err)
	}
	if len(addrs) != 1 || addrs[0] != dst.Addr {
		t.Fatalf("Watch ran on %v, want only the importing node %s", addrs, dst.Addr)
	}
	if errorStat(t, src, "ASK") == asks {
		t.Fatal("no ASK from the migrating node")
	}

	// A TxPipeline: the queued write of a key that is not on the source
	// gets ASK, EXEC discards, and the transaction runs again on dst.
	p := c.TxPipeline()
	p.Do("INCR", moving)
	p.Do("GET", moving)
	res, err := p.Exec(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if v, _ := res[1].Text(); v != "7" {
		t.Fatalf("TxPipeline on the importing node: %v", res)
	}

	// Keys split between the nodes: TRYAGAIN until the migration ends.
	tryagain := errorStat(t, src, "TRYAGAIN")
	type out struct {
		res []Result
		err error
	}
	got := make(chan out, 1)
	go func() {
		p := c.TxPipeline()
		p.Do("MGET", moving, staying)
		p.Do("INCR", staying)
		res, err := p.Exec(ctx)
		got <- out{res, err}
	}()
	deadline := time.Now().Add(10 * time.Second)
	for errorStat(t, src, "TRYAGAIN") == tryagain && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if errorStat(t, src, "TRYAGAIN") == tryagain {
		t.Fatal("no TRYAGAIN from the migrating node")
	}
	cl.MoveKeys(int(slot), src, dst)
	cl.FinishMigration(int(slot), src, dst)
	r := <-got
	if r.err != nil {
		t.Fatal(r.err)
	}
	vals, _ := r.res[0].Strings()
	if strings.Join(vals, ",") != "7,5" {
		t.Fatalf("MGET in the retried transaction: %v", vals)
	}
	if v, _ := r.res[1].Int64(); v != 6 {
		t.Fatalf("INCR in the retried transaction: %v", r.res[1])
	}
}

// A connection lost after EXEC was written leaves it unknown whether the
// transaction ran: Watch returns the failure, and reruns only under
// Idempotent. The master is paused for writes so EXEC waits, and the
// transaction's connection is killed while it waits (so here it did not
// run).
func TestWatchExecLostMayHaveRun(t *testing.T) {
	cl := startCluster(t, redistest.ClusterOptions{Masters: 3})
	c := newTestClient(t, cl, Options{})
	key := "lost:{exec}"
	m := cl.MasterOf(int(slots.Of(key)))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	for _, idem := range []bool{false, true} {
		t.Run(fmt.Sprintf("idempotent=%v", idem), func(t *testing.T) {
			if err := c.Do(ctx, "SET", key, 10).Err(); err != nil {
				t.Fatal(err)
			}
			if _, err := m.Do(ctx, "CLIENT", "PAUSE", 20000, "WRITE"); err != nil {
				t.Fatal(err)
			}
			defer m.Do(ctx, "CLIENT", "UNPAUSE")
			wctx := ctx
			if idem {
				wctx = Idempotent(ctx)
			}
			runs := 0
			result := make(chan error, 1)
			go func() {
				result <- c.Watch(wctx, incrTx(wctx, key, func(*Tx) { runs++ }), key)
			}()
			id := waitExecBlocked(t, m)
			if _, err := m.Do(ctx, "CLIENT", "KILL", "ID", id); err != nil {
				t.Fatal(err)
			}
			if _, err := m.Do(ctx, "CLIENT", "UNPAUSE"); err != nil {
				t.Fatal(err)
			}
			err := <-result
			v, _ := c.Do(ctx, "GET", key).Int64()
			if !idem {
				var ce *ConnError
				if !errors.As(err, &ce) || !ce.Sent {
					t.Fatalf("Watch after a lost EXEC: %v, want a *ConnError with Sent", err)
				}
				if runs != 1 || v != 10 {
					t.Fatalf("%d runs, value %d: want 1 run and the value untouched", runs, v)
				}
				return
			}
			if err != nil || runs != 2 || v != 11 {
				t.Fatalf("Idempotent: %v after %d runs, value %d; want nil, 2, 11", err, runs, v)
			}
		})
	}
}

// waitExecBlocked returns the id of the client whose transaction the pause
// holds.
func waitExecBlocked(t *testing.T, m *redistest.Server) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for ctx.Err() == nil {
		v, err := m.Do(ctx, "CLIENT", "LIST")
		if err != nil {
			t.Fatal(err)
		}
		for _, line := range strings.Split(v.(string), "\n") {
			// In MULTI and blocked by the pause (7.0 holds even the queued
			// SET), with EXEC already in its query buffer.
			if strings.Contains(line, " flags=xb ") {
				f := strings.Fields(line)
				return strings.TrimPrefix(f[0], "id=")
			}
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Fatal("no client blocked in EXEC")
	return ""
}

// WATCH on a master that is failed over before EXEC: the write queued on
// the demoted node is refused (MOVED), EXEC discards the transaction, and
// the whole of it runs again on the promoted replica. One increment, never
// two, never a commit on the old node.
func TestWatchAcrossManualFailover(t *testing.T) {
	cl := startCluster(t, redistest.ClusterOptions{Masters: 3, Replicas: 1})
	c := newTestClient(t, cl, Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	key := "fo:{watch}"
	old := cl.MasterOf(int(slots.Of(key)))
	replica := cl.ReplicasOf(old)[0]
	if err := c.Do(ctx, "SET", key, 41).Err(); err != nil {
		t.Fatal(err)
	}
	var addrs []string
	err := c.Watch(ctx, incrTx(ctx, key, func(tx *Tx) {
		addrs = append(addrs, tx.Addr())
		if len(addrs) == 1 {
			cl.ManualFailover(replica)
		}
	}), key)
	if err != nil {
		t.Fatal(err)
	}
	if len(addrs) != 2 || addrs[0] != old.Addr || addrs[1] != replica.Addr {
		t.Fatalf("runs on %v, want %s then %s", addrs, old.Addr, replica.Addr)
	}
	if v, err := c.Do(ctx, "GET", key).Int64(); err != nil || v != 42 {
		t.Fatalf("after the failover: %d, %v; want 42", v, err)
	}
}
