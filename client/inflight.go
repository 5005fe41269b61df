package client

import (
	"context"
	"sync"
)

// Defaults for Options.MaxInflight and Options.MaxInflightBytes.
const (
	DefaultMaxInflight      = 10000
	DefaultMaxInflightBytes = 64 << 20
)

// budget bounds what one node has queued or in flight on its shared
// connections: requests and request bytes. A caller over the bound waits,
// first come first served, until replies free room or its ctx ends; a
// caller that leaves while waiting never queued anything, so a slow node
// is not sent work nobody waits for, and it recovers as soon as it has
// answered what callers still wait for.
//
// It is a two-dimensional semaphore.Weighted: one request larger than the
// whole bound takes all of it, so it waits for an empty node, never forever.
type budget struct {
	maxCmds, maxBytes int64

	mu      sync.Mutex
	cmds    int64
	bytes   int64
	waiters []*budgetWaiter
	closed  error // set by close: every acquire fails with it
}

type budgetWaiter struct {
	cmds, bytes int64
	ready       chan struct{}
	err         error // set before ready is closed when the node closed
}

func newBudget(maxCmds, maxBytes int64) *budget {
	if maxCmds <= 0 {
		maxCmds = DefaultMaxInflight
	}
	if maxBytes <= 0 {
		maxBytes = DefaultMaxInflightBytes
	}
	return &budget{maxCmds: maxCmds, maxBytes: maxBytes}
}

// acquire takes room for cmds requests of size bytes; it returns the
// (clamped) amounts to give back with release, or ctx's error.
func (b *budget) acquire(ctx context.Context, cmds, bytes int64) (int64, int64, error) {
	cmds, bytes = min(cmds, b.maxCmds), min(bytes, b.maxBytes)
	b.mu.Lock()
	if err := b.closed; err != nil {
		b.mu.Unlock()
		return 0, 0, err
	}
	if len(b.waiters) == 0 && b.fitsLocked(cmds, bytes) {
		b.cmds += cmds
		b.bytes += bytes
		b.mu.Unlock()
		return cmds, bytes, nil
	}
	w := &budgetWaiter{cmds: cmds, bytes: bytes, ready: make(chan struct{})}
	b.waiters = append(b.waiters, w)
	b.mu.Unlock()
	select {
	case <-w.ready:
		if w.err != nil {
			return 0, 0, w.err
		}
		return cmds, bytes, nil
	case <-ctx.Done():
	}
	b.mu.Lock()
	select {
	case <-w.ready: // granted as ctx ended: give it back
		if w.err == nil {
			b.cmds -= cmds
			b.bytes -= bytes
		}
	default:
		for i, x := range b.waiters {
			if x == w {
				b.waiters = append(b.waiters[:i], b.waiters[i+1:]...)
				break
			}
		}
	}
	b.grantLocked() // the head may have changed
	b.mu.Unlock()
	return 0, 0, ctx.Err()
}

func (b *budget) release(cmds, bytes int64) {
	if cmds == 0 && bytes == 0 {
		return
	}
	b.mu.Lock()
	b.cmds -= cmds
	b.bytes -= bytes
	b.grantLocked()
	b.mu.Unlock()
}

func (b *budget) fitsLocked(cmds, bytes int64) bool {
	return b.cmds+cmds <= b.maxCmds && b.bytes+bytes <= b.maxBytes
}

func (b *budget) grantLocked() {
	for len(b.waiters) > 0 {
		w := b.waiters[0]
		if !b.fitsLocked(w.cmds, w.bytes) {
			return
		}
		b.cmds += w.cmds
		b.bytes += w.bytes
		close(w.ready)
		b.waiters[0] = nil
		b.waiters = b.waiters[1:]
	}
}

// close fails every waiter, and every later acquire, with err.
func (b *budget) close(err error) {
	b.mu.Lock()
	b.closed = err
	for _, w := range b.waiters {
		w.err = err
		close(w.ready)
	}
	clear(b.waiters)
	b.waiters = nil
	b.mu.Unlock()
}
