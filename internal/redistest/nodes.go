package redistest

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
)

// nodeInfo is the part of one CLUSTER NODES line the harness needs. The
// harness has its own small parser (not package topology) so that topology's
// tests can use the harness without an import cycle.
type nodeInfo struct {
	id       string
	addr     string // ip:port (cport and hostname stripped)
	hostname string
	flags    map[string]bool
	masterID string
	epoch    uint64
	linked   bool
	slots    []slotRange
}

type slotRange struct{ lo, hi int }

func (n *nodeInfo) master() bool { return n.flags["master"] }

func (n *nodeInfo) count() int {
	c := 0
	for _, r := range n.slots {
		c += r.hi - r.lo + 1
	}
	return c
}

func (n *nodeInfo) owns(slot int) bool {
	for _, r := range n.slots {
		if slot >= r.lo && slot <= r.hi {
			return true
		}
	}
	return false
}

// view is one node's CLUSTER NODES, keyed by node id.
type view struct {
	self  string
	nodes map[string]*nodeInfo
}

func parseNodes(text string) (*view, error) {
	v := &view{nodes: make(map[string]*nodeInfo)}
	for i, line := range strings.Split(strings.TrimSpace(text), "\n") {
		f := strings.Fields(line)
		if len(f) < 8 {
			return nil, fmt.Errorf("redistest: CLUSTER NODES line %d: %d fields: %q", i+1, len(f), line)
		}
		n := &nodeInfo{id: f[0], flags: make(map[string]bool), masterID: f[3], linked: f[7] == "connected"}
		addr, host, _ := strings.Cut(f[1], ",")
		n.addr, _, _ = strings.Cut(addr, "@")
		n.hostname, _, _ = strings.Cut(host, ",")
		for fl := range strings.SplitSeq(f[2], ",") {
			n.flags[fl] = true
		}
		if n.masterID == "-" {
			n.masterID = ""
		}
		n.epoch, _ = strconv.ParseUint(f[6], 10, 64)
		for _, s := range f[8:] {
			if strings.HasPrefix(s, "[") {
				continue // migrating/importing marker, not ownership
			}
			lo, hi, isRange := strings.Cut(s, "-")
			a, err := strconv.Atoi(lo)
			if err != nil {
				return nil, fmt.Errorf("redistest: CLUSTER NODES line %d: slot %q", i+1, s)
			}
			b := a
			if isRange {
				if b, err = strconv.Atoi(hi); err != nil {
					return nil, fmt.Errorf("redistest: CLUSTER NODES line %d: slot %q", i+1, s)
				}
			}
			n.slots = append(n.slots, slotRange{a, b})
		}
		if n.flags["myself"] {
			v.self = n.id
		}
		v.nodes[n.id] = n
	}
	return v, nil
}

// ownerOf returns the master owning slot in this view, or nil.
func (v *view) ownerOf(slot int) *nodeInfo {
	for _, n := range v.nodes {
		if n.master() && n.owns(slot) {
			return n
		}
	}
	return nil
}

// signature is a canonical text of slot ownership and replica links among
// the given node ids; two nodes agree on the topology when their signatures
// are equal.
func (v *view) signature(ids []string) string {
	var parts []string
	for _, id := range ids {
		n := v.nodes[id]
		if n == nil {
			parts = append(parts, id+":unknown")
			continue
		}
		if n.master() {
			var rs []string
			for _, r := range n.slots {
				rs = append(rs, fmt.Sprintf("%d-%d", r.lo, r.hi))
			}
			parts = append(parts, id+":M:"+strings.Join(rs, ","))
		} else {
			parts = append(parts, id+":R:"+n.masterID)
		}
	}
	sort.Strings(parts)
	return strings.Join(parts, " ")
}
