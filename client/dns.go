package client

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"strings"
	"sync"
	"time"

	"github.com/slotrouter/slotrouter/internal/resolve"
)

// Resolver looks up every address of a host name. *net.Resolver satisfies
// it; Options.Resolver plugs in another (a service registry, a test DNS
// server, a fixed table).
type Resolver interface {
	LookupHost(ctx context.Context, host string) ([]string, error)
}

// DefaultDNSTTL is how long a name's answer is trusted when Options.DNSTTL
// is zero. The Go resolver does not expose record TTLs, so this bounds how
// long a re-pointed name goes unnoticed while its connections stay healthy.
const DefaultDNSTTL = 60 * time.Second

// dnsState keeps host names re-resolved: at every dial (rate-limited, so a
// burst of failing dials costs one query), after a MOVED that points back at
// the name we dialled, and every TTL for the names in use. When a name's
// answer changes, connections to addresses it no longer returns are
// drained: new commands dial the new address while replies to commands
// already sent are still read from the old connection.
type dnsState struct {
	c     *Client
	ttl   time.Duration
	cache *resolve.Cache
	stop  chan struct{}
	wg    sync.WaitGroup
}

func newDNSState(c *Client) *dnsState {
	ttl := c.opts.DNSTTL
	if ttl <= 0 {
		ttl = DefaultDNSTTL
	}
	d := &dnsState{c: c, ttl: ttl, stop: make(chan struct{})}
	var r resolve.Resolver
	if c.opts.Resolver != nil {
		r = c.opts.Resolver
	}
	d.cache = resolve.New(resolve.Options{
		Resolver: r,
		TTL:      ttl,
		// A failing dial re-resolves, but not more than twice per TTL
		// (and at least once a second), so a dead node costs few queries.
		MinRefresh: min(resolve.DefaultMinRefresh, ttl/2),
		RetryAfter: min(resolve.DefaultRetryAfter, ttl),
		OnChange:   d.onChange,
		Logger:     c.opts.Logger,
	})
	d.wg.Add(1)
	go d.loop()
	return d
}

func (d *dnsState) close() {
	close(d.stop)
	d.wg.Wait()
}

// resolveHost is connConfig.Resolve. Every dial asks afresh (within the
// cache's MinRefresh): dials happen when a node is new or its connection
// broke, and a broken connection is exactly when the name may have moved.
func (d *dnsState) resolveHost(ctx context.Context, host string) ([]string, error) {
	return d.cache.Refresh(ctx, host)
}

// lookupHost is the Resolver handed to cluster discovery for seed names:
// cached for the TTL, since discovery runs often.
func (d *dnsState) LookupHost(ctx context.Context, host string) ([]string, error) {
	return d.cache.LookupHost(ctx, host)
}

// nameMoved forgets addr's host, so the next dial resolves it anew: a MOVED
// naming the very address we dialled means the name now points elsewhere.
func (d *dnsState) nameMoved(addr string) {
	if host, _, err := net.SplitHostPort(addr); err == nil && !isIP(host) {
		d.cache.Forget(host)
	}
}

// loop re-resolves, every TTL, each name some connection was dialled by,
// so a name re-pointed while its old server still answers is followed too.
func (d *dnsState) loop() {
	defer d.wg.Done()
	// Ticking at half the TTL (with MinRefresh at most half the TTL) keeps
	// every answer younger than the TTL even when a dial refreshed it just
	// before a tick.
	t := time.NewTicker(max(d.ttl/2, 10*time.Millisecond))
	defer t.Stop()
	for {
		select {
		case <-d.stop:
			return
		case <-t.C:
		}
		for _, host := range d.hostsInUse() {
			ctx, cancel := context.WithTimeout(context.Background(), max(d.ttl, time.Second))
			_, _ = d.cache.Refresh(ctx, host) // changes arrive through onChange
			cancel()
		}
	}
}

func (d *dnsState) hostsInUse() []string {
	seen := map[string]bool{}
	var out []string
	for _, m := range d.c.nodeMaps() {
		for addr := range m {
			host, _, err := net.SplitHostPort(addr)
			if err != nil || isIP(host) || seen[host] {
				continue
			}
			seen[host] = true
			out = append(out, host)
		}
	}
	return out
}

// onChange drains connections that went to addresses the name no longer
// returns.
func (d *dnsState) onChange(ch resolve.Change) {
	keep := map[string]bool{}
	for _, a := range ch.New {
		keep[a] = true
	}
	drained := 0
	for _, m := range d.c.nodeMaps() {
		for addr, n := range m {
			host, _, err := net.SplitHostPort(addr)
			if err != nil || !strings.EqualFold(host, ch.Host) {
				continue
			}
			drained += n.drain(func(ip string) bool { return keep[ip] })
		}
	}
	drained += d.c.drainSubscriptions(ch.Host, func(ip string) bool { return keep[ip] })
	d.c.opts.Logger.Info("slotrouter: DNS answer changed", "host", ch.Host,
		"old", ch.Old, "new", ch.New, "drained_connections", drained)
	d.c.router.TriggerRefresh()
}

func isIP(host string) bool {
	_, err := netip.ParseAddr(strings.Trim(host, "[]"))
	return err == nil
}

// dialResolved dials addr; when its host is a name and resolve is set, it
// tries every address the name returns, in order, giving each a fair share
// of the time left (as net.Dialer does), so one blackholed address does not
// use up the whole dial timeout.
func dialResolved(ctx context.Context, dial func(ctx context.Context, network, addr string) (net.Conn, error),
	addr string, resolve func(ctx context.Context, host string) ([]string, error)) (net.Conn, error) {
	host, port, err := net.SplitHostPort(addr)
	if resolve == nil || err != nil || isIP(host) {
		return dial(ctx, "tcp", addr)
	}
	ips, err := resolve(ctx, host)
	if err != nil {
		return nil, err
	}
	var errs []error
	for i, ip := range ips {
		actx, cancel := ctx, context.CancelFunc(func() {})
		if dl, ok := ctx.Deadline(); ok && i < len(ips)-1 {
			share := time.Until(dl) / time.Duration(len(ips)-i)
			actx, cancel = context.WithTimeout(ctx, max(share, 10*time.Millisecond))
		}
		conn, err := dial(actx, "tcp", net.JoinHostPort(ip, port))
		cancel()
		if err == nil {
			return conn, nil
		}
		errs = append(errs, err)
		if ctx.Err() != nil {
			break
		}
	}
	return nil, &DialError{Host: host, Addrs: ips, Err: errors.Join(errs...)}
}

// DialError says that no address of a host name accepted a connection.
type DialError struct {
	Host  string
	Addrs []string // what the name resolved to
	Err   error    // every attempt's failure
}

func (e *DialError) Error() string {
	return "slotrouter: dial " + e.Host + " (" + strings.Join(e.Addrs, ", ") + "): " + e.Err.Error()
}

func (e *DialError) Unwrap() error { return e.Err }

// clusterDisabled reports the error a standalone server gives to cluster
// commands (CLUSTER NODES, READONLY).
func clusterDisabled(err error) bool {
	var e *Error
	return errors.As(err, &e) && strings.Contains(e.msg, "cluster support disabled")
}
