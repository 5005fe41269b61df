package client

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/slotrouter/slotrouter/internal/redistest"
	"github.com/slotrouter/slotrouter/topology"
)

// startRateWriter writes at a fixed rate whatever the replies do (each write
// on its own goroutine, 2 s deadline), as an application serving requests
// would: a stalled write does not slow the ones after it.
func startRateWriter(t *testing.T, c *Client, rate int) *writer {
	w := &writer{c: c, stop: make(chan struct{})}
	w.wg.Add(1)
	go w.every(time.Second/time.Duration(rate), func(seq int) {
		// every holds the WaitGroup until it returns, so halt's Wait cannot miss this.
		w.wg.Go(func() { w.write("r:" + strconv.Itoa(seq)) })
	})
	t.Cleanup(w.halt)
	return w
}

// maxExcusedStall caps the starvation of this process (stalls of 20 ms or
// more, as a stallProbe sees them) that a timing bound may excuse.
const maxExcusedStall = 300 * time.Millisecond

// A hand-made switch between two role-probed nodes (REPLICAOF NO ONE on B,
// then REPLICAOF B on A, with 0 s, 100 ms and 1 s between) under a writer at
// 500 writes/s with 2 s deadlines and a 500 ms probe interval:
//
//   - once the client's view names B, no write goes to A (during a
//     dual-master window B wins by lineage, though A has the higher offset);
//   - the acknowledged writes lost (taken by A after B's promotion, then
//     discarded by A's resync from B) were all sent before the client saw
//     the promotion: at most rate x (promotion to next probe);
//   - the first write on B comes within Interval + 100 ms of the promotion;
//   - no call fails with a "closed" connection: calls in flight on A when it
//     leaves the view get their replies (READONLY re-routes them to B).
func TestRoleProbeSwitch(t *testing.T) {
	redistest.Require(t)
	for _, window := range []time.Duration{0, 100 * time.Millisecond, time.Second} {
		t.Run(window.String(), func(t *testing.T) { testRoleProbeSwitch(t, window) })
	}
}

func testRoleProbeSwitch(t *testing.T, window time.Duration) {
	const (
		pw       = "data-pw"
		rate     = 500
		interval = 500 * time.Millisecond
	)
	a := redistest.StartServer(t, redistest.ServerOptions{Password: pw})
	b := redistest.StartServer(t, redistest.ServerOptions{Password: pw, ReplicaOf: a.Addr})
	redistest.WaitLinked(t, a.Addr, b)
	idA, idB := runID(t, a), runID(t, b)

	var cl atomic.Pointer[Client]
	var mu sync.Mutex
	var seen time.Time // the client's view first named B
	var splits []*SplitBrainError
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := New(ctx, Options{
		Addrs:    []string{a.Addr, b.Addr},
		Password: pw,
		RoleProbe: &RoleProbeOptions{Interval: interval, OnSplitBrain: func(e *SplitBrainError) {
			mu.Lock()
			splits = append(splits, e)
			mu.Unlock()
		}},
		OnTopologyChange: func([]topology.Change) {
			now := time.Now()
			c := cl.Load()
			if c == nil {
				return
			}
			if sh := c.Topology().Shards(); len(sh) == 1 && sh[0].Master.Addr == b.Addr {
				mu.Lock()
				if seen.IsZero() {
					seen = now
				}
				mu.Unlock()
			}
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	cl.Store(c)
	defer c.Close()

	w := startRateWriter(t, c, rate)
	w.waitAck(t, idA, time.Time{}, 10*time.Second)

	stalls := startStallProbe(t)
	tPromote := time.Now()
	mustDoServer(t, b, "REPLICAOF", "NO", "ONE")
	if window > 0 {
		time.Sleep(window) // the switch being measured: the operator's pause
	}
	mustDoServer(t, a, "REPLICAOF", b.Host, strconv.Itoa(b.Port))
	redistest.WaitLinked(t, b.Addr, a)
	w.waitAck(t, idB, time.Now().Add(300*time.Millisecond), 10*time.Second)
	stalls.finish()
	stalled := stalls.total(tPromote, time.Now(), 20*time.Millisecond)
	w.halt()
	acks := w.snapshot()

	mu.Lock()
	seenAt := seen
	split := splits
	mu.Unlock()
	if seenAt.IsZero() {
		t.Fatal("the client's view never named B")
	}
	var firstB time.Time
	var onA []any // keys acknowledged by A, to look up on B
	failed, closed := 0, 0
	var errs []string
	for _, ak := range acks {
		switch {
		case ak.err != nil:
			failed++
			if strings.Contains(ak.err.Error(), "closed") {
				closed++
			}
			if len(errs) < 3 {
				errs = append(errs, ak.err.Error())
			}
		case ak.runID == idA:
			onA = append(onA, ak.key)
			if ak.start.After(seenAt) {
				t.Errorf("write %s sent %v after the view named B went to A", ak.key, ak.start.Sub(seenAt))
			}
		case ak.runID == idB:
			if firstB.IsZero() || ak.end.Before(firstB) {
				firstB = ak.end
			}
		default:
			t.Errorf("write %s answered by unknown run_id %q", ak.key, ak.runID)
		}
	}
	// Lost: acknowledged by A but not on B once A resynced from it.
	lost, sentAfterPromotion := 0, 0
	byKey := map[string]ack{}
	for _, ak := range acks {
		byKey[ak.key] = ak
	}
	for i := 0; i < len(onA); i += 500 {
		batch := onA[i:min(i+500, len(onA))]
		vals, _ := mustDoServer(t, b, append([]any{"MGET"}, batch...)...).([]any)
		for j, v := range vals {
			if s, _ := v.(string); s != idA {
				lost++
				if byKey[batch[j].(string)].start.After(seenAt) {
					t.Errorf("lost write %v was sent after the view named B", batch[j])
				}
			}
		}
	}
	for _, ak := range acks {
		if ak.err == nil && ak.runID == idA && ak.start.After(tPromote) {
			sentAfterPromotion++
		}
	}
	detect := seenAt.Sub(tPromote)
	moved := firstB.Sub(tPromote)
	bound := rate * (detect + time.Millisecond) / time.Second
	t.Logf("switch window %v: view on B %v after the promotion, first write on B after %v (bound %v); "+
		"%d acknowledged by A after the promotion, %d lost (bound rate x detection = %d, rate x Interval = %d); "+
		"%d writes, %d failed, %d closed; test process starved %v; dual-master reports %v; errors %q",
		window, detect.Round(time.Millisecond), moved.Round(time.Millisecond), interval+100*time.Millisecond,
		sentAfterPromotion, lost, bound, rate*interval/time.Second, len(acks), failed, closed, stalled, split, errs)
	// A starved test process may excuse at most maxExcusedStall: the raw
	// figure is bounded whatever the machine does.
	excused := min(stalled, maxExcusedStall)
	if moved > interval+100*time.Millisecond+excused {
		t.Errorf("first write on B %v after its promotion, want <= %v (+%v of %v the process was starved; at most %v excused)",
			moved, interval+100*time.Millisecond, excused, stalled, maxExcusedStall)
	}
	if closed > 0 {
		t.Errorf("%d calls failed with a closed connection: %q", closed, errs)
	}
	if window > interval+100*time.Millisecond {
		if len(split) == 0 || split[0].Chosen != b.Addr || split[0].Rule != "lineage" {
			t.Errorf("dual-master window reported as %v, want B chosen by lineage", split)
		}
	}
}

// The DNS shape: plain servers given by name (auto-detected, role-probed)
// while their replicas name masters by IP, so no replica's vote counts for a
// name. When both names answer master, lineage still picks the promoted one:
// writes go to B, none to A, although A keeps the higher offset.
func TestDNSNamesDualMasterLineage(t *testing.T) {
	redistest.Require(t)
	a := redistest.StartServer(t, redistest.ServerOptions{Host: "127.0.0.2"})
	b := redistest.StartServer(t, redistest.ServerOptions{Host: "127.0.0.3", ReplicaOf: a.Addr})
	redistest.WaitLinked(t, a.Addr, b)
	idA, idB := runID(t, a), runID(t, b)
	res := &fixedResolver{answers: map[string][]string{"a.db.test": {a.Host}, "b.db.test": {b.Host}}}
	nameA := net.JoinHostPort("a.db.test", strconv.Itoa(a.Port))
	nameB := net.JoinHostPort("b.db.test", strconv.Itoa(b.Port))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := New(ctx, Options{Addrs: []string{nameA, nameB}, Resolver: res})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if id, err := c.Do(ctx, "EVAL", whoScript, 1, "before").Text(); err != nil || id != idA {
		t.Fatalf("first write ran on %q (%v), want A %s", id, err, idA)
	}

	mustDoServer(t, b, "REPLICAOF", "NO", "ONE")
	mustDoServer(t, a, "SET", "ahead", "1")
	waitFor(t, 5*time.Second, "the promoted name chosen", func() error {
		r := c.RoleReport()
		if r == nil || r.SplitBrain == nil || r.Master != nameB {
			return notYet("report %+v", r)
		}
		if r.Rule != "lineage" {
			return fmt.Errorf("master %s chosen by rule %s, want lineage: %v", r.Master, r.Rule, r.SplitBrain)
		}
		return nil
	})
	waitFor(t, 5*time.Second, "a write on B", func() error {
		id, err := c.Do(ctx, "EVAL", whoScript, 1, "after").Text()
		if err != nil || id != idB {
			return notYet("write ran on %q (%v)", id, err)
		}
		return nil
	})
}

// When neither lineage nor replicas settle a dual-master window (two
// masters with unrelated histories, no replica), writes are held: they wait
// for a view with one master, bounded by their deadline, and neither node
// takes them, although one has the higher offset.
func TestRoleProbeUndecidedHoldsWrites(t *testing.T) {
	redistest.Require(t)
	a := redistest.StartServer(t, redistest.ServerOptions{})
	b := redistest.StartServer(t, redistest.ServerOptions{})
	mustDoServer(t, a, "SET", "ahead", "1")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := New(ctx, Options{Addrs: []string{a.Addr, b.Addr}, RoleProbe: &RoleProbeOptions{Interval: 100 * time.Millisecond}})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if r := c.RoleReport(); r == nil || r.Master != "" || r.Rule != "tie" {
		t.Fatalf("role report %+v, want no master (rule tie)", r)
	}
	wctx, wcancel := context.WithTimeout(ctx, 300*time.Millisecond)
	defer wcancel()
	start := time.Now()
	err = c.Do(wctx, "SET", "held", "1").Err()
	took := time.Since(start)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("write during an undecided window: %v, want it held until its deadline", err)
	}
	if took < 250*time.Millisecond || took > 800*time.Millisecond {
		t.Fatalf("held write returned after %v, want at its 300 ms deadline", took)
	}
	for _, s := range []*redistest.Server{a, b} {
		if v := mustDoServer(t, s, "EXISTS", "held"); v != int64(0) {
			t.Fatalf("%s took the held write", s.Name)
		}
	}
}
