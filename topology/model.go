package topology

import (
	"net"
	"net/netip"
	"strconv"
	"strings"

	"github.com/slotrouter/slotrouter/slots"
)

// Role is what a node does in its shard.
type Role uint8

const (
	RoleMaster Role = iota
	RoleReplica
)

func (r Role) String() string {
	if r == RoleReplica {
		return "replica"
	}
	return "master"
}

// Flags are the CLUSTER NODES flags of a node, as one bit set so that
// checking "may I route here" is a single AND.
type Flags uint16

const (
	Myself Flags = 1 << iota
	Master
	Replica
	PFail // "fail?": one node's opinion, the node is still used
	Fail
	Handshake
	NoAddr
	NoFailover
	NoFlags
	// Unknown is set when a flag this package does not know was present
	// (newer servers may add flags; they must not break parsing).
	Unknown
)

// unroutable are the flags that make a node unusable as a routing target.
const unroutable = Fail | Handshake | NoAddr

var flagNames = [...]string{"myself", "master", "slave", "fail?", "fail", "handshake", "noaddr", "nofailover", "noflags", "unknown"}

// String prints the flags in server order with server names ("slave", not
// "replica"), so the output can be compared with CLUSTER NODES.
func (f Flags) String() string {
	if f == 0 {
		return "-"
	}
	var b strings.Builder
	for i, name := range flagNames {
		if f&(1<<i) != 0 {
			if b.Len() > 0 {
				b.WriteByte(',')
			}
			b.WriteString(name)
		}
	}
	return b.String()
}

// Range is an inclusive run of slots.
type Range struct{ Start, End slots.Slot }

// Len is the number of slots in r.
func (r Range) Len() int { return int(r.End) - int(r.Start) + 1 }

// Contains reports whether s is in r.
func (r Range) Contains(s slots.Slot) bool { return s >= r.Start && s <= r.End }

func (r Range) String() string {
	if r.Start == r.End {
		return strconv.Itoa(int(r.Start))
	}
	return strconv.Itoa(int(r.Start)) + "-" + strconv.Itoa(int(r.End))
}

// Node is one cluster node as one reply described it. Values are never
// modified after parsing, so a *Node can be shared freely.
type Node struct {
	ID string
	// Addr is the host:port to dial: the endpoint the server advertises (an
	// ip, or a hostname in SLOTS/SHARDS with hostname endpoints). Empty when
	// the node has no usable address (noaddr, "?" endpoint).
	Addr     string
	IP       string
	Hostname string
	Port     int
	TLSPort  int
	CPort    int
	Role     Role
	Flags    Flags
	MasterID string
	// ConfigEpoch is the epoch this line carries; on replica lines (6.0.6+)
	// it is the master's epoch.
	ConfigEpoch uint64
	Connected   bool
	// Health is "online", "fail" or "loading" from CLUSTER SHARDS, empty
	// from other sources.
	Health     string
	ReplOffset int64
	// ShardID comes from the shard-id aux field (7.2-rc, nodes.conf).
	ShardID string
	Slots   []Range
	// Migrating and Importing map a slot to the peer node ID. Only the
	// myself line of CLUSTER NODES carries them; nil otherwise.
	Migrating, Importing map[slots.Slot]string
}

// Routable reports whether requests may be sent to n: it has an address and
// is not failed, unknown-address, handshaking, or (SHARDS) still loading.
func (n *Node) Routable() bool {
	return n != nil && n.Addr != "" && n.Flags&unroutable == 0 && n.Health != "fail" && n.Health != "loading"
}

// Failed reports whether n is flagged fail (FAIL, not PFAIL).
func (n *Node) Failed() bool { return n != nil && (n.Flags&Fail != 0 || n.Health == "fail") }

// NewAddrNode describes a node of a deployment without cluster node ids (a Sentinel-managed or
// role-probed master/replica set): the address doubles as the id, which is unique within a
// snapshot and stable across discoveries. IP or Hostname (Sentinel with announce-hostnames,
// DNS-named nodes) and Port come from addr, Flags from role; Connected and ReplOffset are left
// to the caller, which is the one that knows them.
func NewAddrNode(addr string, role Role, masterID string) *Node {
	n := &Node{ID: addr, Addr: addr, Role: role, MasterID: masterID}
	if host, ps, err := net.SplitHostPort(addr); err == nil {
		n.Port, _ = strconv.Atoi(ps)
		if _, perr := netip.ParseAddr(host); perr == nil {
			n.IP = host
		} else {
			n.Hostname = host
		}
	}
	if role == RoleMaster {
		n.Flags = Master
	} else {
		n.Flags = Replica
	}
	return n
}

func (n *Node) String() string {
	if n == nil {
		return "none"
	}
	id := n.ID
	if len(id) > 8 {
		id = id[:8]
	}
	addr := n.Addr
	if addr == "" {
		addr = "?"
	}
	return addr + "(" + id + ")"
}

// Shard is a master, its replicas and the slots it serves.
type Shard struct {
	Master   *Node
	Replicas []*Node
	Ranges   []Range
}

// RoutableReplicas returns the replicas that may serve reads (not failed,
// not loading, with an address). It allocates; callers on a hot path should
// cache the result per snapshot.
func (s *Shard) RoutableReplicas() []*Node {
	var out []*Node
	for _, r := range s.Replicas {
		if r.Routable() {
			out = append(out, r)
		}
	}
	return out
}

// slotCount is the number of slots in s.
func (s *Shard) slotCount() int {
	n := 0
	for _, r := range s.Ranges {
		n += r.Len()
	}
	return n
}
