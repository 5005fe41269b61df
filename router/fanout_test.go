package router

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/slotrouter/slotrouter/topology"
)

func TestLegs(t *testing.T) {
	snap := topology.NewSnapshot(append(threeShards().Shards(),
		topology.Shard{Master: node("empty:1", topology.RoleMaster)})) // a master owning no slot
	r, _ := newTestRouter(t, snap, Options{})

	masters := r.Masters()
	require.Len(t, masters, 4)
	for i, want := range []string{"m1:1", "m2:1", "m3:1"} {
		leg := masters[i]
		require.Equal(t, want, leg.Addr)
		require.True(t, leg.Master && !leg.Pinned && leg.Attempt.HasSlot)
		a := leg.Attempt
		addr, err := r.Target(&a)
		require.NoError(t, err)
		require.Equal(t, want, addr, "the leg's slot routes to its master")
	}
	require.Equal(t, Leg{Addr: "empty:1", Master: true, Pinned: true}, masters[3])

	nodes := r.Nodes()
	require.Len(t, nodes, 8)
	var replicas []string
	for _, l := range nodes[4:] {
		require.True(t, l.Pinned && !l.Master)
		replicas = append(replicas, l.Addr)
	}
	require.Equal(t, []string{"r1:1", "r2:1", "r3:1", "r3b:1"}, replicas)

	// A MOVED patch hands slot 0 to m2: m1 keeps a leg by another slot, m2
	// is not asked twice.
	r.patch(0, "m2:1")
	masters = r.Masters()
	require.Len(t, masters, 4)
	require.NotEqual(t, 0, int(masters[0].Attempt.Slot))
}
