package client

import (
	"context"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/slotrouter/slotrouter/router"
	"github.com/slotrouter/slotrouter/topology"
	"github.com/slotrouter/slotrouter/topology/roleprobe"
)

// RoleProbeOptions configure role-checked endpoints: Options.Addrs are one
// master and its replicas (no Sentinel, no cluster), and writes go to the
// node that says it is master, the check an HAProxy "role:master" backend
// makes, without the proxy. Every node is asked ROLE (INFO replication
// where ROLE is refused) every Interval, and at once after READONLY, a lost
// connection or a timeout. Two nodes claiming master at once are reported
// (OnSplitBrain, RoleReport) and never both written to: the one promoted out
// of the other's history (its master_replid2 is the other's master_replid)
// is used; failing that, the one most replicas follow; failing that, none,
// so writes wait within their deadlines. Offsets never decide: the node
// being retired has the higher one. KeyDB active-replicas count as
// writable. The zero value is usable.
//
// The guarantee: once a probe has seen the promotion, no write goes to the
// old master. Writes it accepted between the promotion and that probe (at
// most Interval's worth) are lost when it is demoted and resyncs; no
// probing client can avoid that. A node that leaves the view is drained:
// calls already sent to it get their replies (READONLY re-routes them).
//
// Addrs that answer CLUSTER NODES with "cluster support disabled" are
// role-probed with the zero RoleProbeOptions even when RoleProbe is nil.
type RoleProbeOptions struct {
	// Interval between background probes. Default 1s. Writes follow a
	// promotion within about one Interval (at once when the old master
	// refuses them with READONLY).
	Interval time.Duration
	// Timeout bounds one node's probe. Default 500ms.
	Timeout time.Duration
	// OnSplitBrain, if set, is called (from the refresh goroutine) once per
	// dual-master window, when the client first sees it.
	OnSplitBrain func(*SplitBrainError)
}

// ErrRoleProbeOptions is wrapped by New's errors for unusable role-probe
// settings (an address without a port, ...).
var ErrRoleProbeOptions = roleprobe.ErrInvalidOptions

// SplitBrainError describes two or more nodes claiming master at once.
type SplitBrainError = roleprobe.SplitBrainError

// RoleReport is the outcome of one role-probe round: every node's role and
// the decision taken.
type RoleReport = roleprobe.Report

// RoleReport returns the last role-probe round, or nil when the client does
// not role-probe (Redis Cluster, Sentinel) or has not probed yet.
func (c *Client) RoleReport() *RoleReport {
	if c.deploy == nil || c.deploy.src == nil {
		return nil
	}
	if p := c.deploy.src.probe.Load(); p != nil {
		return p.Report()
	}
	return nil
}

// deployment holds what a deployment shape needs besides the data nodes:
// the source, Sentinel connections and DNS state.
type deployment struct {
	c        *Client
	dns      *dnsState
	src      *deploySource
	sentinel *sentinelConns
	// standalone: the data nodes are not cluster nodes (connConfig.Standalone).
	standalone atomic.Bool
}

// deploySource picks the Source for the options: Sentinel, a custom one,
// role probes, or Redis Cluster discovery that switches to role probes when
// the seeds turn out to be standalone servers.
func (c *Client) deploySource() (router.Source, error) {
	d := &deployment{c: c}
	c.deploy = d
	d.dns = newDNSState(c)
	c.cfg.Resolve = d.dns.resolveHost
	c.cfg.Standalone = &d.standalone
	if c.opts.Source != nil && c.opts.Sentinel == nil {
		return c.opts.Source, nil
	}
	s := &deploySource{d: d, changed: make(chan struct{}, 1), stop: make(chan struct{})}
	d.src = s
	var err error
	switch {
	case c.opts.Sentinel != nil || c.opts.RoleProbe != nil:
		d.standalone.Store(true)
	}
	switch {
	case c.opts.Sentinel != nil:
		err = d.startSentinel(s)
	case c.opts.RoleProbe != nil:
		err = s.startProbe(*c.opts.RoleProbe)
	default:
		s.cluster = &router.ClusterSource{Seeds: c.opts.Addrs, Fetch: s.fetch, Resolver: d.dns}
	}
	if err != nil {
		d.close()
		c.deploy = nil
		return nil, err
	}
	return s, nil
}

func (d *deployment) close() {
	if d == nil {
		return
	}
	if d.src != nil {
		d.src.close()
	}
	if d.sentinel != nil {
		d.sentinel.close()
	}
	d.dns.close()
}

func (d *deployment) nameMoved(addr string) {
	if d != nil {
		d.dns.nameMoved(addr)
	}
}

// nodeMaps lists every connection map: data nodes and Sentinels.
func (c *Client) nodeMaps() []map[string]*node {
	out := []map[string]*node{*c.nodes.Load()}
	if c.deploy != nil && c.deploy.sentinel != nil {
		out = append(out, c.deploy.sentinel.snapshot())
	}
	return out
}

// dataExec is the Exec of the role probes and of Sentinel's ROLE check: it
// uses the data node's shared connection (and credentials), so the probe
// sees exactly what commands see, a hung node included.
func (c *Client) dataExec(ctx context.Context, addr string, args ...any) (any, error) {
	return execOn(ctx, c.node(addr), args)
}

func execOn(ctx context.Context, n *node, args []any) (any, error) {
	cmd, err := newCommand(args)
	if err != nil {
		return nil, err
	}
	defer cmd.release()
	res, err := n.do(ctx, cmd, false)
	if err != nil {
		return nil, err
	}
	if res.IsNil() {
		return nil, nil // sources read a nil reply as "unknown", not as a failure
	}
	return res.Value()
}

// deploySource is what the router sees for Sentinel and role-probed
// deployments: the inner source plus one Changed channel that outlives a
// switch from cluster discovery to role probes.
type deploySource struct {
	d       *deployment
	changed chan struct{}
	stop    chan struct{}
	wg      sync.WaitGroup

	inner      router.Source         // sentinel or role probe; nil while cluster
	cluster    *router.ClusterSource // auto-detection; nil otherwise
	standalone atomic.Bool           // a seed said "cluster support disabled"
	probe      atomic.Pointer[roleprobe.Source]
	onSplit    func(*SplitBrainError)

	mu         sync.Mutex
	closers    []func() error
	lastSplit  time.Time // Since of the last reported split brain
	endpointOK bool      // cluster-preferred-endpoint-type was asked
	hostnames  bool      // ... and it is "hostname"
}

// Changed implements router.Notifier.
func (s *deploySource) Changed() <-chan struct{} { return s.changed }

func (s *deploySource) signal() {
	select {
	case s.changed <- struct{}{}:
	default:
	}
}

// follow forwards an inner source's change signals.
func (s *deploySource) follow(ch <-chan struct{}) {
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		for {
			select {
			case <-s.stop:
				return
			case <-ch:
				s.signal()
			}
		}
	}()
}

func (s *deploySource) close() {
	s.mu.Lock()
	closers := s.closers
	s.closers = nil
	s.mu.Unlock()
	select {
	case <-s.stop:
	default:
		close(s.stop)
	}
	for _, f := range closers {
		_ = f()
	}
	s.wg.Wait()
}

func (s *deploySource) startProbe(o RoleProbeOptions) error {
	c := s.d.c
	p, err := roleprobe.New(roleprobe.Options{
		Addrs:    c.opts.Addrs,
		Exec:     c.dataExec,
		Interval: o.Interval,
		Timeout:  o.Timeout,
		Logger:   c.opts.Logger,
	})
	if err != nil {
		return err
	}
	s.mu.Lock()
	s.closers = append(s.closers, p.Close)
	s.inner, s.onSplit = p, o.OnSplitBrain
	s.mu.Unlock()
	s.probe.Store(p)
	s.follow(p.Changed())
	return nil
}

// Discover implements router.Source.
func (s *deploySource) Discover(ctx context.Context, prev *topology.Snapshot, suspects func(string) bool) (*topology.Snapshot, error) {
	s.mu.Lock()
	inner := s.inner
	s.mu.Unlock()
	if inner == nil {
		snap, err := s.cluster.Discover(ctx, prev, suspects)
		if err == nil {
			return s.preferHostnames(ctx, snap), nil
		}
		if !s.standalone.Load() {
			return nil, err
		}
		// The seeds are plain servers: role-probe them from now on.
		s.mu.Lock()
		if s.inner == nil {
			if perr := s.startProbeLocked(); perr != nil {
				s.mu.Unlock()
				return nil, perr
			}
			s.d.c.opts.Logger.Info("slotrouter: seeds are not cluster nodes; probing their roles", "addrs", s.d.c.opts.Addrs)
		}
		inner = s.inner
		s.mu.Unlock()
	}
	snap, err := inner.Discover(ctx, prev, suspects)
	s.reportSplit()
	return snap, err
}

// startProbeLocked is startProbe for the auto-detected case (s.mu held).
func (s *deploySource) startProbeLocked() error {
	s.mu.Unlock()
	err := s.startProbe(RoleProbeOptions{})
	s.mu.Lock()
	return err
}

// fetch is the cluster Fetcher; it notes seeds that are not cluster nodes.
func (s *deploySource) fetch(ctx context.Context, addr string) ([]byte, error) {
	b, err := s.d.c.fetchClusterNodes(ctx, addr)
	if err != nil && clusterDisabled(err) {
		// Also when READONLY was refused at connection setup (read
		// policies other than MasterOnly): later dials skip it.
		s.standalone.Store(true)
		s.d.standalone.Store(true)
	}
	return b, err
}

// reportSplit calls OnSplitBrain once per dual-master window.
func (s *deploySource) reportSplit() {
	p := s.probe.Load()
	if p == nil {
		return
	}
	r := p.Report()
	if r == nil || r.SplitBrain == nil {
		return
	}
	s.mu.Lock()
	fresh := !r.SplitBrain.Since.Equal(s.lastSplit)
	s.lastSplit = r.SplitBrain.Since
	cb := s.onSplit
	s.mu.Unlock()
	if fresh {
		s.d.c.opts.Logger.Warn("slotrouter: dual master", "err", r.SplitBrain)
		if cb != nil {
			cb(r.SplitBrain)
		}
	}
}

// preferHostnames rewrites node addresses to hostname:port when the cluster
// prefers hostname endpoints (cluster-preferred-endpoint-type hostname):
// its MOVED replies then name hosts, and routing by the same names keeps
// one connection per node and lets our resolver follow a re-pointed name.
// The setting is read once; a server refusing CONFIG keeps IPs.
func (s *deploySource) preferHostnames(ctx context.Context, snap *topology.Snapshot) *topology.Snapshot {
	s.mu.Lock()
	asked, use := s.endpointOK, s.hostnames
	s.mu.Unlock()
	if !asked {
		for _, n := range snap.Nodes() {
			if !n.Routable() || n.Role != topology.RoleMaster {
				continue
			}
			cctx, cancel := context.WithTimeout(ctx, 500*time.Millisecond)
			v, err := s.d.c.dataExec(cctx, n.Addr, "CONFIG", "GET", "cluster-preferred-endpoint-type")
			cancel()
			if err != nil {
				continue
			}
			kv, _ := v.([]any)
			use = len(kv) == 2 && kv[1] == "hostname"
			break
		}
		s.mu.Lock()
		s.endpointOK, s.hostnames = true, use
		s.mu.Unlock()
	}
	if !use {
		return snap
	}
	shards := append([]topology.Shard(nil), snap.Shards()...)
	named := func(n *topology.Node) *topology.Node {
		if n == nil || n.Hostname == "" || n.Port <= 0 {
			return n
		}
		cp := *n
		cp.Addr = net.JoinHostPort(n.Hostname, strconv.Itoa(n.Port))
		return &cp
	}
	for i := range shards {
		shards[i].Master = named(shards[i].Master)
		reps := make([]*topology.Node, len(shards[i].Replicas))
		for j, r := range shards[i].Replicas {
			reps[j] = named(r)
		}
		shards[i].Replicas = reps
	}
	return topology.NewSnapshotVersion(shards, snap.Version(), snap.Created())
}
