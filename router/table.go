package router

import (
	"github.com/slotrouter/slotrouter/slots"
	"github.com/slotrouter/slotrouter/topology"
)

const noShard = 0xFFFF

// table is the router's hot-path form of a snapshot: one array index from
// slot to shard, and per shard only what routing needs. It is immutable; a
// MOVED patch copies it (32 KiB, rare) rather than locking the hot path.
type table struct {
	snap    *topology.Snapshot
	owner   [slots.Count]uint16
	shards  []route
	masters []string // routable masters, for key-less commands
	version uint64
	// gen counts installed views that differ from their predecessor; a
	// retry that saw an older gen need not back off (see Router.Wait).
	gen uint64
	// holes: some slot has no routable master, so a promotion is probably
	// under way and the router polls fast.
	holes bool
}

type route struct {
	master   string // "" when the master is not routable (failed, no address)
	replicas []string
}

func newTable(snap *topology.Snapshot, version, gen uint64) *table {
	t := &table{snap: snap, version: version, gen: gen}
	for i := range t.owner {
		t.owner[i] = noShard
	}
	if snap == nil {
		return t
	}
	for _, sh := range snap.Shards() {
		var rt route
		if sh.Master != nil && sh.Master.Routable() {
			rt.master = sh.Master.Addr
			t.masters = append(t.masters, rt.master)
		}
		for _, r := range sh.Replicas {
			if r != nil && r.Routable() {
				rt.replicas = append(rt.replicas, r.Addr)
			}
		}
		idx := uint16(len(t.shards))
		t.shards = append(t.shards, rt)
		for _, rg := range sh.Ranges {
			for s := int(rg.Start); s <= int(rg.End) && s < slots.Count; s++ {
				t.owner[s] = idx
			}
		}
	}
	for _, i := range t.owner {
		// A failed master that lost its slots to its promoted replica stays
		// listed until it is forgotten; only owners without an address count.
		if i == noShard || t.shards[i].master == "" {
			t.holes = true
			break
		}
	}
	return t
}

// withOwner returns a copy of t in which slot belongs to the shard whose
// master is addr, adding a shard when addr is not a known master (a replica
// promoted before discovery noticed). ok is false when nothing changes.
func (t *table) withOwner(slot slots.Slot, addr string) (*table, bool) {
	if i := t.owner[slot]; i != noShard && t.shards[i].master == addr {
		return t, false
	}
	n := &table{snap: t.snap, owner: t.owner, version: t.version, gen: t.gen, holes: t.holes, masters: t.masters}
	n.shards = append([]route(nil), t.shards...)
	idx := -1
	for i, rt := range n.shards {
		if rt.master == addr {
			idx = i
			break
		}
	}
	if idx < 0 {
		idx = len(n.shards)
		n.shards = append(n.shards, route{master: addr})
		n.masters = append(append([]string(nil), t.masters...), addr)
	}
	n.owner[slot] = uint16(idx)
	return n, true
}

// ownerOf is the master for slot, or "".
func (t *table) ownerOf(slot slots.Slot) (route, bool) {
	i := t.owner[slot]
	if i == noShard {
		return route{}, false
	}
	return t.shards[i], true
}

// incomplete reports slots without a routable master: the router polls
// faster while that is so, because a promotion is probably under way.
func (t *table) incomplete() bool { return t.snap != nil && t.holes }
