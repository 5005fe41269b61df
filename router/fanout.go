package router

import "github.com/slotrouter/slotrouter/slots"

// Leg is one node a command sent to several nodes (a fan-out) must reach.
//
// A master's leg is routed like any keyed command, by a slot its shard
// owns: when the master fails, the same Target/OnFailure/Wait rules send the
// leg to the promoted replica, so a fan-out needs no retry rules of its own.
// A node that serves no slot (a replica, or a master owning none) cannot be
// followed that way: its leg is Pinned to Addr.
type Leg struct {
	// Addr is where the current view sends the leg; "" while the shard's
	// master is down and no replica has been promoted yet.
	Addr string
	// Attempt routes a master's leg (Slot, HasSlot set). The caller adds
	// ReadOnly/Idempotent as for any command.
	Attempt Attempt
	Pinned  bool
	Master  bool
}

// Masters returns one leg per shard: every shard that owns slots, routed by
// one of its slots, and every routable master that owns none, pinned. The
// order is the view's shard order.
func (r *Router) Masters() []Leg { return r.legs(false) }

// Nodes returns Masters plus one pinned leg per routable replica.
func (r *Router) Nodes() []Leg { return r.legs(true) }

func (r *Router) legs(replicas bool) []Leg {
	t := r.tab.Load()
	// A MOVED patch can move a slot to another shard without rebuilding
	// the table, so the representative slot is found from owner itself.
	first := make([]int, len(t.shards))
	for i := range first {
		first[i] = -1
	}
	for s, i := range t.owner {
		if i != noShard && first[i] < 0 {
			first[i] = s
		}
	}
	var out []Leg
	seen := map[string]bool{}
	for i, rt := range t.shards {
		if first[i] >= 0 {
			if rt.master != "" {
				if seen[rt.master] {
					continue // a patched table can list one master twice
				}
				seen[rt.master] = true
			}
			out = append(out, Leg{Addr: rt.master, Master: true,
				Attempt: Attempt{Slot: slots.Slot(first[i]), HasSlot: true}})
		}
	}
	for _, m := range t.masters {
		if !seen[m] {
			seen[m] = true
			out = append(out, Leg{Addr: m, Master: true, Pinned: true})
		}
	}
	if replicas {
		for _, rt := range t.shards {
			for _, a := range rt.replicas {
				if !seen[a] {
					seen[a] = true
					out = append(out, Leg{Addr: a, Pinned: true})
				}
			}
		}
	}
	return out
}
