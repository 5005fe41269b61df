package router

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/slotrouter/slotrouter/topology"
)

// A redirect for another slot than the command's is the sender's protocol
// error: nothing is patched, nothing followed, the sender turns suspect.
func TestRedirectForAnotherSlotIsRefused(t *testing.T) {
	r, _ := newTestRouter(t, threeShards(), Options{RefreshInterval: time.Hour})
	a := Attempt{Slot: 12182, HasSlot: true}
	d := r.OnReply(&a, "m3:1", "MOVED 3999 r1:1")
	require.Equal(t, Done, d.Action)
	require.True(t, errors.Is(d.Err, ErrBadRedirect), d.Err)
	require.True(t, r.IsSuspect("m3:1"))
	other := Attempt{Slot: 3999, HasSlot: true}
	addr, _ := r.Target(&other)
	require.Equal(t, "m1:1", addr, "slot 3999 must not move")
}

// A redirect to a node the view does not know is not followed: the router
// rediscovers and retries by the view; once a view vouches for the node, it is.
func TestRedirectToUnknownNodeWaitsForTheView(t *testing.T) {
	r, src := newTestRouter(t, threeShards(), Options{RefreshInterval: time.Hour})
	a := Attempt{Slot: 12182, HasSlot: true}
	calls := src.calls.Load()
	d := r.OnReply(&a, "m3:1", "MOVED 12182 stranger:1")
	require.Equal(t, Retry, d.Action)
	require.True(t, d.Backoff)
	addr, _ := r.Target(&a)
	require.Equal(t, "m3:1", addr, "the stranger is not routed to")
	require.Eventually(t, func() bool { return src.calls.Load() > calls }, time.Second, time.Millisecond, "no rediscovery")

	// The cluster now knows it (a node added and given the slot).
	snap := topology.NewSnapshot(append(threeShards().Shards(), topology.Shard{
		Master: node("stranger:1", topology.RoleMaster), Ranges: []topology.Range{{Start: 12182, End: 12182}}}))
	src.snap.Store(snap)
	require.NoError(t, r.Refresh(context.Background()))
	d = r.OnReply(&a, "m3:1", "MOVED 12182 stranger:1")
	require.Equal(t, Retry, d.Action)
	addr, _ = r.Target(&a)
	require.Equal(t, "stranger:1", addr)
}

// gatedSource reads its view when asked, then holds the answer until released.
type gatedSource struct {
	snap    atomic.Pointer[topology.Snapshot]
	gated   atomic.Bool
	entered chan struct{}
	release chan struct{}
}

func (s *gatedSource) Discover(ctx context.Context, prev *topology.Snapshot, suspect func(string) bool) (*topology.Snapshot, error) {
	snap := s.snap.Load()
	if !s.gated.Load() {
		return snap, nil
	}
	s.entered <- struct{}{}
	<-s.release
	return snap, nil
}

// A Refresh that meets a discovery already in flight (started before the
// deployment changed) must not return that stale view as its own: it waits
// for it and discovers once more. CI once saw the redirect test above catch
// the background refresh half-way and keep the view without the new node.
func TestRefreshDoesNotReturnADiscoveryStartedBeforeIt(t *testing.T) {
	src := &gatedSource{entered: make(chan struct{}), release: make(chan struct{})}
	src.snap.Store(threeShards())
	r, err := New(Options{Source: src, RefreshInterval: time.Hour})
	require.NoError(t, err)
	t.Cleanup(r.Close)
	require.NoError(t, r.Refresh(context.Background())) // a view, so no background round is due
	src.gated.Store(true)
	first := make(chan error, 1)
	go func() { first <- r.Refresh(context.Background()) }()
	<-src.entered // the first discovery has read the old view

	src.snap.Store(topology.NewSnapshot(append(threeShards().Shards(), topology.Shard{
		Master: node("stranger:1", topology.RoleMaster), Ranges: []topology.Range{{Start: 12182, End: 12182}}})))
	second := make(chan error, 1)
	go func() { second <- r.Refresh(context.Background()) }()
	time.Sleep(10 * time.Millisecond) // let the second call join the first discovery
	src.release <- struct{}{}
	require.NoError(t, <-first)
	select {
	case <-src.entered:
	case err := <-second:
		t.Fatalf("the second Refresh returned (%v) without a discovery of its own", err)
	case <-time.After(5 * time.Second):
		t.Fatal("no second discovery within 5s")
	}
	src.release <- struct{}{}
	require.NoError(t, <-second)
	// The view in use vouches for the node, so its redirect is followed.
	a := Attempt{Slot: 12182, HasSlot: true}
	d := r.OnReply(&a, "m3:1", "MOVED 12182 stranger:1")
	require.Equal(t, Retry, d.Action)
	addr, _ := r.Target(&a)
	require.Equal(t, "stranger:1", addr)
}
