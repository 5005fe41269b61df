package resolve

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"slices"
	"sync"
	"time"

	"golang.org/x/sync/singleflight"
)

// Resolver looks up every address of a host name. *net.Resolver satisfies it.
type Resolver interface {
	LookupHost(ctx context.Context, host string) ([]string, error)
}

// Defaults for Options' zero values.
const (
	DefaultTTL        = 60 * time.Second
	DefaultMinRefresh = time.Second
	DefaultRetryAfter = time.Second
)

// Change says that a name's set of addresses changed: connections to addresses in Removed should
// be drained, and new ones dialled to Added.
type Change struct {
	Host           string
	Old, New       []string // sorted
	Added, Removed []string // sorted
}

// Options configure a Cache. The zero value is usable (system resolver, 60 s TTL).
type Options struct {
	// Resolver does the lookups; nil means net.DefaultResolver.
	Resolver Resolver
	// TTL is how long an answer is reused before the next Lookup re-resolves it; 0 means
	// DefaultTTL (60 s). The Go resolver does not expose record TTLs, so this is the bound on
	// how long a re-pointed name goes unnoticed without connection failures.
	TTL time.Duration
	// MinRefresh rate-limits forced re-resolution (Refresh after a connection failure): a
	// Refresh within MinRefresh of the last resolution returns that answer, so a burst of
	// failing dials makes one DNS query. 0 means DefaultMinRefresh (1 s); negative disables.
	MinRefresh time.Duration
	// RetryAfter is how long a stale answer is served after a failed re-resolution before the
	// next attempt. 0 means DefaultRetryAfter (1 s).
	RetryAfter time.Duration
	// OnChange is called (outside any lock, from the goroutine that resolved) when a name's
	// address set differs from the previous successful answer. Not called for the first answer.
	OnChange func(Change)
	// Logger receives failed re-resolutions; nil means slog.Default().
	Logger *slog.Logger
}

type entry struct {
	addrs    []string  // as returned by the resolver
	sorted   []string  // for comparison
	resolved time.Time // last successful resolution
	expires  time.Time
}

// Cache is a caching re-resolver: it serves every address of a name for TTL, re-resolves on
// demand (Refresh) after a connection failure, keeps serving the last good answer when DNS
// fails, and reports changed answers through OnChange. Safe for concurrent use.
type Cache struct {
	o     Options
	group singleflight.Group

	mu      sync.Mutex
	entries map[string]*entry
}

// New returns a Cache configured by o.
func New(o Options) *Cache {
	if o.Resolver == nil {
		o.Resolver = net.DefaultResolver
	}
	if o.TTL <= 0 {
		o.TTL = DefaultTTL
	}
	if o.MinRefresh == 0 {
		o.MinRefresh = DefaultMinRefresh
	}
	if o.RetryAfter <= 0 {
		o.RetryAfter = DefaultRetryAfter
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	return &Cache{o: o, entries: map[string]*entry{}}
}

// ErrEmptyHost is returned for an empty host name.
var ErrEmptyHost = errors.New("resolve: empty host")

// ErrNoAddresses is returned when a name resolves to no address at all.
var ErrNoAddresses = errors.New("resolve: no addresses")

// LookupHost returns every address of host, from the cache while the answer is younger than TTL.
// An IP literal is returned as is without any lookup. The returned slice is the caller's.
func (c *Cache) LookupHost(ctx context.Context, host string) ([]string, error) {
	return c.lookup(ctx, host, false)
}

// Refresh re-resolves host now (unless it was resolved less than MinRefresh ago), for use after
// a connection to one of its addresses failed: the name may have been re-pointed.
func (c *Cache) Refresh(ctx context.Context, host string) ([]string, error) {
	return c.lookup(ctx, host, true)
}

// Forget drops host from the cache.
func (c *Cache) Forget(host string) {
	c.mu.Lock()
	delete(c.entries, host)
	c.mu.Unlock()
}

func (c *Cache) lookup(ctx context.Context, host string, force bool) ([]string, error) {
	if host == "" {
		return nil, ErrEmptyHost
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if ip := net.ParseIP(host); ip != nil {
		return []string{host}, nil
	}
	now := time.Now()
	c.mu.Lock()
	e := c.entries[host]
	if e != nil {
		fresh := now.Before(e.expires)
		if force {
			fresh = c.o.MinRefresh > 0 && now.Sub(e.resolved) < c.o.MinRefresh
		}
		if fresh {
			out := slices.Clone(e.addrs)
			c.mu.Unlock()
			return out, nil
		}
	}
	c.mu.Unlock()

	// Concurrent lookups of one name share one query. The shared lookup must not die with the
	// first caller's context, so it runs detached and each caller waits on its own context.
	ch := c.group.DoChan(host, func() (any, error) {
		qctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer cancel()
		return c.resolve(qctx, host)
	})
	select {
	case r := <-ch:
		if r.Err != nil {
			return nil, r.Err
		}
		return slices.Clone(r.Val.([]string)), nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

func (c *Cache) resolve(ctx context.Context, host string) ([]string, error) {
	addrs, err := c.o.Resolver.LookupHost(ctx, host)
	if err == nil && len(addrs) == 0 {
		err = ErrNoAddresses
	}
	now := time.Now()
	if err != nil {
		c.mu.Lock()
		e := c.entries[host]
		if e == nil {
			c.mu.Unlock()
			return nil, &LookupError{Host: host, Err: err}
		}
		// DNS trouble should not take down a working client: keep the last good answer and try
		// again soon.
		e.expires = now.Add(c.o.RetryAfter)
		out := slices.Clone(e.addrs)
		c.mu.Unlock()
		c.o.Logger.Warn("resolve: re-resolution failed, serving the previous answer",
			"host", host, "err", err, "addrs", out)
		return out, nil
	}
	sorted := slices.Clone(addrs)
	slices.Sort(sorted)
	sorted = slices.Compact(sorted)

	c.mu.Lock()
	old := c.entries[host]
	c.entries[host] = &entry{addrs: addrs, sorted: sorted, resolved: now, expires: now.Add(c.o.TTL)}
	c.mu.Unlock()

	if old != nil && !slices.Equal(old.sorted, sorted) && c.o.OnChange != nil {
		c.o.OnChange(diff(host, old.sorted, sorted))
	}
	return addrs, nil
}

func diff(host string, old, cur []string) Change {
	ch := Change{Host: host, Old: old, New: cur}
	for _, a := range cur {
		if _, found := slices.BinarySearch(old, a); !found {
			ch.Added = append(ch.Added, a)
		}
	}
	for _, a := range old {
		if _, found := slices.BinarySearch(cur, a); !found {
			ch.Removed = append(ch.Removed, a)
		}
	}
	return ch
}

// LookupError is returned when a name that was never resolved cannot be resolved.
type LookupError struct {
	Host string
	Err  error
}

func (e *LookupError) Error() string { return "resolve " + e.Host + ": " + e.Err.Error() }
func (e *LookupError) Unwrap() error { return e.Err }

// NewNetResolver returns a pure-Go resolver that sends every query to the DNS server at addr
// ("127.0.0.1:5353"), ignoring /etc/resolv.conf's servers. Tests use it with dnstest; it also
// suits a deployment whose nodes are named by a dedicated DNS server.
func NewNetResolver(addr string) *net.Resolver {
	return &net.Resolver{
		PreferGo: true,
		Dial: func(ctx context.Context, network, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, network, addr)
		},
	}
}
