package client

import (
	"context"
	"crypto/tls"
	"fmt"
	"maps"
	"sync"
	"time"

	"github.com/slotrouter/slotrouter/topology/sentinel"
)

// SentinelOptions configure a Sentinel-managed deployment: one master (and
// its replicas) owning every slot, found by asking Sentinels. Data nodes use
// Options' credentials; Sentinels use the ones here, since they usually
// differ.
//
// The client asks the Sentinels in order, starting with the last one that
// answered, for get-master-addr-by-name and the healthy replicas, and only
// uses a master that confirms itself with ROLE (a restarted old master
// claims master for a while, and Sentinel mid-failover may name a node that
// is not master yet), and that none of its listed replicas supersedes (says
// master and was promoted out of its history: the Sentinels are behind;
// writes then wait for a master that passes). It subscribes to +switch-master, +sdown/-sdown and
// friends on every reachable Sentinel, learns more Sentinels from SENTINEL
// sentinels, and re-checks every Reconcile in case an event was missed.
type SentinelOptions struct {
	// MasterName is the name the Sentinels monitor. Required.
	MasterName string
	// Addrs are Sentinels, "host:port" (names are resolved like any other).
	// Required.
	Addrs []string
	// Username and Password authenticate to the Sentinels (Sentinel's own
	// requirepass / ACL), not to the data nodes.
	Username, Password string
	// TLS for Sentinel connections; nil means plain TCP even when
	// Options.TLS is set for the data nodes.
	TLS *tls.Config
	// Reconcile is how often a Sentinel is asked again in case an event was
	// missed. Default 1s; negative disables it.
	Reconcile time.Duration
	// Timeout bounds each Sentinel command and the ROLE check. Default 1s.
	Timeout time.Duration
}

// ErrSentinelOptions is wrapped by New's errors for bad SentinelOptions.
var ErrSentinelOptions = sentinel.ErrInvalidOptions

// Errors a Sentinel deployment reports while no master can be verified
// (they reach callers as RetryError.Last when a call runs out of time).
var (
	ErrUnknownMaster = sentinel.ErrUnknownMaster // no Sentinel monitors MasterName
	ErrUnverified    = sentinel.ErrUnverified    // no named master confirmed itself with ROLE
)

// sentinelConns are the connections to Sentinels: a node map of their own,
// with the Sentinels' credentials and no READONLY.
type sentinelConns struct {
	cfg connConfig

	mu    sync.Mutex
	nodes map[string]*node
}

func (d *deployment) startSentinel(s *deploySource) error {
	c := d.c
	o := c.opts.Sentinel
	if len(o.Addrs) == 0 {
		return fmt.Errorf("%w: SentinelOptions.Addrs is empty", ErrSentinelOptions)
	}
	d.sentinel = &sentinelConns{
		cfg: connConfig{
			Dial:          c.opts.Dialer,
			TLS:           o.TLS,
			Username:      o.Username,
			Password:      o.Password,
			ClientName:    c.opts.ClientName,
			DialTimeout:   c.opts.DialTimeout,
			HealthTimeout: c.opts.HealthTimeout,
			Logger:        c.opts.Logger,
			Resolve:       d.dns.resolveHost,
		},
		nodes: map[string]*node{},
	}
	src, err := sentinel.New(sentinel.Options{
		MasterName: o.MasterName,
		Sentinels:  o.Addrs,
		Exec:       d.sentinel.exec,
		NodeExec:   c.dataExec,
		Subscribe:  d.sentinel.subscribe,
		Reconcile:  o.Reconcile,
		Timeout:    o.Timeout,
		Logger:     c.opts.Logger,
	})
	if err != nil {
		return err
	}
	s.mu.Lock()
	s.closers = append(s.closers, src.Close)
	s.inner = src
	s.mu.Unlock()
	s.follow(src.Changed())
	return nil
}

func (sc *sentinelConns) node(addr string) *node {
	sc.mu.Lock()
	defer sc.mu.Unlock()
	n, ok := sc.nodes[addr]
	if !ok {
		n = newNode(addr, &sc.cfg)
		sc.nodes[addr] = n
	}
	return n
}

func (sc *sentinelConns) snapshot() map[string]*node {
	sc.mu.Lock()
	defer sc.mu.Unlock()
	return maps.Clone(sc.nodes)
}

func (sc *sentinelConns) close() {
	sc.mu.Lock()
	nodes := sc.nodes
	sc.nodes = map[string]*node{}
	sc.mu.Unlock()
	for _, n := range nodes {
		n.close()
	}
}

// exec is Sentinel's Exec: one pipelined connection per Sentinel.
func (sc *sentinelConns) exec(ctx context.Context, addr string, args ...any) (any, error) {
	return execOn(ctx, sc.node(addr), args)
}

// subscribe runs SUBSCRIBE on a connection of its own, closed when ctx
// ends, and hands every message to fn until then or until it breaks.
func (sc *sentinelConns) subscribe(ctx context.Context, addr string, channels []string, fn func(channel, payload string)) error {
	conn, rd, err := dialConn(ctx, addr, &sc.cfg)
	if err != nil {
		return err
	}
	defer conn.Close()
	stop := context.AfterFunc(ctx, func() { _ = conn.Close() })
	defer stop()
	args := make([]any, 0, len(channels)+1)
	args = append(args, "SUBSCRIBE")
	for _, ch := range channels {
		args = append(args, ch)
	}
	cmd, err := newCommand(args)
	if err != nil {
		return err
	}
	_, err = conn.Write(cmd.buf)
	cmd.release()
	if err != nil {
		return &ConnError{Addr: addr, Op: "write", Sent: true, Err: err}
	}
	for {
		r, err := rd.readReply()
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return &ConnError{Addr: addr, Op: "read", Sent: true, Err: err}
		}
		if r.kind == KindError {
			return r.err // e.g. NOAUTH: the subscription cannot work
		}
		parts, err := r.Strings()
		if err != nil || len(parts) < 3 {
			continue
		}
		if parts[0] == "message" {
			fn(parts[1], parts[2])
		}
	}
}

// SentinelAddrs returns the Sentinels the client currently knows (those
// configured plus those learnt), the last one that answered first; nil
// when the client does not use Sentinel.
func (c *Client) SentinelAddrs() []string {
	if c.deploy == nil || c.deploy.src == nil {
		return nil
	}
	c.deploy.src.mu.Lock()
	inner := c.deploy.src.inner
	c.deploy.src.mu.Unlock()
	if s, ok := inner.(*sentinel.Source); ok {
		return s.Sentinels()
	}
	return nil
}
