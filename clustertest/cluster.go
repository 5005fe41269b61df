package clustertest

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/slotrouter/slotrouter/slots"
)

// Options configures a Cluster. The zero value gives three masters with one
// replica each, no password and fast failure detection.
type Options struct {
	// Masters is the number of shards (default 3). Slots are split evenly
	// in the order redis-cli --cluster create uses.
	Masters int
	// Replicas is the number of replicas per master (default 1). Any
	// negative value means none.
	Replicas int
	// NodeTimeout is how long a killed or hung node goes unnoticed before
	// the others flag it "fail?" (default 200ms). It turns into "fail"
	// NodeTimeout/2 later.
	NodeTimeout time.Duration
	// FailoverDelay is the window between a master being marked "fail" and
	// its replica taking over; during it every keyed command answers
	// "CLUSTERDOWN The cluster is down" (default 500ms).
	FailoverDelay time.Duration
	// Password, when set, is required via AUTH or HELLO ... AUTH.
	Password string
	// ReplicationLag delays every write on its way to each replica
	// (default 0: applied as soon as the replica goroutine runs). Writes
	// still in flight when a master dies are lost, as in real Redis.
	ReplicationLag time.Duration
	// Now is the clock used for key expiry (default time.Now). Tests can
	// pass a fake clock to expire keys without sleeping.
	Now func() time.Time
	// Logger receives control-plane events (failovers, kills). Default: none.
	Logger *slog.Logger
}

func (o Options) withDefaults() Options {
	if o.Masters <= 0 {
		o.Masters = 3
	}
	if o.Replicas == 0 {
		o.Replicas = 1
	} else if o.Replicas < 0 {
		o.Replicas = 0
	}
	if o.NodeTimeout <= 0 {
		o.NodeTimeout = 200 * time.Millisecond
	}
	if o.FailoverDelay <= 0 {
		o.FailoverDelay = 500 * time.Millisecond
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	return o
}

// Errors returned by the control methods; match them with errors.Is.
var (
	ErrClosed       = errors.New("clustertest: cluster is closed")
	ErrInvalidNode  = errors.New("clustertest: node does not belong to this cluster")
	ErrInvalidShard = errors.New("clustertest: no such shard")
	ErrInvalidSlot  = errors.New("clustertest: slot out of range")
	ErrNoReplica    = errors.New("clustertest: no live replica to promote")
	ErrBadState     = errors.New("clustertest: operation not valid in the current state")
	ErrTooMany      = errors.New("clustertest: too many nodes (at most 1000)")
)

// Role is a node's current role.
type Role string

// The roles, spelled as CLUSTER SHARDS spells them.
const (
	RoleMaster  Role = "master"
	RoleReplica Role = "replica"
)

// Cluster is a running in-process Redis Cluster. All methods are safe for
// concurrent use.
type Cluster struct {
	opts   Options
	log    *slog.Logger
	nodes  []*Node
	topo   atomic.Pointer[topo]
	ctrl   sync.Mutex // serialises topology changes
	wg     sync.WaitGroup
	done   chan struct{}
	closed atomic.Bool
	ids    atomic.Int64 // CLIENT ID counter, shared like a server's
	cmds   map[string]*command
}

// New starts a cluster for a test and stops it in t.Cleanup.
func New(t testing.TB, opts Options) *Cluster {
	t.Helper()
	c, err := Start(opts)
	if err != nil {
		t.Fatalf("clustertest: %v", err)
	}
	t.Cleanup(c.Close)
	return c
}

// Start starts a cluster for a program; call Close when done.
func Start(opts Options) (*Cluster, error) {
	opts = opts.withDefaults()
	total := opts.Masters * (1 + opts.Replicas)
	if total > 1000 {
		return nil, ErrTooMany
	}
	c := &Cluster{opts: opts, log: opts.Logger, done: make(chan struct{}), cmds: buildTable()}
	t := &topo{migr: map[slots.Slot]migration{}}
	for i := range t.owner {
		t.owner[i] = -1
	}
	for i := 0; i < total; i++ {
		n := &Node{c: c, idx: i, id: randomID(), db: newDB(), replid: randomID(), replid2: noReplID, second: -1}
		if err := n.listen(""); err != nil {
			c.Close()
			return nil, err
		}
		c.nodes = append(c.nodes, n)
		st := nodeState{role: RoleMaster, master: -1, shard: i}
		if i >= opts.Masters {
			st.role = RoleReplica
			st.shard = (i - opts.Masters) % opts.Masters
			st.master = st.shard
		}
		t.nodes = append(t.nodes, st)
	}
	// Even split, as redis-cli does it: each master gets 16384/N slots,
	// with the rounding spread so the first range ends at 5460 for 3.
	per := float64(slots.Count) / float64(opts.Masters)
	first := 0
	for m := 0; m < opts.Masters; m++ {
		last := int(float64(m+1)*per+0.5) - 1
		if m == opts.Masters-1 {
			last = slots.Count - 1
		}
		for s := first; s <= last; s++ {
			t.owner[s] = int16(m)
		}
		first = last + 1
	}
	// redis-cli gives every node its own epoch; replicas show their
	// master's, so only masters' epochs are visible.
	for i := range t.nodes {
		t.currentEpoch++
		if t.nodes[i].role == RoleMaster {
			t.nodes[i].epoch = uint64(i + 1)
		}
	}
	t.finish()
	c.topo.Store(t)
	for _, n := range c.nodes {
		n.db.record = t.nodes[n.idx].role == RoleMaster
		// A fresh redis-cli cluster has already replicated a PING or two,
		// and 7.0 hides replicas at offset 0 from CLUSTER SLOTS, so start
		// where a real one would be.
		n.offset.Store(initialOffset)
	}
	for _, n := range c.nodes {
		if st := t.nodes[n.idx]; st.role == RoleReplica {
			c.attach(c.nodes[st.master], n)
		}
	}
	for _, n := range c.nodes {
		n.serve()
	}
	c.log.Info("clustertest started", "masters", opts.Masters, "replicas", opts.Replicas, "addrs", c.Addrs())
	return c, nil
}

// Close stops every node, closes every connection and waits for all
// goroutines to exit. It is idempotent.
func (c *Cluster) Close() {
	if !c.closed.CompareAndSwap(false, true) {
		return
	}
	close(c.done)
	c.ctrl.Lock()
	for _, n := range c.nodes {
		n.shutdown()
		n.mu.Lock()
		links := n.links
		n.links = nil
		n.mu.Unlock()
		for _, l := range links {
			l.stop()
		}
	}
	c.ctrl.Unlock()
	c.wg.Wait()
	for _, n := range c.nodes {
		n.wg.Wait()
	}
}

// Addrs returns every node's host:port, masters first.
func (c *Cluster) Addrs() []string {
	out := make([]string, len(c.nodes))
	for i, n := range c.nodes {
		out[i] = n.addr
	}
	return out
}

// Nodes returns every node, masters first (in their initial roles).
func (c *Cluster) Nodes() []*Node { return append([]*Node(nil), c.nodes...) }

// Masters returns the current masters that own slots, in shard order.
func (c *Cluster) Masters() []*Node {
	t := c.topo.Load()
	var out []*Node
	for shard := 0; shard < c.opts.Masters; shard++ {
		if m := t.shardMaster(shard); m >= 0 {
			out = append(out, c.nodes[m])
		}
	}
	return out
}

// MasterOf returns the node that owns slot, or nil when none does.
func (c *Cluster) MasterOf(slot slots.Slot) *Node {
	if int(slot) >= slots.Count {
		return nil
	}
	o := c.topo.Load().owner[slot]
	if o < 0 {
		return nil
	}
	return c.nodes[o]
}

// ReplicasOf returns the current replicas of master.
func (c *Cluster) ReplicasOf(master *Node) []*Node {
	t := c.topo.Load()
	var out []*Node
	for i, st := range t.nodes {
		if st.role == RoleReplica && master != nil && st.master == master.idx {
			out = append(out, c.nodes[i])
		}
	}
	return out
}

const initialOffset = 14

// Node is one server of the cluster.
type Node struct {
	c    *Cluster
	idx  int
	id   string
	addr string
	port int

	mu    sync.Mutex // guards db, links, up
	db    *db
	links []*link // to this node's replicas, when it is a master
	up    *link   // from this node's master, when it is a replica
	// Replication ids as INFO shows them; guarded by mu.
	replid, replid2 string
	second          int64
	offset          atomic.Int64 // replication offset (master: produced; replica: applied)

	life    sync.Mutex // guards ln, conns, gen, hang
	ln      net.Listener
	conns   map[*conn]struct{}
	gen     chan struct{} // closed when the current incarnation dies
	hang    chan struct{} // non-nil while hung; closed on Resume
	dead    bool
	latency atomic.Int64
	served  atomic.Int64
	wg      sync.WaitGroup

	downGen uint64 // guarded by c.ctrl; bumps cancel pending failure detection
}

// ID returns the node's 40-hex cluster id.
func (n *Node) ID() string { return n.id }

// Addr returns host:port.
func (n *Node) Addr() string { return n.addr }

// Port returns the TCP port.
func (n *Node) Port() int { return n.port }

// Role returns the node's current role.
func (n *Node) Role() Role { return n.c.topo.Load().nodes[n.idx].role }

// Shard returns the index of the shard the node belongs to (its slots'
// group, stable across failovers).
func (n *Node) Shard() int { return n.c.topo.Load().nodes[n.idx].shard }

// Offset returns the node's replication offset: bytes of writes produced
// (master) or applied (replica).
func (n *Node) Offset() int64 { return n.offset.Load() }

// Commands returns how many commands the node has executed (any reply,
// errors and redirects included), so tests can see where traffic went.
func (n *Node) Commands() int64 { return n.served.Load() }

// Keys returns the number of keys the node holds (expired ones included
// until they are collected), like DBSIZE.
func (n *Node) Keys() int {
	n.mu.Lock()
	defer n.mu.Unlock()
	return len(n.db.keys)
}

func (n *Node) String() string { return fmt.Sprintf("%s(%s)", n.addr, n.id[:8]) }

func randomID() string {
	var b [20]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

func (c *Cluster) node(n *Node) (*Node, error) {
	if n == nil || n.idx >= len(c.nodes) || c.nodes[n.idx] != n {
		return nil, ErrInvalidNode
	}
	return n, nil
}
