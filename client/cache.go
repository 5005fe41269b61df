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

	mu      sync.RWMutex
	entries map[string]*centry    // by encoded command
	index   map[pipeKey][]*centry // by tracking pipe and Redis key
	ring    centry                // eviction order (CLOCK): ring.next is the oldest
	used    int64
	nodes   map[string]*node // tracking connections, one node per address
	nodesMu sync.Mutex
	cfg     connConfig

	hits, misses, invals, evictions atomic.Int64
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
		c:       c,
		max:     o.MaxBytes,
		entries: map[string]*centry{},
		index:   map[pipeKey][]*centry{},
		nodes:   map[string]*node{},
		cfg:     c.cfg,
	}
	if k.max <= 0 {
		k.max = DefaultCacheMaxBytes
	}
	k.ring.prev, k.ring.next = &k.ring, &k.ring
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
// and keeps its reply for at most ttl (ttl <= 0: until invalidated or
// evicted); later calls with the same arguments are answered from memory
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
	if v, ok := k.get(cmd.buf, t.a.Slot); ok {
		k.hits.Add(1)
		return v
	}
	k.misses.Add(1)
	t.cache = &cacheFill{k: k, key: cmd.args[keys[0]], ttl: ttl}
	return c.run(ctx, cmd, &t, nil)
}

// CacheStats reports the cache's counters; zero without Options.Cache.
func (c *Client) CacheStats() CacheStats {
	k := c.cache
	if k == nil {
		return CacheStats{}
	}
	k.mu.RLock()
	n, used := len(k.entries), k.used
	k.mu.RUnlock()
	return CacheStats{
		Hits: k.hits.Load(), Misses: k.misses.Load(), Invalidations: k.invals.Load(),
		Evictions: k.evictions.Load(), Entries: n, Bytes: used,
	}
}

// get returns a valid cached reply for the encoded command.
func (k *cache) get(cmd []byte, slot slots.Slot) (Result, bool) {
	k.mu.RLock()
	e := k.entries[string(cmd)]
	if e == nil || e.pending {
		k.mu.RUnlock()
		return Result{}, false
	}
	v, valid := e.val, k.valid(e, slot)
	if valid {
		e.ref.Store(true)
	}
	k.mu.RUnlock()
	if !valid {
		k.mu.Lock()
		if k.entries[string(cmd)] == e {
			k.removeLocked(e)
		}
		k.mu.Unlock()
	}
	return v, valid
}

// valid: the tracking connection is alive, the entry has not expired, and
// the current view still sends a read of the slot to the node it came from
// (as its master, if it was read from the master: a demoted master lags
// its successor's writes).
func (k *cache) valid(e *centry, slot slots.Slot) bool {
	if e.slot != slot || e.p.broken.Load() {
		return false
	}
	if e.expires != 0 && time.Now().UnixNano() >= e.expires {
		return false
	}
	r := k.c.router
	if !r.Serves(&router.Attempt{Slot: slot, HasSlot: true}, e.addr) {
		return false
	}
	return e.replica || r.Serves(&router.Attempt{}, e.addr)
}

// cacheFill is a DoCache miss on its way through the attempt loop: each try
// registers a pending entry on the tracking pipe it uses, and stores the
// reply only if nothing invalidated the key meanwhile.
type cacheFill struct {
	k   *cache
	key []byte
	ttl time.Duration
}

func (f *cacheFill) send(ctx context.Context, t *attempt, cmd *command, addr string) (Result, error) {
	k := f.k
	n := k.node(addr)
	p, err := n.pipe(ctx)
	if err != nil {
		return errResult(err), err
	}
	e := &centry{
		cmd: string(cmd.buf), key: string(f.key), p: p, addr: addr, slot: t.a.Slot,
		replica: !k.c.router.Serves(&router.Attempt{}, addr), pending: true,
	}
	registered := k.register(e)
	res, err := p.do(ctx, cmd, t.a.Asking())
	if registered {
		k.fill(e, res, err, f.ttl)
	}
	return res, err
}

// register adds e as pending unless another read of the command is already
// pending (that one will store its reply; this one is only passed through).
func (k *cache) register(e *centry) bool {
	k.mu.Lock()
	defer k.mu.Unlock()
	if old := k.entries[e.cmd]; old != nil {
		if old.pending {
			return false
		}
		k.removeLocked(old)
	}
	k.entries[e.cmd] = e
	pk := pipeKey{e.p, e.key}
	k.index[pk] = append(k.index[pk], e)
	return true
}

// fill stores the reply in e if e is still registered (no invalidation of
// its key, no flush, no death of its pipe since it was sent), or removes e.
func (k *cache) fill(e *centry, res Result, err error, ttl time.Duration) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.entries[e.cmd] != e {
		return // invalidated while the read was in flight
	}
	if err != nil || res.kind == KindError || res.kind == KindInvalid || e.p.broken.Load() {
		k.removeLocked(e)
		return
	}
	e.val, e.pending = res, false
	if ttl > 0 {
		e.expires = time.Now().Add(ttl).UnixNano()
	}
	e.size = int64(len(e.cmd)+len(e.key)) + resultCost(res) + entryOverhead
	k.used += e.size
	e.prev, e.next = k.ring.prev, &k.ring
	k.ring.prev.next = e
	k.ring.prev = e
	k.evictLocked()
}

// evictLocked drops entries, oldest first but sparing (once) those hit
// since the sweep last passed, until the cache fits MaxBytes.
func (k *cache) evictLocked() {
	for k.used > k.max && k.ring.next != &k.ring {
		e := k.ring.next
		if e.ref.Swap(false) && e.next != &k.ring {
			e.prev.next, e.next.prev = e.next, e.prev // to the back
			e.prev, e.next = k.ring.prev, &k.ring
			k.ring.prev.next = e
			k.ring.prev = e
			continue
		}
		k.removeLocked(e)
		k.evictions.Add(1)
	}
}

func (k *cache) removeLocked(e *centry) {
	if k.entries[e.cmd] == e {
		delete(k.entries, e.cmd)
	}
	pk := pipeKey{e.p, e.key}
	if list := k.index[pk]; len(list) > 0 {
		for i, x := range list {
			if x == e {
				list[i] = list[len(list)-1]
				list[len(list)-1] = nil
				list = list[:len(list)-1]
				break
			}
		}
		if len(list) == 0 {
			delete(k.index, pk)
		} else {
			k.index[pk] = list
		}
	}
	if e.next != nil {
		e.prev.next, e.next.prev = e.next, e.prev
		e.prev, e.next = nil, nil
		k.used -= e.size
	}
}

// resultCost is what r holds in memory, for the bound.
func resultCost(r Result) int64 {
	n := int64(len(r.str)) + resultSize
	for _, x := range r.arr {
		n += resultCost(x)
	}
	return n
}
