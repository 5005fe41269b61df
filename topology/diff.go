package topology

import (
	"sort"
	"strings"

	"github.com/slotrouter/slotrouter/slots"
)

// ChangeKind says what a Change is about.
type ChangeKind uint8

const (
	// MasterChanged: a shard's slots moved to a node that was one of that
	// shard's replicas (a failover).
	MasterChanged ChangeKind = iota + 1
	// SlotsMoved: slots moved between masters (resharding), or were
	// assigned (From nil) or lost (To nil).
	SlotsMoved
	NodeAdded
	NodeRemoved
	NodeFailed
	NodeRecovered
	ReplicaAdded   // Node now replicates To (it did not before)
	ReplicaRemoved // Node no longer replicates From
	AddrChanged    // same ID, new dial address
)

var kindNames = [...]string{"", "MasterChanged", "SlotsMoved", "NodeAdded", "NodeRemoved", "NodeFailed",
	"NodeRecovered", "ReplicaAdded", "ReplicaRemoved", "AddrChanged"}

func (k ChangeKind) String() string {
	if int(k) < len(kindNames) && k != 0 {
		return kindNames[k]
	}
	return "ChangeKind(?)"
}

// Change is one difference between two snapshots. Node pointers come from
// the snapshot they describe (From from old, To and Node from new, except
// NodeRemoved whose Node is from old).
type Change struct {
	Kind    ChangeKind
	Ranges  []Range // MasterChanged, SlotsMoved
	From    *Node   // old owner / old master
	To      *Node   // new owner / new master
	Node    *Node   // the node for node-level changes
	OldAddr string  // AddrChanged
}

func (c Change) String() string {
	var b strings.Builder
	b.WriteString(c.Kind.String())
	if len(c.Ranges) > 0 {
		b.WriteByte(' ')
		n := 0
		for i, r := range c.Ranges {
			if i > 0 {
				b.WriteByte(',')
			}
			b.WriteString(r.String())
			n += r.Len()
		}
		b.WriteString(" (")
		b.WriteString(itoa(n))
		b.WriteString(" slots)")
	}
	if c.Node != nil {
		b.WriteByte(' ')
		b.WriteString(c.Node.String())
	}
	if c.Kind == AddrChanged {
		b.WriteString(" was ")
		b.WriteString(c.OldAddr)
	}
	switch {
	case c.Kind == ReplicaAdded:
		b.WriteString(" of ")
		b.WriteString(c.To.String())
	case c.Kind == ReplicaRemoved:
		b.WriteString(" from ")
		b.WriteString(c.From.String())
	case c.From != nil || c.To != nil:
		b.WriteString(" ")
		b.WriteString(c.From.String())
		b.WriteString(" -> ")
		b.WriteString(c.To.String())
	}
	return b.String()
}

func itoa(n int) string {
	var buf [20]byte
	i := len(buf)
	for {
		i--
		buf[i] = byte('0' + n%10)
		n /= 10
		if n == 0 {
			return string(buf[i:])
		}
	}
}

// Diff lists what changed from old to new: ownership first (failovers, then
// slot moves, in slot order), then node-level changes sorted by node ID.
// A nil old is treated as empty, so Diff(nil, s) lists everything as added.
func Diff(old, new *Snapshot) []Change {
	if old == nil {
		old = &Snapshot{}
	}
	if new == nil {
		new = &Snapshot{}
	}
	var out []Change
	type pair struct{ from, to string }
	moved := map[pair][]Range{}
	var order []pair
	idOf := func(sh *Shard) string {
		if sh == nil {
			return ""
		}
		return sh.Master.ID
	}
	for s := 0; s < slots.Count; {
		a, b := idOf(old.Owner(slots.Slot(s))), idOf(new.Owner(slots.Slot(s)))
		e := s
		for e+1 < slots.Count && idOf(old.Owner(slots.Slot(e+1))) == a && idOf(new.Owner(slots.Slot(e+1))) == b {
			e++
		}
		if a != b {
			p := pair{a, b}
			if _, ok := moved[p]; !ok {
				order = append(order, p)
			}
			moved[p] = append(moved[p], Range{slots.Slot(s), slots.Slot(e)})
		}
		s = e + 1
	}
	for _, p := range order {
		c := Change{Kind: SlotsMoved, Ranges: moved[p]}
		if p.from != "" {
			c.From = old.byID[p.from]
		}
		if p.to != "" {
			c.To = new.byID[p.to]
		}
		// A failover: the new owner was a replica of the old owner.
		if prev := old.byID[p.to]; c.From != nil && prev != nil && prev.Role == RoleReplica && prev.MasterID == p.from {
			c.Kind = MasterChanged
		}
		out = append(out, c)
	}
	sort.SliceStable(out, func(i, j int) bool {
		return out[i].Kind == MasterChanged && out[j].Kind != MasterChanged
	})

	var nodeChanges []Change
	for id, n := range new.byID {
		o := old.byID[id]
		switch {
		case o == nil:
			nodeChanges = append(nodeChanges, Change{Kind: NodeAdded, Node: n})
			if n.Role == RoleReplica {
				nodeChanges = append(nodeChanges, Change{Kind: ReplicaAdded, Node: n, To: new.byID[n.MasterID]})
			}
			continue
		case !o.Failed() && n.Failed():
			nodeChanges = append(nodeChanges, Change{Kind: NodeFailed, Node: n})
		case o.Failed() && !n.Failed():
			nodeChanges = append(nodeChanges, Change{Kind: NodeRecovered, Node: n})
		}
		if o.Addr != n.Addr {
			nodeChanges = append(nodeChanges, Change{Kind: AddrChanged, Node: n, OldAddr: o.Addr})
		}
		oldMaster, newMaster := replicaOf(o), replicaOf(n)
		if oldMaster != newMaster {
			if oldMaster != "" {
				nodeChanges = append(nodeChanges, Change{Kind: ReplicaRemoved, Node: n, From: old.byID[oldMaster]})
			}
			if newMaster != "" {
				nodeChanges = append(nodeChanges, Change{Kind: ReplicaAdded, Node: n, To: new.byID[newMaster]})
			}
		}
	}
	for id, o := range old.byID {
		if new.byID[id] == nil {
			nodeChanges = append(nodeChanges, Change{Kind: NodeRemoved, Node: o})
			if o.Role == RoleReplica {
				nodeChanges = append(nodeChanges, Change{Kind: ReplicaRemoved, Node: o, From: old.byID[o.MasterID]})
			}
		}
	}
	sort.SliceStable(nodeChanges, func(i, j int) bool {
		if nodeChanges[i].Node.ID != nodeChanges[j].Node.ID {
			return nodeChanges[i].Node.ID < nodeChanges[j].Node.ID
		}
		return nodeChanges[i].Kind < nodeChanges[j].Kind
	})
	return append(out, nodeChanges...)
}

func replicaOf(n *Node) string {
	if n.Role == RoleReplica {
		return n.MasterID
	}
	return ""
}
