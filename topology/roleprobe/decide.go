package roleprobe

import (
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"
)

// NodeStatus is what one probe learnt about one node.
type NodeStatus struct {
	Addr string
	// Role as the node reports it: "master", "slave", "active-replica" (KeyDB), "sentinel";
	// empty when the probe failed (Err says why).
	Role string
	// Writable: the node accepts writes by its own account (master, or KeyDB active-replica).
	Writable bool
	// MasterAddr is the host:port a replica follows (its master_host:master_port).
	MasterAddr string
	// LinkUp: a replica's link to its master is up (ROLE state "connected", INFO
	// master_link_status:up).
	LinkUp bool
	// Offset is the replication offset (master_repl_offset of a master, the processed offset of a
	// replica).
	Offset int64
	// ReplID and ReplID2 are the node's master_replid and master_replid2 (INFO replication;
	// ReplID2 is "" when it is all zeroes, i.e. the node was never promoted). ROLE does not
	// carry them, so a round asks INFO only of the nodes claiming master when two or more do.
	ReplID, ReplID2 string
	// Via is "ROLE" or "INFO" (fallback when ROLE is refused).
	Via string
	Err error
}

// Candidate is one node that claimed to accept writes.
type Candidate struct {
	Addr string
	// Followers counts the probed replicas whose master_host:master_port is Addr.
	Followers int
	Offset    int64
	// SupersededBy names the candidate promoted out of this one's history: its master_replid2
	// is this one's master_replid. "" when no candidate is known to be newer.
	SupersededBy string
}

// Decision is the outcome of the decision rule applied to one probe round.
type Decision struct {
	Master   string   // "" when no node may take writes
	Replicas []string // replicas with a live link, not following a rejected candidate
	// Rule says why Master was chosen ("single", "lineage", "followers", "active-replica") or
	// refused ("none", "tie", "outvoted").
	Rule string
	// SplitBrain is set when two or more nodes claimed master at once.
	SplitBrain *SplitBrainError
}

// Rule names.
const (
	RuleSingle    = "single"         // exactly one node claimed master
	RuleLineage   = "lineage"        // several did; the others' histories were continued by this one
	RuleFollowers = "followers"      // lineage did not settle it; this one has the most followers
	RuleActive    = "active-replica" // all are KeyDB active replicas (multi-master by design): the first listed
	RuleNone      = "none"           // no node claimed master
	RuleTie       = "tie"            // lineage and followers did not settle it: none is chosen
	RuleOutvoted  = "outvoted"       // an unreachable listed node has more followers than the one chosen
)

// SplitBrainError reports two or more nodes claiming master in the same probe round.
type SplitBrainError struct {
	Candidates []Candidate
	Chosen     string // "" when the rule could not decide (writes then have no master)
	Rule       string
	Since      time.Time // first probe of this uninterrupted dual-master window
}

func (e *SplitBrainError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "roleprobe: split brain: %d nodes claim master (", len(e.Candidates))
	for i, c := range e.Candidates {
		if i > 0 {
			b.WriteString("; ")
		}
		fmt.Fprintf(&b, "%s: %d followers, offset %d", c.Addr, c.Followers, c.Offset)
		if c.SupersededBy != "" {
			fmt.Fprintf(&b, ", superseded by %s", c.SupersededBy)
		}
	}
	if e.Chosen != "" {
		fmt.Fprintf(&b, "); writes go to %s (rule %s)", e.Chosen, e.Rule)
	} else {
		fmt.Fprintf(&b, "); no master chosen (rule %s)", e.Rule)
	}
	return b.String()
}

// Is makes an undecided split brain match ErrNoMaster.
func (e *SplitBrainError) Is(target error) bool { return target == ErrNoMaster && e.Chosen == "" }

// Decide applies the decision rule to one probe round (nodes in Options.Addrs order):
//
//  1. Candidates are the reachable nodes that accept writes: role master, or KeyDB
//     active-replica. A Sentinel answering ROLE is ignored.
//  2. For every probed address, Followers counts the reachable replicas whose
//     master_host:master_port equals it (link up or not: the replica's configuration is what
//     the operator or Sentinel decided).
//  3. No candidate: no master (RuleNone). One: it (RuleSingle).
//  4. Lineage: a candidate whose master_replid is another candidate's master_replid2 was
//     superseded: the other was promoted out of its history (REPLICAOF NO ONE keeps the old
//     ID as master_replid2), so it is the newer master and the first is being retired. If one
//     candidate is left, it is chosen (RuleLineage).
//  5. Otherwise the replicas vote: among the candidates left, the one with strictly the most
//     Followers is chosen (RuleFollowers); equal: no master (RuleTie). Offsets never decide:
//     the node being retired keeps taking writes, so its offset is the higher one.
//  6. When every candidate is a KeyDB active-replica (writable replicas by design), the first
//     listed is used (RuleActive).
//  7. The chosen one is still refused (RuleOutvoted) when a listed node that did not answer
//     has strictly more followers: the replicas follow a master we cannot see, so the writable
//     node we do see is most likely a restarted old master.
//
// Replicas are the reachable non-writable nodes with a live link that do not follow a
// candidate other than the chosen master. Never more than one master is returned.
func Decide(nodes []NodeStatus) Decision {
	followers := map[string]int{}
	for _, n := range nodes {
		if n.Err == nil && !n.Writable && n.MasterAddr != "" {
			followers[n.MasterAddr]++
		}
	}
	var cands []Candidate
	var live []NodeStatus // the candidates' statuses, same order
	for _, n := range nodes {
		if n.Err == nil && n.Writable {
			cands = append(cands, Candidate{Addr: n.Addr, Followers: followers[n.Addr], Offset: n.Offset})
			live = append(live, n)
		}
	}
	d := Decision{Rule: RuleNone}
	if len(cands) > 0 {
		best, rule := choose(cands, live)
		switch {
		case best < 0:
			d.Rule = rule
		case outvoted(nodes, followers, cands[best].Followers):
			d.Rule = RuleOutvoted
		default:
			d.Master, d.Rule = cands[best].Addr, rule
		}
		if len(cands) > 1 {
			d.SplitBrain = &SplitBrainError{Candidates: cands, Chosen: d.Master, Rule: d.Rule}
		}
	}
	for _, n := range nodes {
		if n.Err != nil || n.Writable || n.Role == "sentinel" || n.Role == "" || !n.LinkUp {
			continue
		}
		rejected := false
		for _, c := range cands {
			if c.Addr == n.MasterAddr && c.Addr != d.Master {
				rejected = true
			}
		}
		if !rejected {
			d.Replicas = append(d.Replicas, n.Addr)
		}
	}
	return d
}

// choose applies steps 3 to 6 of Decide to the candidates (live holds their statuses) and
// marks the superseded ones. It returns the chosen index, or -1 and the rule that refused.
func choose(cands []Candidate, live []NodeStatus) (int, string) {
	if len(cands) == 1 {
		return 0, RuleSingle
	}
	active := true
	for i, n := range live {
		active = active && n.Role == "active-replica"
		for j, o := range live {
			if i != j && n.ReplID != "" && o.ReplID2 == n.ReplID {
				cands[i].SupersededBy = o.Addr
			}
		}
	}
	if active {
		return 0, RuleActive
	}
	var left []int
	for i, c := range cands {
		if c.SupersededBy == "" {
			left = append(left, i)
		}
	}
	switch len(left) {
	case 1:
		return left[0], RuleLineage
	case 0: // a cycle cannot come from Redis; trust none of it
		for i := range cands {
			left = append(left, i)
		}
	}
	best, tie := left[0], false
	for _, i := range left[1:] {
		switch {
		case cands[i].Followers > cands[best].Followers:
			best, tie = i, false
		case cands[i].Followers == cands[best].Followers:
			tie = true
		}
	}
	if tie {
		return -1, RuleTie
	}
	return best, RuleFollowers
}

func outvoted(nodes []NodeStatus, followers map[string]int, best int) bool {
	for _, n := range nodes {
		if n.Err != nil && followers[n.Addr] > best {
			return true
		}
	}
	return false
}

// joinAddr normalises host and port from a reply into host:port.
func joinAddr(host string, port int64) string {
	if host == "" || port <= 0 {
		return ""
	}
	return net.JoinHostPort(host, strconv.FormatInt(port, 10))
}
