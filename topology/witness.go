package topology

import (
	"context"
	"errors"
	"sort"
	"strings"
	"time"

	"github.com/slotrouter/slotrouter/slots"
)

// A view is only as good as its witnesses. One node's CLUSTER NODES answer
// may be stale, buggy or hostile; what it says is installed only when the
// cluster backs it:
//
//   - A slot owner is confirmed when its own answer claims the slot
//     (myself,master with the slot), or when at least two answers name it
//     and no answer names another owner.
//   - The slot goes to the confirmed claimant with the highest config
//     epoch. A higher-epoch claim that is not confirmed is checked by asking
//     the named node itself (one extra round, only for such nodes); until it
//     confirms, the slot keeps its confirmed owner (a claim one answer
//     makes) or its previous owner (a claim several answers make: a
//     failover the survivors agree on, whose new master did not answer).
//   - A node that only one answer mentions, and that did not answer
//     itself, is asked too, and left out of the view until it does.
//   - A node asked for confirmation counts only when it answers as the node
//     it was named as (same ID) and its own view shares a node with the
//     answers that named it: a member of another cluster confirms nothing.

// ErrForeignSeeds is returned (inside *ForeignSeedsError) when the seeds
// answer as members of different clusters: no node ID in common.
var ErrForeignSeeds = errors.New("topology: seeds belong to different clusters")

// ForeignSeedsError names the seeds of each cluster found.
type ForeignSeedsError struct {
	Groups [][]string // seed addresses, one group per cluster
}

func (e *ForeignSeedsError) Error() string {
	parts := make([]string, len(e.Groups))
	for i, g := range e.Groups {
		parts[i] = "[" + strings.Join(g, " ") + "]"
	}
	return ErrForeignSeeds.Error() + ": " + strings.Join(parts, " vs ")
}

func (e *ForeignSeedsError) Unwrap() error { return ErrForeignSeeds }

// slotClaim is one answer's statement that node idx owns start..end.
type slotClaim struct {
	start, end int
	idx        int32
	epoch      uint64
	self       bool // the claimant's own answer
	ans        int
}

// claimGroup sums what the answers covering one segment say about one node.
type claimGroup struct {
	idx     int32
	epoch   uint64
	wit     int // answers naming it
	lastAns int
	self    bool
}

// resolveClaims fills owner from claims and reports in need the nodes whose
// higher-epoch claims wait for their own confirmation. trust accepts every
// claim as confirmed (a lone view used on purpose, SnapshotFromNodes).
func resolveClaims(claims []slotClaim, owner []int32, vouched func(int32) bool, better func(a, b int32) bool,
	trust bool, need map[int32]bool, rep *Report) {
	type event struct {
		pos int
		add bool
		i   int
	}
	events := make([]event, 0, 2*len(claims))
	for i, c := range claims {
		events = append(events, event{c.start, true, i}, event{c.end + 1, false, i})
	}
	sort.Slice(events, func(i, j int) bool { return events[i].pos < events[j].pos })
	var active []int
	var groups []claimGroup
	for e := 0; e < len(events); {
		pos := events[e].pos
		for ; e < len(events) && events[e].pos == pos; e++ {
			if events[e].add {
				active = append(active, events[e].i)
				continue
			}
			for k, a := range active {
				if a == events[e].i {
					active[k] = active[len(active)-1]
					active = active[:len(active)-1]
					break
				}
			}
		}
		end := slots.Count
		if e < len(events) {
			end = min(events[e].pos, slots.Count)
		}
		if len(active) == 0 || pos >= slots.Count || end <= pos {
			continue
		}
		groups = groups[:0]
		for _, ci := range active {
			c := &claims[ci]
			gi := -1
			for k := range groups {
				if groups[k].idx == c.idx {
					gi = k
					break
				}
			}
			if gi < 0 {
				groups = append(groups, claimGroup{idx: c.idx, lastAns: -1})
				gi = len(groups) - 1
			}
			g := &groups[gi]
			if c.ans != g.lastAns {
				g.wit++
				g.lastAns = c.ans
			}
			g.epoch = max(g.epoch, c.epoch)
			g.self = g.self || c.self
		}
		contradicted := len(groups) > 1
		best, tie := -1, false
		for k := range groups {
			g := &groups[k]
			if !(trust || g.self || (g.wit >= 2 && !contradicted && vouched(g.idx))) {
				continue
			}
			switch {
			case best < 0 || g.epoch > groups[best].epoch:
				best, tie = k, false
			case g.epoch == groups[best].epoch:
				tie = true
				if better(g.idx, groups[best].idx) {
					best = k
				}
			}
		}
		o := int32(-1)
		if best >= 0 {
			o = groups[best].idx
		}
		for k := range groups {
			g := &groups[k]
			// A confirmed claim with a higher epoch would be best: what is
			// left above best is unconfirmed.
			if k == best || (best >= 0 && g.epoch <= groups[best].epoch) || trust {
				continue
			}
			need[g.idx] = true
			if g.wit >= 2 {
				// Several answers agree on a newer owner that has not
				// confirmed yet: better the previous owner than an old claim.
				o = -1
			}
		}
		for s := pos; s < end; s++ {
			owner[s] = o
		}
		n := end - pos
		if contradicted {
			rep.DisagreeingSlots += n
		}
		if tie {
			rep.EpochConflicts += n
		}
	}
}

// splitClusters groups the answers by shared node IDs. Groups that claim
// no slot (a node that was reset and knows only itself) are not a cluster
// and are dropped. More than one group claiming slots means the seeds
// belong to different clusters: groups then names the addresses of each.
func splitClusters(answers []answer) (keep []answer, groups [][]string) {
	if len(answers) < 2 {
		return answers, nil
	}
	parent := make([]int, len(answers))
	for i := range parent {
		parent[i] = i
	}
	find := func(i int) int {
		for parent[i] != i {
			parent[i] = parent[parent[i]]
			i = parent[i]
		}
		return i
	}
	seen := map[string]int{}
	claims := make([]bool, len(answers))
	for ai := range answers {
		for _, n := range answers[ai].nodes {
			if n.Role == RoleMaster && len(n.Slots) > 0 {
				claims[ai] = true
			}
			if prev, ok := seen[n.ID]; ok {
				parent[find(ai)] = find(prev)
			} else {
				seen[n.ID] = ai
			}
		}
	}
	byRoot := map[int][]string{}
	claiming := map[int]bool{}
	var roots []int
	for ai := range answers {
		r := find(ai)
		if claims[ai] && !claiming[r] {
			claiming[r] = true
			roots = append(roots, r)
		}
		byRoot[r] = append(byRoot[r], answers[ai].addr)
	}
	if len(roots) > 1 {
		for _, r := range roots {
			groups = append(groups, byRoot[r])
		}
		return nil, groups
	}
	if len(roots) == 0 {
		return answers, nil
	}
	for ai := range answers {
		if find(ai) == roots[0] {
			keep = append(keep, answers[ai])
		}
	}
	return keep, nil
}

// belongs reports whether a confirmation answer from addr speaks for the
// node it was asked as: its myself line has wantID and its view shares
// another node with the answers that named it (known IDs).
func belongs(a answer, wantID string, known map[string]bool) bool {
	selfOK, shared := false, false
	for _, n := range a.nodes {
		if n.Flags&Myself != 0 {
			selfOK = n.ID == wantID
			continue
		}
		if known[n.ID] {
			shared = true
		}
	}
	return selfOK && shared
}

// confirmRound asks the nodes merge could not vouch for about themselves
// and merges again with the answers that speak for them (belongs).
func confirmRound(ctx context.Context, fetch Fetcher, answers []answer, prev *Snapshot, rep *Report,
	version uint64, straggle time.Duration) *Snapshot {
	want := rep.confirm
	known := map[string]bool{}
	for _, a := range answers {
		for _, n := range a.nodes {
			known[n.ID] = true
		}
	}
	targets := make([]string, 0, len(want))
	for addr := range want {
		targets = append(targets, addr)
	}
	sort.Strings(targets)
	sub := &Report{Errors: map[string]error{}}
	extra := fetchAll(ctx, fetch, targets, straggle, sub)
	all := append([]answer(nil), answers...)
	got := map[string]bool{}
	for _, a := range extra {
		if belongs(a, want[a.addr], known) {
			all = append(all, a)
			got[a.addr] = true
			rep.Answered = append(rep.Answered, a.addr)
		}
	}
	for _, addr := range targets {
		if !got[addr] {
			rep.Unconfirmed = append(rep.Unconfirmed, addr)
		}
	}
	for addr, err := range sub.Errors {
		if _, ok := rep.Errors[addr]; !ok {
			rep.Errors[addr] = err
		}
	}
	rep.Asked = append(rep.Asked, targets...)
	rep.reset()
	// A lone answer nobody could second is its own majority, as before.
	return merge(sortAnswers(all), prev, rep, version, len(all) == 1)
}

// reset clears what merge computes, before merging again.
func (r *Report) reset() {
	*r = Report{Asked: r.Asked, Answered: r.Answered, Errors: r.Errors, Unconfirmed: r.Unconfirmed}
}

// sameCluster drops answers that share no node ID with the previous view:
// a seed that now belongs to another cluster (its name was re-pointed, the
// cluster was rebuilt) has no say in this one.
func sameCluster(answers []answer, prev *Snapshot, rep *Report) []answer {
	known := map[string]bool{}
	for _, n := range prev.Nodes() {
		known[n.ID] = true
	}
	if len(known) == 0 {
		return answers
	}
	out := answers[:0]
	for _, a := range answers {
		ok := false
		for _, n := range a.nodes {
			if known[n.ID] {
				ok = true
				break
			}
		}
		if ok {
			out = append(out, a)
		} else {
			rep.Errors[a.addr] = ErrForeignSeeds
		}
	}
	return out
}
