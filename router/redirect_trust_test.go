package router

import (
	"context"
	"errors"
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
