package router

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/slotrouter/slotrouter/slots"
	"github.com/slotrouter/slotrouter/topology"
)

func TestParseRedirect(t *testing.T) {
	cases := []struct {
		msg, from string
		want      Redirect
		bad       bool
	}{
		{"MOVED 3999 127.0.0.1:6381", "127.0.0.1:7000", Redirect{Kind: Moved, Slot: 3999, Addr: "127.0.0.1:6381", From: "127.0.0.1:7000"}, false},
		{"ASK 12182 10.0.0.2:7001", "10.0.0.1:7000", Redirect{Kind: Ask, Slot: 12182, Addr: "10.0.0.2:7001", From: "10.0.0.1:7000"}, false},
		// unknown-endpoint and hostname-without-name: the sender's host.
		{"MOVED 15495 :30003", "10.1.2.3:30001", Redirect{Kind: Moved, Slot: 15495, Addr: "10.1.2.3:30003", From: "10.1.2.3:30001"}, false},
		{"MOVED 15495 ?:30003", "node-1.example.test:30001", Redirect{Kind: Moved, Slot: 15495, Addr: "node-1.example.test:30003", From: "node-1.example.test:30001"}, false},
		{"MOVED 16287 node-30003.example.test:30003", "x:1", Redirect{Kind: Moved, Slot: 16287, Addr: "node-30003.example.test:30003", From: "x:1"}, false},
		// IPv6 comes unbracketed: split at the last colon.
		{"MOVED 1 ::1:7002", "[::1]:7000", Redirect{Kind: Moved, Slot: 1, Addr: "[::1]:7002", From: "[::1]:7000"}, false},
		{"MOVED 1 fe80::1:2:7002", "x:1", Redirect{Kind: Moved, Slot: 1, Addr: "[fe80::1:2]:7002", From: "x:1"}, false},
		{"MOVED 16384 a:1", "x:1", Redirect{}, true},
		{"MOVED -1 a:1", "x:1", Redirect{}, true},
		{"MOVED 1", "x:1", Redirect{}, true},
		{"MOVED 1 a", "x:1", Redirect{}, true},
		{"MOVED 1 a:0", "x:1", Redirect{}, true},
		{"MOVED 1 a:99999", "x:1", Redirect{}, true},
		{"MOVED 1 :7000", "no-port", Redirect{}, true},
		{"ERR nope", "x:1", Redirect{}, true},
	}
	for _, c := range cases {
		got, err := ParseRedirect(c.msg, c.from)
		if c.bad {
			require.ErrorIs(t, err, ErrMalformedRedirect, c.msg)
			continue
		}
		require.NoError(t, err, c.msg)
		require.Equal(t, c.want, got, c.msg)
	}
}

func FuzzParseRedirect(f *testing.F) {
	for _, s := range []string{"MOVED 3999 127.0.0.1:6381", "ASK 1 :7000", "MOVED 15495 ?:30003", "MOVED 1 ::1:7002"} {
		f.Add(s, "127.0.0.1:7000")
	}
	f.Fuzz(func(t *testing.T, msg, from string) {
		r, err := ParseRedirect(msg, from)
		if err == nil && (r.Addr == "" || int(r.Slot) >= slots.Count) {
			t.Fatalf("accepted %q from %q as %+v", msg, from, r)
		}
	})
}

// node builds a routable node for hand-made views.
func node(addr string, role topology.Role) *topology.Node {
	return &topology.Node{ID: addr, Addr: addr, Role: role, Connected: true}
}

func threeShards() *topology.Snapshot {
	return topology.NewSnapshot([]topology.Shard{
		{Master: node("m1:1", topology.RoleMaster), Replicas: []*topology.Node{node("r1:1", topology.RoleReplica)}, Ranges: []topology.Range{{Start: 0, End: 5460}}},
		{Master: node("m2:1", topology.RoleMaster), Replicas: []*topology.Node{node("r2:1", topology.RoleReplica)}, Ranges: []topology.Range{{Start: 5461, End: 10922}}},
		{Master: node("m3:1", topology.RoleMaster), Replicas: []*topology.Node{node("r3:1", topology.RoleReplica), node("r3b:1", topology.RoleReplica)}, Ranges: []topology.Range{{Start: 10923, End: 16383}}},
	})
}

// fixedSource serves whatever view the test put in it.
type fixedSource struct {
	snap  atomic.Pointer[topology.Snapshot]
	calls atomic.Int32
	err   atomic.Pointer[error]
}

func (s *fixedSource) Discover(ctx context.Context, prev *topology.Snapshot, suspect func(string) bool) (*topology.Snapshot, error) {
	s.calls.Add(1)
	if e := s.err.Load(); e != nil {
		return nil, *e
	}
	return s.snap.Load(), nil
}

func newTestRouter(t *testing.T, snap *topology.Snapshot, opts Options) (*Router, *fixedSource) {
	src := &fixedSource{}
	src.snap.Store(snap)
	opts.Source = src
	r, err := New(opts)
	require.NoError(t, err)
	t.Cleanup(r.Close)
	require.NoError(t, r.Refresh(context.Background()))
	return r, src
}

func TestTargetAndMovedPatch(t *testing.T) {
	r, _ := newTestRouter(t, threeShards(), Options{RefreshInterval: time.Hour})
	a := Attempt{Slot: 12182, HasSlot: true}
	addr, err := r.Target(&a)
	require.NoError(t, err)
	require.Equal(t, "m3:1", addr)

	d := r.OnReply(&a, "m3:1", "MOVED 12182 r3:1")
	require.Equal(t, Retry, d.Action)
	require.False(t, d.Backoff)
	addr, _ = r.Target(&a)
	require.Equal(t, "r3:1", addr, "a MOVED is followed at once")

	// The patch outlives the attempt: a fresh command for that slot goes
	// straight to the new owner, its neighbours do not move.
	fresh := Attempt{Slot: 12182, HasSlot: true}
	addr, _ = r.Target(&fresh)
	require.Equal(t, "r3:1", addr)
	other := Attempt{Slot: 12183, HasSlot: true}
	addr, _ = r.Target(&other)
	require.Equal(t, "m3:1", addr)
}

func TestAskIsOneShot(t *testing.T) {
	r, _ := newTestRouter(t, threeShards(), Options{RefreshInterval: time.Hour})
	a := Attempt{Slot: 100, HasSlot: true}
	d := r.OnReply(&a, "m1:1", "ASK 100 m2:1")
	require.Equal(t, Retry, d.Action)
	addr, _ := r.Target(&a)
	require.Equal(t, "m2:1", addr)
	require.True(t, a.Asking())
	// The map is unchanged for everyone else.
	b := Attempt{Slot: 100, HasSlot: true}
	addr, _ = r.Target(&b)
	require.Equal(t, "m1:1", addr)
	require.False(t, b.Asking())
}

func TestRedirectBudgetNamesTheChain(t *testing.T) {
	r, _ := newTestRouter(t, threeShards(), Options{RefreshInterval: time.Hour, MaxRedirects: 3})
	a := Attempt{Slot: 7, HasSlot: true}
	var d Decision
	for i := range 4 {
		from, to := "m1:1", "m2:1"
		if i%2 == 1 {
			from, to = to, from
		}
		d = r.OnReply(&a, from, "MOVED 7 "+to)
	}
	require.Equal(t, Done, d.Action)
	var re *RedirectError
	require.ErrorAs(t, d.Err, &re)
	require.Len(t, re.Chain, 4)
	require.Contains(t, re.Error(), "MOVED 7 m2:1 -> MOVED 7 m1:1")
}

func TestRetryClasses(t *testing.T) {
	r, _ := newTestRouter(t, threeShards(), Options{RefreshInterval: time.Hour})
	ctx := context.Background()
	for _, msg := range []string{"TRYAGAIN Multiple keys request during rehashing of slot", "CLUSTERDOWN The cluster is down", "LOADING Redis is loading the dataset in memory", "MASTERDOWN Link with MASTER is down and replica-serve-stale-data is set to 'no'."} {
		a := Attempt{Slot: 1, HasSlot: true}
		d := r.OnReply(&a, "m1:1", msg)
		require.Equal(t, Retry, d.Action, msg)
		require.True(t, d.Backoff, msg)
	}
	a := Attempt{Slot: 1, HasSlot: true}
	require.Equal(t, Done, r.OnReply(&a, "m1:1", "WRONGTYPE Operation against a key holding the wrong kind of value").Action)

	boom := errors.New("connection reset")
	// Not sent: any command may be retried.
	w := Attempt{Slot: 1, HasSlot: true}
	require.Equal(t, Retry, r.OnFailure(ctx, &w, "m1:1", boom, false).Action)
	require.True(t, r.IsSuspect("m1:1"))
	// Sent: a write may have run, so it is not retried...
	w = Attempt{Slot: 1, HasSlot: true}
	d := r.OnFailure(ctx, &w, "m1:1", boom, true)
	require.Equal(t, Done, d.Action)
	require.ErrorIs(t, d.Err, boom)
	// ...unless it is read-only or marked idempotent.
	ro := Attempt{Slot: 1, HasSlot: true, ReadOnly: true}
	require.Equal(t, Retry, r.OnFailure(ctx, &ro, "m1:1", boom, true).Action)
	id := Attempt{Slot: 1, HasSlot: true, Idempotent: true}
	require.Equal(t, Retry, r.OnFailure(ctx, &id, "m1:1", boom, true).Action)
	r.ClearSuspect("m1:1")
	require.False(t, r.IsSuspect("m1:1"))
}

func TestWaitHonoursContextAndWakesOnChange(t *testing.T) {
	r, src := newTestRouter(t, threeShards(), Options{RefreshInterval: time.Hour, MinBackoff: time.Second, MaxBackoff: time.Second})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Millisecond)
	defer cancel()
	var a Attempt
	start := time.Now()
	require.ErrorIs(t, r.Wait(ctx, &a), context.DeadlineExceeded)
	require.Less(t, time.Since(start), 200*time.Millisecond)

	// A new view ends the back-off early: that is what a retry waits for.
	next := topology.NewSnapshot([]topology.Shard{
		{Master: node("r1:1", topology.RoleMaster), Ranges: []topology.Range{{Start: 0, End: 16383}}},
	})
	go func() {
		time.Sleep(20 * time.Millisecond)
		src.snap.Store(next)
		_ = r.Refresh(context.Background())
	}()
	start = time.Now()
	require.NoError(t, r.Wait(context.Background(), &a))
	require.Less(t, time.Since(start), 900*time.Millisecond)
}

func TestNoOwnerAndKeyless(t *testing.T) {
	snap := topology.NewSnapshot([]topology.Shard{
		{Master: node("m1:1", topology.RoleMaster), Ranges: []topology.Range{{Start: 0, End: 99}}},
	})
	r, _ := newTestRouter(t, snap, Options{RefreshInterval: time.Hour})
	a := Attempt{Slot: 100, HasSlot: true}
	_, err := r.Target(&a)
	require.ErrorIs(t, err, ErrNoOwner)
	var se *SlotError
	require.ErrorAs(t, err, &se)
	require.Equal(t, slots.Slot(100), se.Slot)
	require.Equal(t, Retry, r.OnFailure(context.Background(), &a, "", err, false).Action)
	k := Attempt{}
	addr, err := r.Target(&k)
	require.NoError(t, err)
	require.Equal(t, "m1:1", addr)
}

func TestReadPolicies(t *testing.T) {
	for _, tc := range []struct {
		policy ReadPolicy
		allow  map[string]bool
	}{
		{MasterOnly, map[string]bool{"m3:1": true}},
		{PreferReplica, map[string]bool{"r3:1": true, "r3b:1": true}},
		{ReplicaOnly, map[string]bool{"r3:1": true, "r3b:1": true}},
		{Random, map[string]bool{"m3:1": true, "r3:1": true, "r3b:1": true}},
	} {
		r, _ := newTestRouter(t, threeShards(), Options{RefreshInterval: time.Hour, ReadPolicy: tc.policy})
		seen := map[string]bool{}
		for range 300 {
			a := Attempt{Slot: 16000, HasSlot: true, ReadOnly: true}
			addr, err := r.Target(&a)
			require.NoError(t, err)
			require.True(t, tc.allow[addr], "%s picked %s", tc.policy, addr)
			seen[addr] = true
		}
		require.Equal(t, tc.allow, seen, "%s should spread over all allowed nodes", tc.policy)
		w := Attempt{Slot: 16000, HasSlot: true}
		addr, _ := r.Target(&w)
		require.Equal(t, "m3:1", addr, "writes always go to the master")
	}

	// Suspect replicas are skipped; with none left PreferReplica falls back
	// to the master and ReplicaOnly refuses.
	r, _ := newTestRouter(t, threeShards(), Options{RefreshInterval: time.Hour, ReadPolicy: PreferReplica})
	r.MarkSuspect("r1:1")
	a := Attempt{Slot: 0, HasSlot: true, ReadOnly: true}
	addr, _ := r.Target(&a)
	require.Equal(t, "m1:1", addr)
	ro, _ := newTestRouter(t, threeShards(), Options{RefreshInterval: time.Hour, ReadPolicy: ReplicaOnly})
	ro.MarkSuspect("r1:1")
	_, err := ro.Target(&a)
	require.ErrorIs(t, err, ErrNoReplica)
}

func TestNearestUsesToleranceBand(t *testing.T) {
	r, _ := newTestRouter(t, threeShards(), Options{RefreshInterval: time.Hour, ReadPolicy: Nearest, LatencyTolerance: 500 * time.Microsecond})
	r.ObserveLatency("m3:1", 5*time.Millisecond)
	r.ObserveLatency("r3:1", 300*time.Microsecond)
	r.ObserveLatency("r3b:1", 600*time.Microsecond)
	seen := map[string]bool{}
	for range 200 {
		a := Attempt{Slot: 16000, HasSlot: true, ReadOnly: true}
		addr, err := r.Target(&a)
		require.NoError(t, err)
		seen[addr] = true
	}
	require.Equal(t, map[string]bool{"r3:1": true, "r3b:1": true}, seen)
}

func TestSuspectSpeedsUpPolling(t *testing.T) {
	r, src := newTestRouter(t, threeShards(), Options{RefreshInterval: time.Hour, DegradedInterval: 10 * time.Millisecond})
	base := src.calls.Load()
	r.MarkSuspect("m1:1")
	deadline := time.Now().Add(2 * time.Second)
	for src.calls.Load() < base+5 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	require.GreaterOrEqual(t, src.calls.Load(), base+5, "a suspect node makes the router poll fast")
}

func BenchmarkTarget(b *testing.B) {
	src := &fixedSource{}
	src.snap.Store(threeShards())
	r, _ := New(Options{Source: src, RefreshInterval: time.Hour})
	defer r.Close()
	_ = r.Refresh(context.Background())
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		a := Attempt{Slot: slots.Slot(i & (slots.Count - 1)), HasSlot: true}
		if _, err := r.Target(&a); err != nil {
			b.Fatal(err)
		}
	}
}

func TestWaitSkipsBackoffAfterNewView(t *testing.T) {
	r, src := newTestRouter(t, threeShards(), Options{RefreshInterval: time.Hour, MinBackoff: time.Second, MaxBackoff: time.Second})
	a := Attempt{Slot: 1, HasSlot: true}
	_, err := r.Target(&a)
	require.NoError(t, err)
	// The new view lands while the failure is still in flight, before Wait
	// is even called: the retry must not sleep through its back-off.
	src.snap.Store(topology.NewSnapshot([]topology.Shard{
		{Master: node("r1:1", topology.RoleMaster), Ranges: []topology.Range{{Start: 0, End: 16383}}},
	}))
	require.NoError(t, r.Refresh(context.Background()))
	start := time.Now()
	require.NoError(t, r.Wait(context.Background(), &a))
	require.Less(t, time.Since(start), 100*time.Millisecond)
	addr, err := r.Target(&a)
	require.NoError(t, err)
	require.Equal(t, "r1:1", addr)
	// A refresh that changes nothing is no reason to hurry.
	require.NoError(t, r.Refresh(context.Background()))
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	require.ErrorIs(t, r.Wait(ctx, &a), context.DeadlineExceeded)
}

func TestServesAndKeylessAvoidSuspects(t *testing.T) {
	r, _ := newTestRouter(t, threeShards(), Options{RefreshInterval: time.Hour})
	a := Attempt{Slot: 12182, HasSlot: true}
	require.True(t, r.Serves(&a, "m3:1"))
	require.True(t, r.Serves(&a, "r3b:1"))
	require.False(t, r.Serves(&a, "m1:1"))
	k := Attempt{}
	require.True(t, r.Serves(&k, "m2:1"))
	require.False(t, r.Serves(&k, "r2:1"))

	r.MarkSuspect("m1:1")
	r.MarkSuspect("m2:1")
	for range 50 {
		addr, err := r.Target(&Attempt{})
		require.NoError(t, err)
		require.Equal(t, "m3:1", addr, "key-less commands avoid suspect masters")
	}
}

func TestFailedMasterWithoutSlotsIsNotDegraded(t *testing.T) {
	failed := node("old:1", topology.RoleMaster)
	failed.Flags |= topology.Fail
	snap := topology.NewSnapshot([]topology.Shard{
		{Master: node("m1:1", topology.RoleMaster), Ranges: []topology.Range{{Start: 0, End: 16383}}},
		{Master: failed},
	})
	require.False(t, newTable(snap, 1, 1).incomplete(), "a failed master that lost its slots is no hole")
	withHole := topology.NewSnapshot([]topology.Shard{
		{Master: node("m1:1", topology.RoleMaster), Ranges: []topology.Range{{Start: 0, End: 16000}}},
		{Master: failed, Ranges: []topology.Range{{Start: 16001, End: 16383}}},
	})
	tab := newTable(withHole, 1, 1)
	require.True(t, tab.incomplete())
	_, ok := tab.ownerOf(16100)
	require.True(t, ok)
	r, _ := newTestRouter(t, withHole, Options{RefreshInterval: time.Hour})
	_, err := r.Target(&Attempt{Slot: 16100, HasSlot: true})
	require.ErrorIs(t, err, ErrNoOwner, "a master flagged fail is never a target")
}

func TestClusterSourceSkipsSuspectAndFailedNodes(t *testing.T) {
	const nodes = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa 127.0.0.1:1@2 myself,master - 0 0 1 connected 0-8191\n" +
		"bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb 127.0.0.1:3@4 master,fail - 0 0 2 disconnected 8192-16383\n"
	var asked sync.Map
	src := &ClusterSource{
		Seeds: []string{"127.0.0.1:1", "127.0.0.1:3", "127.0.0.1:5"},
		Fetch: func(ctx context.Context, addr string) ([]byte, error) {
			asked.Store(addr, true)
			return []byte(nodes), nil
		},
	}
	prev, err := src.Discover(context.Background(), nil, nil)
	require.NoError(t, err)
	asked.Clear()
	_, err = src.Discover(context.Background(), prev, func(addr string) bool { return addr == "127.0.0.1:5" })
	require.NoError(t, err)
	_, failedAsked := asked.Load("127.0.0.1:3")
	_, suspectAsked := asked.Load("127.0.0.1:5")
	_, okAsked := asked.Load("127.0.0.1:1")
	require.False(t, failedAsked, "a node the last view flags failed is not asked")
	require.False(t, suspectAsked, "a suspect is not asked")
	require.True(t, okAsked)

	// When every node looks bad, asking them all beats learning nothing.
	asked.Clear()
	_, err = src.Discover(context.Background(), prev, func(string) bool { return true })
	require.NoError(t, err)
	_, okAsked = asked.Load("127.0.0.1:1")
	require.True(t, okAsked)
}

// A failure that lands as the caller's deadline passes still matches the
// deadline, so callers can tell "my time ran out" from "the node broke".
func TestFailureAtDeadlineMatchesContext(t *testing.T) {
	r, _ := newTestRouter(t, threeShards(), Options{RefreshInterval: time.Hour})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	boom := errors.New("no reply within 2s")
	a := Attempt{Slot: 1, HasSlot: true}
	d := r.OnFailure(ctx, &a, "m1:1", boom, true)
	require.Equal(t, Done, d.Action)
	require.ErrorIs(t, d.Err, context.Canceled)
	require.ErrorIs(t, d.Err, boom)
	var ne *NodeError
	require.ErrorAs(t, d.Err, &ne)
	require.Equal(t, "m1:1", ne.Addr)
}
