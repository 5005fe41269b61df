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
}

// Decision is the outcome of the decision rule applied to one probe round.
type Decision struct {
	Master   string   // "" when no node may take writes
	Replicas []string // replicas with a live link, not following a rejected candidate
	// Rule says why Master was chosen ("single", "followers", "offset") or refused
	// ("none", "tie", "outvoted").
	Rule string
	// SplitBrain is set when two or more nodes claimed master at once.
	SplitBrain *SplitBrainError
}

// Rule names.
const (
	RuleSingle    = "single"    // exactly one node claimed master
	RuleFollowers = "followers" // several did; this one has the most followers
	RuleOffset    = "offset"    // several did with equal followers; this one has the highest offset
	RuleNone      = "none"      // no node claimed master
	RuleTie       = "tie"       // several did, equal on followers and offset: none is chosen
	RuleOutvoted  = "outvoted"  // an unreachable listed node has more followers than any claimant
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

// Decide applies the decision rule to one probe round (nodes in any order):
//
//  1. Candidates are the reachable nodes that accept writes: role master, or KeyDB
//     active-replica. A Sentinel answering ROLE is ignored.
//  2. For every probed address, Followers counts the reachable replicas whose
//     master_host:master_port equals it (link up or not: the replica's configuration is what
//     the operator or Sentinel decided).
//  3. No candidate: no master (RuleNone).
//  4. Candidates are ranked by Followers, then by Offset. The top one is chosen (RuleSingle when
//     alone, else RuleFollowers or RuleOffset by which key separated it); equal on both: no
//     master (RuleTie).
//  5. The chosen one is still refused (RuleOutvoted) when a listed node that did not answer
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
	for _, n := range nodes {
		if n.Err == nil && n.Writable {
			cands = append(cands, Candidate{Addr: n.Addr, Followers: followers[n.Addr], Offset: n.Offset})
		}
	}
	d := Decision{Rule: RuleNone}
	if len(cands) > 0 {
		best, rule := 0, RuleSingle
		tie := false
		for i := 1; i < len(cands); i++ {
			c, b := cands[i], cands[best]
			switch {
			case c.Followers > b.Followers || (c.Followers == b.Followers && c.Offset > b.Offset):
				best, tie = i, false
			case c.Followers == b.Followers && c.Offset == b.Offset:
				tie = true
			}
		}
		if len(cands) > 1 {
			rule = RuleFollowers
			for i, c := range cands {
				if i != best && c.Followers == cands[best].Followers {
					rule = RuleOffset
				}
			}
		}
		switch {
		case tie:
			d.Rule = RuleTie
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
