package client

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sync/singleflight"

	"github.com/slotrouter/slotrouter/router"
	"github.com/slotrouter/slotrouter/slots"
	"github.com/slotrouter/slotrouter/topology"
)

// Client runs commands against a Redis deployment, sending each to the node
// that owns its keys and riding through failovers, resharding and moved
// names. It is safe for concurrent use; make one per deployment and share it.
type Client struct {
	opts   Options
	cfg    connConfig
	router *router.Router
	deploy *deployment // sources, Sentinel connections and DNS (deploy_*.go, dns.go)

	cmds  atomic.Pointer[slots.Table]
	learn singleflight.Group
	// unknown holds command names the server could not describe either.
	unknown sync.Map

	nodesMu  sync.Mutex
	nodes    atomic.Pointer[map[string]*node]
	retiring []*node  // dropped nodes still draining (nodesMu); Close cuts them
	subs     sync.Map // open *Subscription -> struct{}, for DNS drains (pubsub_home.go)

	closed atomic.Bool
	stop   chan struct{}
	// life ends at Close: work done for every caller (command learning)
	// runs under it rather than under any one caller's ctx.
	life    context.Context
	endLife context.CancelFunc
	wg      sync.WaitGroup

	cache *cache // Options.Cache; nil: DoCache refuses
}

// New connects to the deployment behind opts.Addrs (or opts.Source) and
// returns once the first view of it is known, or ctx ends.
func New(ctx context.Context, opts Options) (*Client, error) {
	if err := checkContext(ctx); err != nil {
		return nil, err
	}
	opts.setDefaults()
	if len(opts.Addrs) == 0 && opts.Source == nil && opts.Sentinel == nil {
		return nil, errors.New("slotrouter: client.Options needs Addrs or a Source")
	}
	if opts.Protocol != 0 && opts.Protocol != 2 && opts.Protocol != 3 {
		return nil, fmt.Errorf("slotrouter: client.Options.Protocol is %d; want 2 or 3", opts.Protocol)
	}
	if opts.DB < 0 {
		return nil, fmt.Errorf("slotrouter: client.Options.DB is %d; want 0 or more", opts.DB)
	}
	c := &Client{opts: opts, stop: make(chan struct{})}
	c.life, c.endLife = context.WithCancel(context.Background())
	c.cfg = connConfig{
		Dial:          opts.Dialer,
		TLS:           opts.TLS,
		Username:      opts.Username,
		Password:      opts.Password,
		ClientName:    opts.ClientName,
		Protocol:      opts.Protocol,
		DB:            opts.DB,
		ReadOnly:      opts.ReadPolicy != MasterOnly && opts.Source == nil,
		DialTimeout:   opts.DialTimeout,
		HealthTimeout: opts.HealthTimeout,
		Conns:         opts.ConnsPerNode,
		MaxReply:      opts.MaxReplyBytes,

		MaxInflight:      int64(opts.MaxInflight),
		MaxInflightBytes: opts.MaxInflightBytes,
		Logger:           opts.Logger,
	}
	empty := map[string]*node{}
	c.nodes.Store(&empty)
	c.cmds.Store(slots.DefaultTable())

	src, err := c.deploySource()
	if err != nil {
		return nil, err
	}
	r, err := router.New(router.Options{
		Source:          src,
		RefreshInterval: opts.RefreshInterval,
		MaxRedirects:    opts.MaxRedirects,
		RetryBudget:     opts.RetryBudget,
		ReadPolicy:      opts.ReadPolicy,
		OnChange:        c.onChange,
		Logger:          opts.Logger,
	})
	if err != nil {
		return nil, err
	}
	c.router = r
	if opts.Cache != nil {
		c.cache = newCache(c, opts.Cache)
	}
	if err := c.firstView(ctx); err != nil {
		c.Close()
		if opts.DB != 0 {
			err = fmt.Errorf("%w (Options.DB is %d: Redis Cluster nodes refuse SELECT at connection setup; DB is for non-cluster deployments)", err, opts.DB)
		}
		return nil, err
	}
	if opts.RefreshInterval <= 0 && opts.Source == nil {
		c.deriveRefreshInterval(ctx)
	}
	if opts.ReadPolicy == Nearest {
		c.wg.Add(1)
		go c.measureLatency()
	}
	return c, nil
}

// firstView retries discovery until it succeeds or ctx ends: seeds may
// still be starting, and New's contract is "ready when it returns".
func (c *Client) firstView(ctx context.Context) error {
	var a router.Attempt
	var last error
	for {
		err := c.router.Refresh(ctx)
		if err == nil {
			return nil
		}
		if last == nil || ctx.Err() == nil {
			last = err // a round cut short by ctx says less than the one before
		}
		if permanent(err) || errors.Is(err, ErrForeignSeeds) {
			// A wrong password, a bad certificate, TLS against plaintext,
			// seeds of different clusters: another round would say the same.
			return fmt.Errorf("slotrouter: no topology from %v: %w", c.opts.Addrs, err)
		}
		if werr := c.router.Wait(ctx, &a); werr != nil {
			return fmt.Errorf("slotrouter: no topology from %v: %w", c.opts.Addrs, errors.Join(werr, last))
		}
	}
}

// deriveRefreshInterval sets the periodic check to half the cluster's
// node timeout: a cluster that detects failures in T needs no client
// polling much faster than T/2 while all is well.
func (c *Client) deriveRefreshInterval(ctx context.Context) {
	ctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	vals, err := c.Do(ctx, "CONFIG", "GET", "cluster-node-timeout").Strings()
	if err != nil || len(vals) != 2 {
		return
	}
	ms, err := strconv.Atoi(vals[1])
	if err != nil || ms <= 0 {
		return
	}
	d := time.Duration(ms) * time.Millisecond / 2
	c.router.SetRefreshInterval(min(max(d, time.Second), 10*time.Second))
}

// Close releases every connection. Calls in flight return ErrClosed.
func (c *Client) Close() error {
	if !c.closed.CompareAndSwap(false, true) {
		return nil
	}
	close(c.stop)
	c.endLife()
	c.router.Close()
	c.deploy.close()
	c.wg.Wait()
	if c.cache != nil {
		c.cache.close()
	}
	c.nodesMu.Lock()
	for _, n := range *c.nodes.Load() {
		n.close()
	}
	for _, n := range c.retiring {
		n.close()
	}
	c.retiring = nil
	empty := map[string]*node{}
	c.nodes.Store(&empty)
	c.nodesMu.Unlock()
	return nil
}

// Router is a read-only view of the routing layer (views, where a slot goes,
// suspects, latency) for inspection and tooling: nothing reachable from it
// can close the router, mark nodes or change its settings.
func (c *Client) Router() RouterView { return RouterView{r: c.router} }

// RouterView is the read-only face of the client's router.
type RouterView struct{ r *router.Router }

// Snapshot is the view currently used for routing.
func (v RouterView) Snapshot() *topology.Snapshot { return v.r.Snapshot() }

// Target is the node a command described by a would go to now. a is the
// caller's own: filling it changes nothing in the router.
func (v RouterView) Target(a *router.Attempt) (string, error) { return v.r.Target(a) }

// Serves reports whether addr is where a would go now.
func (v RouterView) Serves(a *router.Attempt, addr string) bool { return v.r.Serves(a, addr) }

// IsSuspect reports whether addr failed recently and has not answered since.
func (v RouterView) IsSuspect(addr string) bool { return v.r.IsSuspect(addr) }

// Latency is addr's measured round trip (ReadPolicy Nearest), 0 if unknown.
func (v RouterView) Latency(addr string) time.Duration { return v.r.Latency(addr) }

// Changed is closed when the next view is installed.
func (v RouterView) Changed() <-chan struct{} { return v.r.Changed() }

// Topology is the view currently used for routing.
func (c *Client) Topology() *topology.Snapshot { return c.router.Snapshot() }

// node returns the connection manager for addr, creating it on first use.
func (c *Client) node(addr string) *node {
	if n, ok := (*c.nodes.Load())[addr]; ok {
		return n
	}
	c.nodesMu.Lock()
	defer c.nodesMu.Unlock()
	m := *c.nodes.Load()
	if n, ok := m[addr]; ok {
		return n
	}
	n := newNode(addr, &c.cfg)
	if c.closed.Load() {
		// Close has swapped (or is about to swap) the map: a node added
		// now would never be closed. This one fails every call instead.
		n.close()
		return n
	}
	nm := make(map[string]*node, len(m)+1)
	for k, v := range m {
		nm[k] = v
	}
	nm[addr] = n
	c.nodes.Store(&nm)
	return n
}

// dropNode retires addr's connections so the next use dials afresh. They
// are drained, not cut: replies owed to calls already sent are still read
// (see node.retireAll).
func (c *Client) dropNode(addr string) {
	c.nodesMu.Lock()
	m := *c.nodes.Load()
	n, ok := m[addr]
	if ok {
		nm := make(map[string]*node, len(m))
		for k, v := range m {
			if k != addr {
				nm[k] = v
			}
		}
		c.nodes.Store(&nm)
		c.retiring = slices.DeleteFunc(c.retiring, (*node).drained)
		c.retiring = append(c.retiring, n)
		n.retireAll(errLeftView)
	}
	c.nodesMu.Unlock()
	if c.cache != nil {
		c.cache.dropNode(addr)
	}
}

// onChange retires connections to nodes that left the deployment, so
// nothing lingers on a removed or replaced server.
func (c *Client) onChange(changes []topology.Change) {
	snap := c.router.Snapshot()
	if snap != nil {
		for _, n := range c.nodeAddrs() {
			if snap.Node(n) == nil {
				c.dropNode(n)
			}
		}
	}
	if c.opts.OnTopologyChange != nil {
		c.opts.OnTopologyChange(changes)
	}
}

func (c *Client) nodeAddrs() []string {
	m := *c.nodes.Load()
	out := make([]string, 0, len(m))
	for a := range m {
		out = append(out, a)
	}
	return out
}

// fetchClusterNodes is the Fetcher for cluster discovery: it uses the same
// multiplexed connection as data, so a hung node shows up as a timeout.
func (c *Client) fetchClusterNodes(ctx context.Context, addr string) ([]byte, error) {
	cmd, err := newCommand([]any{"CLUSTER", "NODES"})
	if err != nil {
		return nil, err
	}
	defer cmd.release()
	res, err := c.node(addr).do(ctx, cmd, false)
	if err != nil {
		return nil, err
	}
	return res.Bytes()
}

func (c *Client) measureLatency() {
	defer c.wg.Done()
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		snap := c.router.Snapshot()
		if snap != nil {
			for _, sh := range snap.Shards() {
				for _, n := range append([]*topology.Node{sh.Master}, sh.Replicas...) {
					if n == nil || !n.Routable() {
						continue
					}
					ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
					start := time.Now()
					if err := c.DoOn(ctx, n.Addr, "PING").Err(); err == nil {
						c.router.ObserveLatency(n.Addr, time.Since(start))
					}
					cancel()
				}
			}
		}
		select {
		case <-c.stop:
			return
		case <-t.C:
		}
	}
}
