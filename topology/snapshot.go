package topology

import (
	"strconv"
	"strings"
	"time"

	"github.com/slotrouter/slotrouter/slots"
)

// Snapshot is an immutable view of the cluster: every shard plus a slot ->
// shard table. It is built once and afterwards only read, so one *Snapshot
// can be shared by any number of goroutines without locks; a newer view is
// a new Snapshot (swap it in with an atomic.Pointer).
type Snapshot struct {
	shards []Shard
	// owner holds index+1 into shards, 0 meaning "no owner", so the zero
	// table needs no initialisation pass.
	owner   [slots.Count]uint16
	byID    map[string]*Node
	byAddr  map[string]*Node
	nodes   []*Node
	covered int
	version uint64
	epoch   uint64
	created time.Time
}

// NewSnapshot builds a snapshot from shards with version 0 and the current
// time. See NewSnapshotVersion.
func NewSnapshot(shards []Shard) *Snapshot {
	return NewSnapshotVersion(shards, 0, time.Now())
}

// NewSnapshotVersion builds a snapshot. The shards, their nodes and ranges
// are copied, so the caller may reuse its input. Shards without a master are
// ignored (a slot must name someone to send requests to). When ranges of two
// shards overlap, the master with the higher config epoch gets the slot (the
// cluster's own rule), and each shard's Ranges are rewritten to the sorted,
// merged runs it really owns in the table.
func NewSnapshotVersion(shards []Shard, version uint64, created time.Time) *Snapshot {
	s := &Snapshot{version: version, created: created}
	n := 0
	for i := range shards {
		if shards[i].Master != nil {
			n += 1 + len(shards[i].Replicas)
		}
	}
	// One backing array for every copied node keeps building 1000 shards
	// to a handful of allocations.
	store := make([]Node, 0, n)
	ptrs := make([]*Node, 0, n)
	s.shards = make([]Shard, 0, len(shards))
	s.byID = make(map[string]*Node, n)
	s.byAddr = make(map[string]*Node, n)
	replicaPtrs := make([]*Node, 0, n)
	keep := func(src *Node) *Node {
		store = append(store, *src)
		p := &store[len(store)-1]
		ptrs = append(ptrs, p)
		if p.ID != "" {
			if _, dup := s.byID[p.ID]; !dup {
				s.byID[p.ID] = p
			}
		}
		if p.Addr != "" {
			// A routable node wins an address over a stale one (a
			// noaddr or failed entry that once had it).
			if old, dup := s.byAddr[p.Addr]; !dup || (!old.Routable() && p.Routable()) {
				s.byAddr[p.Addr] = p
			}
		}
		if p.Epoch() > s.epoch {
			s.epoch = p.Epoch()
		}
		return p
	}
	for i := range shards {
		src := &shards[i]
		if src.Master == nil || len(s.shards) >= 1<<16-1 {
			continue
		}
		sh := Shard{Master: keep(src.Master)}
		start := len(replicaPtrs)
		for _, r := range src.Replicas {
			if r != nil {
				replicaPtrs = append(replicaPtrs, keep(r))
			}
		}
		sh.Replicas = replicaPtrs[start:len(replicaPtrs):len(replicaPtrs)]
		idx := uint16(len(s.shards) + 1)
		for _, r := range src.Ranges {
			if r.Start > r.End || int(r.End) >= slots.Count {
				continue
			}
			for slot := int(r.Start); slot <= int(r.End); slot++ {
				cur := s.owner[slot]
				// cur == idx: this shard listed the slot twice; it is
				// not in s.shards yet.
				if cur == 0 || cur != idx && s.shards[cur-1].Master.ConfigEpoch < sh.Master.ConfigEpoch {
					s.owner[slot] = idx
				}
			}
		}
		s.shards = append(s.shards, sh)
	}
	s.nodes = ptrs
	s.rebuildRanges()
	return s
}

// rebuildRanges derives every shard's Ranges from the owner table in one
// pass, so Ranges and Owner can never disagree.
func (s *Snapshot) rebuildRanges() {
	counts := make([]int, len(s.shards))
	prev := uint16(0)
	for _, o := range s.owner {
		if o != 0 {
			s.covered++
			if o != prev {
				counts[o-1]++
			}
		}
		prev = o
	}
	total := 0
	for _, c := range counts {
		total += c
	}
	backing := make([]Range, 0, total)
	for i := range s.shards {
		s.shards[i].Ranges = nil
	}
	// Fill shard by shard into one backing array: shard i's runs are
	// contiguous there because we reserve counts[i] entries per shard.
	o := 0
	for i, c := range counts {
		s.shards[i].Ranges = backing[o : o : o+c]
		o += c
	}
	for slot := 0; slot < slots.Count; {
		id := s.owner[slot]
		end := slot
		for end+1 < slots.Count && s.owner[end+1] == id {
			end++
		}
		if id != 0 {
			sh := &s.shards[id-1]
			sh.Ranges = append(sh.Ranges, Range{slots.Slot(slot), slots.Slot(end)})
		}
		slot = end + 1
	}
}

// Owner returns the shard serving slot, or nil when no shard owns it. It
// is one array load and never allocates.
func (s *Snapshot) Owner(slot slots.Slot) *Shard {
	if int(slot) >= slots.Count {
		return nil
	}
	if i := s.owner[slot]; i != 0 {
		return &s.shards[i-1]
	}
	return nil
}

// Shards returns the shards; the slice is shared and must not be modified.
func (s *Snapshot) Shards() []Shard { return s.shards }

// Nodes returns every node (masters and replicas); shared, read-only.
func (s *Snapshot) Nodes() []*Node { return s.nodes }

// Node finds a node by ID or by dial address.
func (s *Snapshot) Node(addrOrID string) *Node {
	if n := s.byID[addrOrID]; n != nil {
		return n
	}
	return s.byAddr[addrOrID]
}

// ShardOf returns the shard a node (by ID or address) belongs to, as master
// or replica, or nil.
func (s *Snapshot) ShardOf(addrOrID string) *Shard {
	n := s.Node(addrOrID)
	if n == nil {
		return nil
	}
	for i := range s.shards {
		sh := &s.shards[i]
		if sh.Master == n {
			return sh
		}
		for _, r := range sh.Replicas {
			if r == n {
				return sh
			}
		}
	}
	return nil
}

// Covered is the number of slots that have an owner (16384 when complete).
func (s *Snapshot) Covered() int { return s.covered }

// Version is the sequence number given at construction (Discover uses the
// previous snapshot's version + 1).
func (s *Snapshot) Version() uint64 { return s.version }

// Epoch is the highest config epoch seen in the snapshot.
func (s *Snapshot) Epoch() uint64 { return s.epoch }

// Created is when the snapshot was built.
func (s *Snapshot) Created() time.Time { return s.created }

// Epoch returns the node's config epoch (a helper for symmetry with
// Snapshot.Epoch).
func (n *Node) Epoch() uint64 { return n.ConfigEpoch }

// String is a one-line summary for logs, e.g.
// "v3 epoch=8 16384/16384 [0-5460 127.0.0.1:30001 +1r] [...]".
func (s *Snapshot) String() string {
	var b strings.Builder
	b.WriteString("v")
	b.WriteString(strconv.FormatUint(s.version, 10))
	b.WriteString(" epoch=")
	b.WriteString(strconv.FormatUint(s.epoch, 10))
	b.WriteString(" ")
	b.WriteString(strconv.Itoa(s.covered))
	b.WriteString("/16384")
	for i := range s.shards {
		sh := &s.shards[i]
		b.WriteString(" [")
		for j, r := range sh.Ranges {
			if j > 0 {
				b.WriteByte(',')
			}
			b.WriteString(r.String())
		}
		if len(sh.Ranges) == 0 {
			b.WriteString("-")
		}
		b.WriteByte(' ')
		b.WriteString(sh.Master.String())
		if sh.Master.Failed() {
			b.WriteString(" FAIL")
		}
		if len(sh.Replicas) > 0 {
			b.WriteString(" +")
			b.WriteString(strconv.Itoa(len(sh.Replicas)))
			b.WriteString("r")
		}
		b.WriteByte(']')
	}
	return b.String()
}
