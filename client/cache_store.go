package client

import (
	"sync"
	"sync/atomic"
	"time"
)

// The cache's storage, in shards so that hits on different keys do not
// contend for one lock and one counter.

const cacheShards = 16

type cacheShard struct {
	k       *cache
	max     int64
	mu      sync.RWMutex
	entries map[string]*centry    // by encoded command
	index   map[pipeKey][]*centry // by tracking pipe and Redis key
	ring    centry                // eviction order (CLOCK): ring.next is the oldest
	used    int64

	hits, misses, evictions atomic.Int64
	_                       [64]byte // keep shards' hot words apart
}

// shard picks the shard of a command by its first argument (the key of
// nearly every cacheable command; any stable choice is correct, since
// invalidations look in every shard).
func (k *cache) shard(args [][]byte) *cacheShard {
	var h uint32 = 2166136261
	if len(args) > 1 {
		for _, b := range args[1] {
			h = (h ^ uint32(b)) * 16777619
		}
	}
	return &k.shards[h%cacheShards]
}

// get returns a valid cached reply for the encoded command.
func (sh *cacheShard) get(cmd []byte) (Result, bool) {
	sh.mu.RLock()
	e := sh.entries[string(cmd)]
	if e == nil || e.pending {
		sh.mu.RUnlock()
		return Result{}, false
	}
	v, valid := e.val, sh.k.valid(e)
	if valid {
		e.ref.Store(true)
	}
	sh.mu.RUnlock()
	if !valid {
		sh.mu.Lock()
		if sh.entries[string(cmd)] == e {
			sh.removeLocked(e)
		}
		sh.mu.Unlock()
	}
	return v, valid
}

// register adds e as pending unless another read of the command is already
// pending (that one will store its reply; this one is only passed through).
func (sh *cacheShard) register(e *centry) bool {
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if old := sh.entries[e.cmd]; old != nil {
		if old.pending {
			return false
		}
		sh.removeLocked(old)
	}
	sh.entries[e.cmd] = e
	pk := pipeKey{e.p, e.key}
	sh.index[pk] = append(sh.index[pk], e)
	return true
}

// fill stores the reply in e if e is still registered (no invalidation of
// its key, no flush, no death of its pipe since it was sent), or removes e.
func (sh *cacheShard) fill(e *centry, res Result, err error, ttl time.Duration) {
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if sh.entries[e.cmd] != e {
		return // invalidated while the read was in flight
	}
	if err != nil || res.kind == KindError || res.kind == KindInvalid || e.p.broken.Load() {
		sh.removeLocked(e)
		return
	}
	e.val, e.pending = res, false
	if ttl > 0 {
		e.expires = time.Now().Add(ttl).UnixNano() // by the wall clock: k.now may lag it
	}
	e.size = int64(len(e.cmd)+len(e.key)) + resultCost(res) + entryOverhead
	sh.used += e.size
	e.prev, e.next = sh.ring.prev, &sh.ring
	sh.ring.prev.next = e
	sh.ring.prev = e
	sh.evictLocked()
}

// evictLocked drops entries, oldest first but sparing (once) those hit
// since the sweep last passed, until the cache fits MaxBytes.
func (sh *cacheShard) evictLocked() {
	for sh.used > sh.max && sh.ring.next != &sh.ring {
		e := sh.ring.next
		if e.ref.Swap(false) && e.next != &sh.ring {
			e.prev.next, e.next.prev = e.next, e.prev // to the back
			e.prev, e.next = sh.ring.prev, &sh.ring
			sh.ring.prev.next = e
			sh.ring.prev = e
			continue
		}
		sh.removeLocked(e)
		sh.evictions.Add(1)
	}
}

func (sh *cacheShard) removeLocked(e *centry) {
	if sh.entries[e.cmd] == e {
		delete(sh.entries, e.cmd)
	}
	pk := pipeKey{e.p, e.key}
	if list := sh.index[pk]; len(list) > 0 {
		for i, x := range list {
			if x == e {
				list[i] = list[len(list)-1]
				list[len(list)-1] = nil
				list = list[:len(list)-1]
				break
			}
		}
		if len(list) == 0 {
			delete(sh.index, pk)
		} else {
			sh.index[pk] = list
		}
	}
	if e.next != nil {
		e.prev.next, e.next.prev = e.next, e.prev
		e.prev, e.next = nil, nil
		sh.used -= e.size
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
