package client

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/slotrouter/slotrouter/internal/redistest"
	"github.com/slotrouter/slotrouter/router"
	"github.com/slotrouter/slotrouter/slots"
	"github.com/slotrouter/slotrouter/topology"
)

// One test per row of the router's policy table; every reply is produced
// by a real server.

// testSource discovers the real cluster (through the harness's go-redis
// clients, so it does not depend on the client under test) and lets a test
// bend the view: freeze it, or serve a doctored one.
type testSource struct {
	inner router.ClusterSource
	calls atomic.Int32
	// bend, if set, may replace the real view; suspects is the router's.
	bend   atomic.Pointer[func(real *topology.Snapshot, suspects func(string) bool) *topology.Snapshot]
	frozen atomic.Bool
}

var errFrozen = errors.New("test source: view frozen")

func newTestSource(cl *redistest.Cluster) *testSource {
	byAddr := map[string]*redistest.Server{}
	for _, s := range cl.Servers() {
		byAddr[s.Addr] = s
	}
	src := &testSource{}
	src.inner = router.ClusterSource{Seeds: cl.Addrs(), Fetch: func(ctx context.Context, addr string) ([]byte, error) {
		s := byAddr[addr]
		if s == nil {
			return nil, fmt.Errorf("unknown node %s", addr)
		}
		v, err := s.Do(ctx, "CLUSTER", "NODES")
		if err != nil {
			return nil, err
		}
		text, _ := v.(string)
		return []byte(text), nil
	}}
	return src
}

func (s *testSource) Discover(ctx context.Context, prev *topology.Snapshot, suspects func(string) bool) (*topology.Snapshot, error) {
	s.calls.Add(1)
	if s.frozen.Load() {
		return nil, errFrozen
	}
	snap, err := s.inner.Discover(ctx, prev, suspects)
	if err != nil {
		return nil, err
	}
	if f := s.bend.Load(); f != nil {
		return (*f)(snap, suspects), nil
	}
	return snap, nil
}

func (s *testSource) setBend(f func(real *topology.Snapshot, suspects func(string) bool) *topology.Snapshot) {
	if f == nil {
		s.bend.Store(nil)
		return
	}
	s.bend.Store(&f)
}

// freeze makes the source serve the view it has now, whatever the cluster does.
// freeze keeps the view in use: every later discovery fails (it is still
// counted), so nothing a refresh finds can replace what the client
// patched from a MOVED before the test looks at it.
func (s *testSource) freeze() { s.frozen.Store(true) }

func ctxFor(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

func mustDoOK(t *testing.T, c *Client, args ...any) {
	t.Helper()
	if err := c.Do(ctxFor(t, 10*time.Second), args...).Err(); err != nil {
		t.Fatalf("%v: %v", args, err)
	}
}

func targetOf(t *testing.T, c *Client, s slots.Slot) string {
	t.Helper()
	addr, err := c.Router().Target(&router.Attempt{Slot: s, HasSlot: true})
	if err != nil {
		t.Fatalf("Target(%d): %v", s, err)
	}
	return addr
}

// TestMovedPatchesAndFollows: the view is frozen (stale) and the slot is
// migrated behind the client's back; the old owner answers MOVED, and the
// client must follow at once, patch that slot and ask for a refresh. With
// unknown-endpoint the server sends "MOVED <slot> :<port>", meaning the host
// the client is already talking to.
func TestMovedPatchesAndFollows(t *testing.T) {
	for _, endpoint := range []string{"ip", "unknown-endpoint"} {
		t.Run(endpoint, func(t *testing.T) {
			cl := startCluster(t, redistest.ClusterOptions{Masters: 3, PreferredEndpoint: endpoint})
			src := newTestSource(cl)
			c := newTestClient(t, cl, Options{Source: src})
			src.freeze()
			a, b := cl.Masters()[0], cl.Masters()[1]
			s := slotOwnedBy(t, cl, a, 100)
			key := keyIn(s, "moved")
			mustDoOK(t, c, "SET", key, "v1")
			cl.MigrateSlot(int(s), a, b)
			// What the old owner really says (":port" under unknown-endpoint).
			_, raw := a.Do(ctxFor(t, 5*time.Second), "GET", key)
			wantText := fmt.Sprintf("MOVED %d %s", s, b.Addr)
			if endpoint == "unknown-endpoint" {
				wantText = fmt.Sprintf("MOVED %d :%d", s, b.Port)
			}
			if raw == nil || !strings.Contains(raw.Error(), wantText) {
				t.Fatalf("old owner answered %v; want %q", raw, wantText)
			}
			movedBefore := errorStat(t, a, "MOVED")
			callsBefore := src.calls.Load()

			got, err := c.Do(ctxFor(t, 5*time.Second), "GET", key).Text()
			if err != nil || got != "v1" {
				t.Fatalf("GET after migration = %q, %v; want v1", got, err)
			}
			if n := errorStat(t, a, "MOVED"); n <= movedBefore {
				t.Fatalf("old owner sent no MOVED (count %d -> %d)", movedBefore, n)
			}
			if addr := targetOf(t, c, s); addr != b.Addr {
				t.Fatalf("slot %d routes to %s after MOVED; want %s (patched at once)", s, addr, b.Addr)
			}
			if next := targetOf(t, c, s+1); next == b.Addr && cl.MasterOf(int(s)+1).ID != b.ID {
				t.Fatalf("a MOVED for slot %d moved its neighbour too", s)
			}
			deadline := time.Now().Add(5 * time.Second)
			for src.calls.Load() == callsBefore && time.Now().Before(deadline) {
				time.Sleep(5 * time.Millisecond)
			}
			if src.calls.Load() == callsBefore {
				t.Fatal("a MOVED did not trigger a background refresh")
			}
			// Writes are definitely not executed by a MOVED: a plain SET follows too.
			mustDoOK(t, c, "SET", key, "v2")
			if v, _ := b.Do(ctxFor(t, 5*time.Second), "GET", key); v != "v2" {
				t.Fatalf("new owner has %v; want v2", v)
			}
		})
	}
}

// TestAskDuringMigration: keys already moved to the importing node are
// reached with ASKING + the command; the slot map is not changed.
func TestAskDuringMigration(t *testing.T) {
	cl := startCluster(t, redistest.ClusterOptions{Masters: 3})
	c := newTestClient(t, cl, Options{})
	a, b := cl.Masters()[0], cl.Masters()[1]
	s := slotOwnedBy(t, cl, a, 200)
	moved, stays := keyIn(s, "moved"), keyIn(s, "stays")
	mustDoOK(t, c, "SET", moved, "m")
	cl.BeginMigration(int(s), a, b)
	cl.MoveKeys(int(s), a, b)
	mustDoOK(t, c, "SET", stays, "s") // a new key during migration: ASK too
	askBefore := errorStat(t, a, "ASK")

	if got, err := c.Do(ctxFor(t, 5*time.Second), "GET", moved).Text(); err != nil || got != "m" {
		t.Fatalf("GET of a migrated key = %q, %v", got, err)
	}
	mustDoOK(t, c, "SET", keyIn(s, "new"), "n")
	if n := errorStat(t, a, "ASK"); n < askBefore+2 {
		t.Fatalf("source sent %d ASK replies; want at least 2", n-askBefore)
	}
	if addr := targetOf(t, c, s); addr != a.Addr {
		t.Fatalf("slot %d routes to %s during migration; ASK must not change the map (want %s)", s, addr, a.Addr)
	}
	cl.FinishMigration(int(s), a, b)
	for k, want := range map[string]string{moved: "m", stays: "s", keyIn(s, "new"): "n"} {
		if got, err := c.Do(ctxFor(t, 5*time.Second), "GET", k).Text(); err != nil || got != want {
			t.Fatalf("GET %s after migration = %q, %v; want %q", k, got, err, want)
		}
	}
}

// TestTryAgainRetried: MGET over keys of a migrating slot, some moved and
// some not, gets TRYAGAIN from the source until the migration finishes; the
// call retries (with back-off) and then succeeds.
func TestTryAgainRetried(t *testing.T) {
	cl := startCluster(t, redistest.ClusterOptions{Masters: 3})
	c := newTestClient(t, cl, Options{})
	a, b := cl.Masters()[0], cl.Masters()[1]
	s := slotOwnedBy(t, cl, a, 300)
	k1, k2 := keyIn(s, "1"), keyIn(s, "2")
	mustDoOK(t, c, "SET", k1, "one")
	mustDoOK(t, c, "SET", k2, "two")
	cl.BeginMigration(int(s), a, b)
	if _, err := a.Do(ctxFor(t, 5*time.Second), "MIGRATE", b.Host, b.Port, "", 0, 5000, "KEYS", k1); err != nil {
		t.Fatal(err)
	}
	before := errorStat(t, a, "TRYAGAIN")
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		time.Sleep(300 * time.Millisecond)
		cl.MoveKeys(int(s), a, b)
		cl.FinishMigration(int(s), a, b)
	}()
	start := time.Now()
	vals, err := c.Do(ctxFor(t, 15*time.Second), "MGET", k1, k2).Strings()
	took := time.Since(start)
	<-finished
	if err != nil || len(vals) != 2 || vals[0] != "one" || vals[1] != "two" {
		t.Fatalf("MGET = %v, %v", vals, err)
	}
	if n := errorStat(t, a, "TRYAGAIN"); n <= before {
		t.Fatal("the source never answered TRYAGAIN")
	}
	if took < 250*time.Millisecond {
		t.Fatalf("MGET returned after %v, before the migration could finish", took)
	}
	t.Logf("MGET rode out TRYAGAIN for %v (%d TRYAGAIN replies)", took.Round(time.Millisecond), errorStat(t, a, "TRYAGAIN")-before)
}

// TestClusterDownRetried: with full coverage required, a slot nobody owns
// makes every node answer CLUSTERDOWN; a write (not idempotent: CLUSTERDOWN
// means not executed) retries until the slot is served again.
func TestClusterDownRetried(t *testing.T) {
	cl := startCluster(t, redistest.ClusterOptions{Masters: 3, Config: []string{"cluster-require-full-coverage yes"}})
	c := newTestClient(t, cl, Options{})
	a, b := cl.Masters()[0], cl.Masters()[1]
	s := slotOwnedBy(t, cl, a, 400)
	other := slotOwnedBy(t, cl, b, 9000)
	key := keyIn(other, "down")
	for _, srv := range cl.Servers() {
		if _, err := srv.Do(ctxFor(t, 5*time.Second), "CLUSTER", "DELSLOTS", int(s)); err != nil {
			t.Fatal(err)
		}
	}
	// Wait until b itself says the cluster is down, so the call really meets CLUSTERDOWN.
	deadline := time.Now().Add(10 * time.Second)
	for {
		v, err := b.Do(ctxFor(t, 5*time.Second), "CLUSTER", "INFO")
		if err == nil && strings.Contains(fmt.Sprint(v), "cluster_state:fail") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("cluster never went down: %v %v", v, err)
		}
		time.Sleep(5 * time.Millisecond)
	}
	before := errorStat(t, b, "CLUSTERDOWN")
	readded := make(chan error, 1)
	go func() {
		time.Sleep(300 * time.Millisecond)
		_, err := a.Do(context.Background(), "CLUSTER", "ADDSLOTS", int(s))
		readded <- err
	}()
	start := time.Now()
	err := c.Do(ctxFor(t, 15*time.Second), "SET", key, "v").Err()
	took := time.Since(start)
	if e := <-readded; e != nil {
		t.Fatal(e)
	}
	if err != nil {
		t.Fatalf("SET during CLUSTERDOWN: %v", err)
	}
	n := errorStat(t, b, "CLUSTERDOWN") - before
	if n < 1 {
		t.Fatal("the node never answered CLUSTERDOWN")
	}
	if took < 250*time.Millisecond {
		t.Fatalf("SET returned after %v, before the slot was served again", took)
	}
	t.Logf("SET rode out %v of CLUSTERDOWN with %d retries", took.Round(time.Millisecond), n)
}

// TestReadOnlyReroutes: a stale view lists a replica as a master; a
// key-less write sent there gets READONLY, and the client refreshes,
// re-routes and retries.
func TestReadOnlyReroutes(t *testing.T) {
	cl := startCluster(t, redistest.ClusterOptions{Masters: 3, Replicas: 1})
	replica := cl.Replicas()[0]
	src := newTestSource(cl)
	// Until the router suspects the replica, the view is one shard whose
	// "master" is the replica.
	src.setBend(func(real *topology.Snapshot, suspects func(string) bool) *topology.Snapshot {
		if suspects(replica.Addr) {
			return real
		}
		n := *real.Node(replica.Addr)
		n.Role, n.MasterID = topology.RoleMaster, ""
		return topology.NewSnapshot([]topology.Shard{{Master: &n, Ranges: []topology.Range{{Start: 0, End: slots.Count - 1}}}})
	})
	c := newTestClient(t, cl, Options{Source: src})
	if m := c.Topology().Shards()[0].Master.Addr; m != replica.Addr {
		t.Fatalf("stale view not in place: master %s", m)
	}
	before := errorStat(t, replica, "READONLY")
	if err := c.Do(ctxFor(t, 10*time.Second), "FUNCTION", "FLUSH").Err(); err != nil {
		t.Fatalf("FUNCTION FLUSH: %v", err)
	}
	if n := errorStat(t, replica, "READONLY"); n <= before {
		t.Fatal("the replica never answered READONLY")
	}
	if m := c.Topology().Node(replica.Addr); m == nil || m.Role != topology.RoleReplica {
		t.Fatalf("the view still shows %s as %v", replica.Addr, m)
	}
}

// withoutSlot copies snap with slot s unowned.
func withoutSlot(snap *topology.Snapshot, s slots.Slot) *topology.Snapshot {
	var shards []topology.Shard
	for _, sh := range snap.Shards() {
		var rs []topology.Range
		for _, r := range sh.Ranges {
			if !r.Contains(s) {
				rs = append(rs, r)
				continue
			}
			if r.Start < s {
				rs = append(rs, topology.Range{Start: r.Start, End: s - 1})
			}
			if r.End > s {
				rs = append(rs, topology.Range{Start: s + 1, End: r.End})
			}
		}
		sh.Ranges = rs
		shards = append(shards, sh)
	}
	return topology.NewSnapshot(shards)
}

// TestNoOwnerWaitsForView: a slot without an owner in the view makes the
// call wait for a refresh, bounded by its context.
func TestNoOwnerWaitsForView(t *testing.T) {
	cl := startCluster(t, redistest.ClusterOptions{Masters: 3})
	src := newTestSource(cl)
	s := slotOwnedBy(t, cl, cl.Masters()[2], 500)
	src.setBend(func(real *topology.Snapshot, _ func(string) bool) *topology.Snapshot { return withoutSlot(real, s) })
	c := newTestClient(t, cl, Options{Source: src})
	key := keyIn(s, "noowner")

	// Never an owner: the call ends at its deadline, naming the cause.
	lag := startStallProbe(t)
	start := time.Now()
	err := c.Do(ctxFor(t, 300*time.Millisecond), "GET", key).Err()
	end := time.Now()
	lag.finish()
	took, stalled := end.Sub(start), lag.total(start.Add(300*time.Millisecond), end, 0)
	if !errors.Is(err, ErrNoOwner) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("GET without an owner: %v; want ErrNoOwner and DeadlineExceeded", err)
	}
	// Time the whole process was not scheduled past the deadline is
	// measured and not counted (see lagMonitor).
	if took < 290*time.Millisecond || took-stalled > 310*time.Millisecond {
		t.Errorf("GET without an owner returned after %v (process stalled %v past the deadline); want its 300ms deadline", took, stalled)
	}
	t.Logf("GET without an owner returned after %v (process stalled %v past the deadline)", took, stalled)

	// The owner appears while the call waits.
	go func() {
		time.Sleep(300 * time.Millisecond)
		src.setBend(nil)
	}()
	start = time.Now()
	if err := c.Do(ctxFor(t, 10*time.Second), "SET", key, "v").Err(); err != nil {
		t.Fatalf("SET once the slot has an owner: %v", err)
	}
	if took := time.Since(start); took < 250*time.Millisecond {
		t.Fatalf("SET returned after %v, before the slot had an owner", took)
	}
}

// TestRedirectLoop: two masters each believe the other owns a slot, so
// they bounce the command between them; the client stops after
// MaxRedirects hops and names the chain.
func TestRedirectLoop(t *testing.T) {
	cl := startCluster(t, redistest.ClusterOptions{Masters: 3})
	c := newTestClient(t, cl, Options{})
	a, b := cl.Masters()[0], cl.Masters()[1]
	s := slotOwnedBy(t, cl, a, 600)
	if _, err := a.Do(ctxFor(t, 5*time.Second), "CLUSTER", "SETSLOT", int(s), "NODE", b.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Do(ctxFor(t, 5*time.Second), "CLUSTER", "SETSLOT", int(s), "NODE", a.ID); err != nil {
		t.Fatal(err)
	}
	err := c.Do(ctxFor(t, 10*time.Second), "GET", keyIn(s, "loop")).Err()
	var re *RedirectError
	if !errors.As(err, &re) {
		t.Fatalf("GET on a looping slot: %v; want *RedirectError", err)
	}
	if len(re.Chain) != 17 {
		t.Fatalf("chain of %d hops; want 17 (budget 16, then give up): %v", len(re.Chain), err)
	}
	for i, hop := range re.Chain {
		if hop.Kind != router.Moved || hop.Slot != s || (hop.Addr != a.Addr && hop.Addr != b.Addr) || hop.Addr == hop.From {
			t.Fatalf("hop %d = %v; want MOVED %d between %s and %s", i, hop, s, a.Addr, b.Addr)
		}
	}
	if !strings.Contains(err.Error(), a.Addr) || !strings.Contains(err.Error(), b.Addr) {
		t.Fatalf("error does not name both nodes: %v", err)
	}
	t.Logf("%v", err)
}
