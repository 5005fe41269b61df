package redistest

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// SlotCount is the number of hash slots in a Redis Cluster.
const SlotCount = 16384

// DefaultNodeTimeout is the cluster-node-timeout used when
// ClusterOptions.NodeTimeout is zero; see the package doc for why.
const DefaultNodeTimeout = 2 * time.Second

// ErrBadOptions is wrapped by option validation errors.
var ErrBadOptions = errors.New("redistest: bad options")

// ClusterOptions configures StartCluster. The zero value is 3 masters, no
// replicas, node timeout 2 s, no password, all nodes on 127.0.0.1.
type ClusterOptions struct {
	Masters     int           // default 3
	Replicas    int           // replicas per master, default 0
	NodeTimeout time.Duration // cluster-node-timeout, default DefaultNodeTimeout
	Password    string        // requirepass + masterauth on every node
	Config      []string      // extra config lines for every node (win over defaults)
	Host        string        // bind address (127.0.0.x) for every node; default 127.0.0.1
	// Hosts, when set, gives each node its own bind address, indexed in
	// Addrs order (masters, then master 0's replicas, master 1's, ...).
	// An empty entry falls back to Host.
	Hosts []string
	// Hostnames, when set, gives node i cluster-announce-hostname Hostnames[i]
	// (same indexing as Hosts; empty = none).
	Hostnames []string
	// PreferredEndpoint sets cluster-preferred-endpoint-type: "ip" (default),
	// "hostname" or "unknown-endpoint".
	PreferredEndpoint string
	// StartTimeout bounds the whole creation; default 60 s.
	StartTimeout time.Duration
}

// Cluster is a running Redis Cluster owned by a test.
type Cluster struct {
	t        testing.TB
	opts     ClusterOptions
	servers  []*Server // creation order: masters, then replicas grouped by master
	password string

	mu       sync.Mutex
	masterOf map[*Server]*Server // last agreed replica -> master (fallback when nobody answers)
}

func (o *ClusterOptions) normalize() error {
	if o.Masters == 0 {
		o.Masters = 3
	}
	if o.NodeTimeout == 0 {
		o.NodeTimeout = DefaultNodeTimeout
	}
	if o.StartTimeout == 0 {
		o.StartTimeout = 60 * time.Second
	}
	switch {
	case o.Masters < 1 || o.Masters > 64:
		return fmt.Errorf("%w: Masters=%d (1..64)", ErrBadOptions, o.Masters)
	case o.Replicas < 0 || o.Replicas > 8:
		return fmt.Errorf("%w: Replicas=%d (0..8)", ErrBadOptions, o.Replicas)
	case o.NodeTimeout < 100*time.Millisecond:
		return fmt.Errorf("%w: NodeTimeout=%v (>= 100ms)", ErrBadOptions, o.NodeTimeout)
	}
	total := o.Masters * (1 + o.Replicas)
	if len(o.Hosts) > total || len(o.Hostnames) > total {
		return fmt.Errorf("%w: %d Hosts / %d Hostnames for %d nodes", ErrBadOptions, len(o.Hosts), len(o.Hostnames), total)
	}
	switch o.PreferredEndpoint {
	case "", "ip", "hostname", "unknown-endpoint":
	default:
		return fmt.Errorf("%w: PreferredEndpoint=%q", ErrBadOptions, o.PreferredEndpoint)
	}
	return nil
}

// StartCluster starts Masters*(1+Replicas) cluster nodes, assigns the slots
// evenly to the masters, attaches the replicas and returns once the cluster
// is fully consistent (see WaitOK).
func StartCluster(t testing.TB, o ClusterOptions) *Cluster {
	t.Helper()
	bin := Require(t)
	if err := o.normalize(); err != nil {
		t.Fatal(err)
	}
	c := &Cluster{t: t, opts: o, password: o.Password, masterOf: make(map[*Server]*Server)}
	total := o.Masters * (1 + o.Replicas)
	for i := range total {
		host := o.Host
		if i < len(o.Hosts) && o.Hosts[i] != "" {
			host = o.Hosts[i]
		}
		host, err := checkHost(host)
		if err != nil {
			t.Fatal(err)
		}
		s := newServer(t, bin, "node"+strconv.Itoa(i), host, t.TempDir(), o.Password)
		hostname := ""
		if i < len(o.Hostnames) {
			hostname = o.Hostnames[i]
		}
		s.render = c.renderNode(s, hostname)
		c.servers = append(c.servers, s)
	}
	for i := o.Masters; i < total; i++ {
		c.masterOf[c.servers[i]] = c.servers[(i-o.Masters)/o.Replicas]
	}

	ctx, cancel := context.WithTimeout(context.Background(), o.StartTimeout)
	defer cancel()
	began := time.Now()
	if err := startAll(c.servers); err != nil {
		t.Fatal(err)
	}
	if err := c.create(ctx); err != nil {
		t.Fatal(err)
	}
	if err := c.waitOK(ctx); err != nil {
		t.Fatalf("redistest: cluster not consistent after start: %v", err)
	}
	t.Logf("redistest: cluster of %d masters x %d replicas up in %v: %s", o.Masters, o.Replicas,
		time.Since(began).Round(time.Millisecond), strings.Join(c.Addrs(), " "))
	return c
}

func (c *Cluster) renderNode(s *Server, hostname string) func(int) string {
	o := c.opts
	return func(port int) string {
		lines := append(baseConfig(s, port),
			"cluster-enabled yes",
			"cluster-config-file nodes.conf",
			"cluster-node-timeout "+strconv.FormatInt(o.NodeTimeout.Milliseconds(), 10),
			// Announce the bind address: with several 127.0.0.x nodes the
			// kernel would otherwise show peers 127.0.0.1 as our address.
			"cluster-announce-ip "+s.Host,
		)
		if hostname != "" {
			lines = append(lines, "cluster-announce-hostname "+hostname)
		}
		if o.PreferredEndpoint != "" {
			lines = append(lines, "cluster-preferred-endpoint-type "+o.PreferredEndpoint)
		}
		return joinConfig(lines, o.Config)
	}
}

// startAll launches servers concurrently; ports are picked under a lock so
// one batch never picks the same port (or bus port) twice.
func startAll(servers []*Server) error {
	var mu sync.Mutex
	used := make(map[int]bool)
	pick := func(host string) func() (int, error) {
		return func() (int, error) {
			mu.Lock()
			defer mu.Unlock()
			p, err := freePort(host, used)
			if err == nil {
				used[p], used[p+busOffset] = true, true
			}
			return p, err
		}
	}
	errs := make([]error, len(servers))
	var wg sync.WaitGroup
	for i, s := range servers {
		wg.Go(func() { errs[i] = s.start(pick(s.Host)) })
	}
	wg.Wait()
	return errors.Join(errs...)
}

// create runs the fast cluster creation: ids, slots, epochs, meet, replicate.
func (c *Cluster) create(ctx context.Context) error {
	o := c.opts
	for _, s := range c.servers {
		id, err := s.doString(ctx, "CLUSTER", "MYID")
		if err != nil {
			return err
		}
		s.ID = id
	}
	for i, s := range c.servers {
		if i < o.Masters {
			lo, hi := i*SlotCount/o.Masters, (i+1)*SlotCount/o.Masters-1
			if _, err := s.Do(ctx, "CLUSTER", "ADDSLOTSRANGE", lo, hi); err != nil {
				return err
			}
		}
		// Distinct epochs set before MEET: no epoch collisions to resolve,
		// so the first gossip round already converges.
		if _, err := s.Do(ctx, "CLUSTER", "SET-CONFIG-EPOCH", i+1); err != nil {
			return err
		}
	}
	for i, a := range c.servers {
		for _, b := range c.servers[i+1:] {
			if _, err := a.Do(ctx, "CLUSTER", "MEET", b.Host, b.Port); err != nil {
				return err
			}
		}
	}
	for i := o.Masters; i < len(c.servers); i++ {
		r, m := c.servers[i], c.masterOf[c.servers[i]]
		// REPLICATE needs the master to be known (handshake finished).
		err := poll(ctx, 5*time.Millisecond, func() error {
			_, err := r.Do(ctx, "CLUSTER", "REPLICATE", m.ID)
			return err
		})
		if err != nil {
			return err
		}
	}
	return nil
}

// Servers returns every node in creation order (masters first).
func (c *Cluster) Servers() []*Server { return append([]*Server(nil), c.servers...) }

// Addrs returns the addresses of the current masters first, then the other
// nodes, each group in creation order.
func (c *Cluster) Addrs() []string {
	ms := c.Masters()
	isMaster := make(map[*Server]bool)
	var out []string
	for _, m := range ms {
		isMaster[m] = true
		out = append(out, m.Addr)
	}
	for _, s := range c.servers {
		if !isMaster[s] {
			out = append(out, s.Addr)
		}
	}
	return out
}

// byID maps a node id to the harness server.
func (c *Cluster) byID(id string) *Server {
	for _, s := range c.servers {
		if s.ID == id {
			return s
		}
	}
	return nil
}

// liveView returns the CLUSTER NODES view of the first live node answering.
func (c *Cluster) liveView(ctx context.Context) (*view, error) {
	var errs []error
	for _, s := range c.servers {
		if !s.live() {
			continue
		}
		v, err := c.viewOf(ctx, s)
		if err == nil {
			return v, nil
		}
		errs = append(errs, err)
	}
	return nil, fmt.Errorf("redistest: no live node answered CLUSTER NODES: %w", errors.Join(errs...))
}

func (c *Cluster) viewOf(ctx context.Context, s *Server) (*view, error) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	text, err := s.doString(ctx, "CLUSTER", "NODES")
	if err != nil {
		return nil, err
	}
	return parseNodes(text)
}

func (c *Cluster) mustView() *view {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	v, err := c.liveView(ctx)
	if err != nil {
		c.t.Fatal(err)
	}
	return v
}

// Masters returns the masters owning slots, as seen by the first live node,
// in creation order.
func (c *Cluster) Masters() []*Server {
	c.t.Helper()
	v := c.mustView()
	var out []*Server
	for _, s := range c.servers {
		if n := v.nodes[s.ID]; n != nil && n.master() && len(n.slots) > 0 {
			out = append(out, s)
		}
	}
	return out
}

// Replicas returns every node that is a replica in the live view.
func (c *Cluster) Replicas() []*Server {
	c.t.Helper()
	v := c.mustView()
	var out []*Server
	for _, s := range c.servers {
		if n := v.nodes[s.ID]; n != nil && !n.master() {
			out = append(out, s)
		}
	}
	return out
}

// ReplicasOf returns the replicas of m in the live view.
func (c *Cluster) ReplicasOf(m *Server) []*Server {
	c.t.Helper()
	v := c.mustView()
	var out []*Server
	for _, s := range c.servers {
		if n := v.nodes[s.ID]; n != nil && !n.master() && n.masterID == m.ID {
			out = append(out, s)
		}
	}
	return out
}

// MasterOf returns the node owning slot in the live view.
func (c *Cluster) MasterOf(slot int) *Server {
	c.t.Helper()
	if slot < 0 || slot >= SlotCount {
		c.t.Fatalf("redistest: MasterOf: slot %d out of range", slot)
	}
	n := c.mustView().ownerOf(slot)
	if n == nil {
		c.t.Fatalf("redistest: MasterOf: slot %d has no owner", slot)
		return nil
	}
	s := c.byID(n.id)
	if s == nil {
		c.t.Fatalf("redistest: MasterOf: slot %d owned by unknown node %s", slot, n.id)
	}
	return s
}

// NodesText returns s's CLUSTER NODES output.
func (c *Cluster) NodesText(s *Server) string {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	text, err := s.doString(ctx, "CLUSTER", "NODES")
	if err != nil {
		c.t.Fatal(err)
	}
	return text
}

// WaitOK waits until every live node reports cluster_state:ok, all live
// nodes agree on slot owners and replica links (with no live node flagged
// fail/fail?/handshake), all slots are covered and every live replica's
// replication link is up.
func (c *Cluster) WaitOK(ctx context.Context) {
	c.t.Helper()
	if err := c.waitOK(ctx); err != nil {
		c.t.Fatal(err)
	}
}

func (c *Cluster) waitOK(ctx context.Context) error {
	return poll(ctx, 10*time.Millisecond, func() error { return c.checkOK(ctx) })
}

func (c *Cluster) checkOK(ctx context.Context) error {
	var ids []string
	var live []*Server
	for _, s := range c.servers {
		if s.live() {
			live = append(live, s)
			ids = append(ids, s.ID)
		}
	}
	if len(live) == 0 {
		return errors.New("no live nodes")
	}
	var first *view
	var firstSig string
	for _, s := range live {
		in, err := s.fields(ctx, "CLUSTER", "INFO")
		if err != nil {
			return err
		}
		if in["cluster_state"] != "ok" {
			return fmt.Errorf("%s: cluster_state:%s", s.Name, in["cluster_state"])
		}
		v, err := c.viewOf(ctx, s)
		if err != nil {
			return err
		}
		if err := checkView(s, v, live); err != nil {
			return err
		}
		sig := v.signature(ids)
		if first == nil {
			first, firstSig = v, sig
		} else if sig != firstSig {
			return fmt.Errorf("%s and %s disagree:\n%s\n%s", live[0].Name, s.Name, firstSig, sig)
		}
		if !v.nodes[s.ID].master() {
			in, err := s.info(ctx, "replication")
			if err != nil {
				return err
			}
			if in["master_link_status"] != "up" {
				return fmt.Errorf("%s: master_link_status:%s", s.Name, in["master_link_status"])
			}
		}
	}
	c.remember(first)
	return nil
}

// checkView checks one node's view: every live node known, connected and
// healthy, and all slots covered.
func checkView(s *Server, v *view, live []*Server) error {
	for _, o := range live {
		n := v.nodes[o.ID]
		if n == nil {
			return fmt.Errorf("%s does not know %s yet", s.Name, o.Name)
		}
		for _, bad := range []string{"fail", "fail?", "handshake", "noaddr"} {
			if n.flags[bad] {
				return fmt.Errorf("%s sees %s as %s", s.Name, o.Name, bad)
			}
		}
		if !n.linked {
			return fmt.Errorf("%s has no link to %s", s.Name, o.Name)
		}
	}
	covered := 0
	for _, n := range v.nodes {
		if n.master() {
			covered += n.count()
		}
	}
	if covered != SlotCount {
		return fmt.Errorf("%s: %d of %d slots covered", s.Name, covered, SlotCount)
	}
	return nil
}

// remember stores the replica links of an agreed view as fallback knowledge.
func (c *Cluster) remember(v *view) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.masterOf = make(map[*Server]*Server)
	for _, s := range c.servers {
		if n := v.nodes[s.ID]; n != nil && !n.master() {
			if m := c.byID(n.masterID); m != nil {
				c.masterOf[s] = m
			}
		}
	}
}
