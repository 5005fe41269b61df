package topology

import (
	"sort"
	"time"

	"github.com/slotrouter/slotrouter/slots"
)

// nodeAgg collects what every answer said about one node ID.
type nodeAgg struct {
	self      *Node // its own myself line, if it answered
	best      *Node // highest-epoch line from another node
	failVotes int   // lines flagging it fail
	okVotes   int   // lines (including its own) not flagging it fail
	pfail     bool  // someone flags fail?
	merged    *Node // the node as it goes into the snapshot
	failed    bool  // judged failed
	addrLine  *Node // a line that carries a usable address
	mentions  int   // answers with a line for it
	lastAns   int   // 1 + index of the last answer counted in mentions
}

// claim is the best owner found so far for a slot.
type claim struct {
	node  int32 // index into ids, -1 none
	epoch uint64
	first int32 // first owner any answer named, for disagreement
	multi bool  // answers disagree
	tie   bool  // two masters claimed it with the same epoch
}

// merge builds a view from answers. trust takes every claim at its word (a
// single view used on purpose); otherwise claims need witnesses (witness.go)
// and rep.confirm lists the nodes to ask before their claims count.
func merge(answers []answer, prev *Snapshot, rep *Report, version uint64, trust bool) *Snapshot {
	aggs := map[string]*nodeAgg{}
	var ids []string
	get := func(id string) *nodeAgg {
		a := aggs[id]
		if a == nil {
			a = &nodeAgg{}
			aggs[id] = a
			ids = append(ids, id)
		}
		return a
	}
	for ai := range answers {
		for ni := range answers[ai].nodes {
			n := &answers[ai].nodes[ni]
			a := get(n.ID)
			if a.lastAns != ai+1 {
				a.lastAns = ai + 1
				a.mentions++
			}
			if n.Flags&Myself != 0 {
				if a.self == nil {
					a.self = n
					a.okVotes++
				}
			} else {
				if n.Flags&Fail != 0 {
					a.failVotes++
				} else {
					a.okVotes++
				}
				if n.Flags&PFail != 0 {
					a.pfail = true
				}
				if a.best == nil || n.ConfigEpoch > a.best.ConfigEpoch {
					a.best = n
				}
			}
			if a.addrLine == nil && n.Addr != "" && n.Flags&(NoAddr|Handshake) == 0 {
				a.addrLine = n
			}
		}
	}
	sort.Strings(ids)
	index := make(map[string]int32, len(ids))
	for i, id := range ids {
		index[id] = int32(i)
	}
	// Judge and build the merged node of every ID.
	for _, id := range ids {
		a := aggs[id]
		a.failed = a.failVotes > 0 && (a.okVotes == 0 || 2*a.failVotes > a.failVotes+a.okVotes)
		src := a.self
		if src == nil {
			src = a.best
		}
		m := *src
		m.Flags &^= Myself | Fail | PFail
		if a.failed {
			m.Flags |= Fail
			rep.Failed = append(rep.Failed, id)
		} else if a.pfail {
			m.Flags |= PFail
		}
		if m.Addr == "" && a.addrLine != nil && m.Flags&(NoAddr|Handshake) == 0 {
			m.Addr, m.IP, m.Port = a.addrLine.Addr, a.addrLine.IP, a.addrLine.Port
		}
		m.Slots = nil
		a.merged = &m
	}

	// Slot claims, weighed by their witnesses (witness.go).
	// A node of the previous view was vouched for when it was installed.
	known := map[string]bool{}
	if prev != nil {
		for _, n := range prev.Nodes() {
			known[n.ID] = true
		}
	}
	vouched := func(idx int32) bool {
		a := aggs[ids[idx]]
		return trust || a.self != nil || a.mentions >= 2 || known[ids[idx]]
	}
	var claims []slotClaim
	for ai := range answers {
		for ni := range answers[ai].nodes {
			n := &answers[ai].nodes[ni]
			if n.Role != RoleMaster || len(n.Slots) == 0 || n.Flags&Handshake != 0 {
				continue
			}
			for _, r := range n.Slots {
				claims = append(claims, slotClaim{start: int(r.Start), end: int(r.End), idx: index[n.ID],
					epoch: n.ConfigEpoch, self: n.Flags&Myself != 0, ans: ai})
			}
		}
	}
	owner := make([]int32, slots.Count)
	for s := range owner {
		owner[s] = -1
	}
	need := map[int32]bool{}
	better := func(a, b int32) bool { return betterTie(aggs[ids[a]], aggs[ids[b]], ids[a], ids[b]) }
	resolveClaims(claims, owner, vouched, better, trust, need, rep)
	for i, id := range ids {
		if !vouched(int32(i)) {
			need[int32(i)] = true
		}
		if need[int32(i)] {
			if m := aggs[id].merged; m.Addr != "" && m.Flags&(NoAddr|Handshake) == 0 && !aggs[id].failed {
				if rep.confirm == nil {
					rep.confirm = map[string]string{}
				}
				rep.confirm[m.Addr] = id
			}
		}
	}

	// Gaps keep the previous owner unless it is failed now.
	if prev != nil {
		for s := range owner {
			if owner[s] >= 0 {
				continue
			}
			sh := prev.Owner(slots.Slot(s))
			if sh == nil {
				continue
			}
			pm := sh.Master
			if pm.ID == "" {
				continue // an id-less 3.0 SLOTS view cannot be matched to answers
			}
			if a := aggs[pm.ID]; a != nil {
				if a.failed || a.merged.Role != RoleMaster {
					continue
				}
			} else {
				if pm.Failed() {
					continue
				}
				a = get(pm.ID)
				m := *pm
				m.Slots = nil
				a.merged = &m
				index[pm.ID] = int32(len(ids) - 1)
			}
			owner[s] = index[pm.ID]
			rep.Filled++
		}
	}

	// One shard per master (handshake entries are not members yet).
	shardOf := make(map[string]int, len(ids))
	var shards []Shard
	for _, id := range ids {
		m := aggs[id].merged
		if m.Role == RoleMaster && m.Flags&Handshake == 0 && vouched(index[id]) {
			shardOf[id] = len(shards)
			shards = append(shards, Shard{Master: m})
		}
	}
	for s := 0; s < slots.Count; {
		o := owner[s]
		e := s
		for e+1 < slots.Count && owner[e+1] == o {
			e++
		}
		if o >= 0 {
			if si, ok := shardOf[ids[o]]; ok {
				shards[si].Ranges = append(shards[si].Ranges, Range{slots.Slot(s), slots.Slot(e)})
			}
		} else {
			rep.Uncovered += e - s + 1
		}
		s = e + 1
	}
	for _, id := range ids {
		m := aggs[id].merged
		if m.Role != RoleReplica || m.Flags&Handshake != 0 || !vouched(index[id]) {
			continue
		}
		si, ok := shardOf[m.MasterID]
		if !ok {
			rep.Orphans++
			continue
		}
		shards[si].Replicas = append(shards[si].Replicas, m)
	}
	for i := range shards {
		shards[i].Master.Slots = shards[i].Ranges
	}
	return NewSnapshotVersion(shards, version, time.Now())
}

// betterTie decides an equal-epoch claim: a live node beats a failed one,
// then the smaller ID, so every client resolves it the same way.
func betterTie(a, b *nodeAgg, aID, bID string) bool {
	if a.failed != b.failed {
		return !a.failed
	}
	return aID < bID
}

// SnapshotFromNodes builds a snapshot from one node's CLUSTER NODES answer
// with the same rules Discover applies to several (a single view is its own
// majority). Use it when only one answer is at hand, e.g. in tests or tools.
func SnapshotFromNodes(nodes []Node) *Snapshot {
	return merge([]answer{{nodes: nodes}}, nil, &Report{}, 0, true)
}
