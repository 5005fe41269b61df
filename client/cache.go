package client

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/slotrouter/slotrouter/router"
	"github.com/slotrouter/slotrouter/slots"
)

// CacheOptions turns on client-side caching (Client.DoCache). The server
// tracks what each connection read (RESP3 CLIENT TRACKING) and pushes an
// invalidation when a key changes; the pipe's reader applies it before it
// hands out any later reply of that connection.
type CacheOptions struct {
	// MaxBytes bounds the memory cached values take (command, key and reply
	// sizes plus a per-entry overhead); the least recently hit entries go
	// first. Default 64 MiB.
	MaxBytes int64
	// Broadcast uses CLIENT TRACKING BCAST: the server pushes an
	// invalidation for every change of a key starting with one of
	// Prefixes (every key without prefixes), read or not. Default: the
	// server tracks the keys each connection read.
	Broadcast bool
	// Prefixes limit Broadcast tracking; ignored without Broadcast.
	Prefixes []string
}

// DefaultCacheMaxBytes is CacheOptions.MaxBytes when left 0.
const DefaultCacheMaxBytes = 64 << 20

// entryOverhead is what an entry costs beyond its strings (struct, map
// slots, index), for the memory bound.
const entryOverhead = 160

// CacheStats counts what DoCache did since New.
type CacheStats struct {
	Hits, Misses  int64
	Invalidations int64 // keys invalidated by the servers (a flush counts once)
	Evictions     int64 // entries dropped for the memory bound
	Entries       int   // values held now
	Bytes         int64 // their cost against MaxBytes
}

// cache holds the values DoCache read. A value is valid only while the
// connection (pipe) whose tracking covers it is alive, its node still
// serves the slot the way it did, and no invalidation for its key arrived.
// A read registers a pending entry before it is sent; an invalidation that
// arrives before the reply is stored removes it, so a reply that raced a
// change is handed to its caller but never kept.
type cache struct {
	c   *Client
	max int64

	shards  [cacheShards]cacheShard
	nodes   map[string]*node // tracking connections, one node per address
	nodesMu sync.Mutex
	cfg     connConfig
	invals  atomic.Int64

	// now is a coarse clock (UnixNano, updated every clockTick) for the
	// ttl check of a hit: reading the time costs more than the rest of a
	// hit on some machines. A ttl thus ends up to clockTick late.
	now  atomic.Int64
	stop chan struct{}
}

const clockTick = time.Millisecond

func (k *cache) clock() {
	t := time.NewTicker(clockTick)
	defer t.Stop()
	for {
		select {
		case now := <-t.C:
			k.now.Store(now.UnixNano())
		case <-k.stop:
			return
		}
	}
}

type pipeKey struct {
	p   *pipe
	key string
}

type centry struct {
	cmd     string
	key     string
	p       *pipe
	addr    string
	slot    slots.Slot
	replica bool // read from a replica (else it must still be the master)
	val     Result
	expires int64 // UnixNano; 0: none
	size    int64
	pending bool
	ref     atomic.Bool // hit since the sweep last passed (CLOCK)

	prev, next *centry
}

func newCache(c *Client, o *CacheOptions) *cache {
	k := &cache{
		c:     c,
		nodes: map[string]*node{},
		cfg:   c.cfg,
		stop:  make(chan struct{}),
	}
	limit := o.MaxBytes
	if limit <= 0 {
		limit = DefaultCacheMaxBytes
	}
	for i := range k.shards {
		sh := &k.shards[i]
		sh.k, sh.max = k, max(limit/cacheShards, 1)
		sh.entries, sh.index = map[string]*centry{}, map[pipeKey][]*centry{}
		sh.ring.prev, sh.ring.next = &sh.ring, &sh.ring
	}
	k.now.Store(time.Now().UnixNano())
	go k.clock()
	k.cfg.Protocol = 3
	k.cfg.Conns = 1
	k.cfg.Tracking = trackingArgs(o)
	k.cfg.OnPush = k.onPush
	return k
}

func trackingArgs(o *CacheOptions) []any {
	args := []any{"CLIENT", "TRACKING", "ON"}
	if o.Broadcast {
		args = append(args, "BCAST")
		for _, p := range o.Prefixes {
			args = append(args, "PREFIX", p)
		}
	}
	return args
}

// DoCache runs a read-only single-key command (GET, HGETALL, STRLEN, ...)
// and keeps its reply for at most ttl (to the millisecond; ttl <= 0: until
// invalidated or evicted); later calls with the same arguments are answered from memory
// while the server has not invalidated the key and the node that answered
// still serves the slot over the same connection. Replies come over RESP3:
// maps, sets and doubles keep their RESP3 kinds (as with Options.Protocol
// 3). A cached Result is shared by every caller it is handed to: its
// aggregates must not be modified. Without Options.Cache, or for a command
// that writes or has no single key, it returns an error matching
// ErrNotCacheable.
func (c *Client) DoCache(ctx context.Context, ttl time.Duration, args ...any) Result {
	k := c.cache
	if k == nil {
		return errResult(fmt.Errorf("%w: Options.Cache is not set", ErrNotCacheable))
	}
	if c.closed.Load() {
		return errResult(ErrClosed)
	}
	cmd, err := newCommand(args)
	if err != nil {
		return errResult(err)
	}
	defer cmd.release()
	// A hit needs no classification: only a command classified cacheable
	// has an entry, and the entry knows its slot.
	sh := k.shard(cmd.args)
	if v, ok := sh.get(cmd.buf); ok {
		sh.hits.Add(1)
		return v
	}
	t := attempt{}
	info, err := c.classify(ctx, cmd, &t)
	if err != nil {
		return errResult(err)
	}
	var kb [2]int
	var keys []int
	if info != nil {
		keys = info.AppendKeys(kb[:0], cmd.args)
	}
	if info == nil || !t.a.ReadOnly || len(keys) != 1 || t.blocking {
		return errResult(fmt.Errorf("%w: %q is not a read-only command of one key", ErrNotCacheable, cmd.args[0]))
	}
	sh.misses.Add(1)
	t.cache = &cacheFill{sh: sh, key: cmd.args[keys[0]], ttl: ttl}
	return c.run(ctx, cmd, &t, nil)
}

// CacheStats reports the cache's counters; zero without Options.Cache.
func (c *Client) CacheStats() CacheStats {
	k := c.cache
	if k == nil {
		return CacheStats{}
	}
	st := CacheStats{Invalidations: k.invals.Load()}
	for i := range k.shards {
		sh := &k.shards[i]
		sh.mu.RLock()
		st.Entries += len(sh.entries)
		st.Bytes += sh.used
		sh.mu.RUnlock()
		st.Hits += sh.hits.Load()
		st.Misses += sh.misses.Load()
		st.Evictions += sh.evictions.Load()
	}
	return st
}

// valid: the tracking connection is alive, the entry has not expired, and
// the current view still sends a read of the slot to the node it came from
// (as its master, if it was read from the master: a demoted master lags
// its successor's writes).
func (k *cache) valid(e *centry) bool {
	if e.p.broken.Load() {
		return false
	}
	if e.expires != 0 && k.now.Load() >= e.expires {
		return false
	}
	r := k.c.router
	if !r.Serves(&router.Attempt{Slot: e.slot, HasSlot: true}, e.addr) {
		return false
	}
	return e.replica || r.Serves(&router.Attempt{}, e.addr)
}

// cacheFill is a DoCache miss on its way through the attempt loop: each try
// registers a pending entry on the tracking pipe it uses, and stores the
// reply only if nothing invalidated the key meanwhile.
type cacheFill struct {
	sh  *cacheShard
	key []byte
	ttl time.Duration
}

func (f *cacheFill) send(ctx context.Context, t *attempt, cmd *command, addr string) (Result, error) {
	sh := f.sh
	k := sh.k
	n := k.node(addr)
	p, err := n.pipe(ctx)
	if err != nil {
		return errResult(err), err
	}
	e := &centry{
		cmd: string(cmd.buf), key: string(f.key), p: p, addr: addr, slot: t.a.Slot,
		replica: !k.c.router.Serves(&router.Attempt{}, addr), pending: true,
	}
	registered := sh.register(e)
	res, err := p.do(ctx, cmd, t.a.Asking())
	if registered {
		sh.fill(e, res, err, f.ttl)
	}
	return res, err
}
