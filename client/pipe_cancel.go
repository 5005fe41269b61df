package client

import (
	"context"
	"sync"
	"sync/atomic"
	"time"
)

// How a caller reading its own reply leaves when its ctx ends: a cancel
// watch, registered with context.AfterFunc, puts the read deadline in the
// past, and the read returns at once. A ctx deadline takes the same path,
// through the ctx's own timer.
//
// Not a read deadline of the pipe's own, as before: arming a timer that
// falls due before every other one wakes an idle thread to watch it (the
// runtime's wakeNetPoller), and a lone caller's first 2 ms cancellation
// poll did that on every call, 25-38 µs of CPU per GET of 1 MiB, on the
// core the server needed. A registration wakes nobody.
//
// A registration costs two allocations, so the last one is kept while
// callers keep reading under the same ctx (a request's, a worker's): from
// its second call in a row a ctx costs nothing more. One seen once is
// unregistered as its call ends, before its owner's cancel would start the
// watch's goroutine for nothing.

// cancelWatch interrupts the reader-role holder's read when the ctx it reads
// under ends, and never anyone else's: while no holder has it active, an
// ending ctx only marks it fired.
type cancelWatch struct {
	p    *pipe
	done <-chan struct{} // the ctx's: contexts sharing it end together
	stop func() bool
	fire func() // w.interrupt, bound once: registering allocates no closure
	keep bool   // registered for a ctx the previous call used too

	mu     sync.Mutex
	active bool
	fired  bool
}

func (w *cancelWatch) interrupt() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.fired = true
	if w.active {
		_ = w.p.conn.SetReadDeadline(aLongTimeAgo)
	}
}

// watchState is the reader role's part of the pipe's cancel watches.
type watchState struct {
	kept     atomic.Pointer[cancelWatch] // registered; atomic for fail, which unregisters it
	spare    *cancelWatch                // unregistered before it could fire: reusable
	lastDone <-chan struct{}             // the previous cancellable call's ctx.Done
}

// watch activates a cancel watch for ctx; nil for a ctx that cannot end.
// ended reports that ctx had ended before the watch was active, so no
// interruption is coming: the caller leaves at once.
func (p *pipe) watch(ctx context.Context) (w *cancelWatch, ended bool) {
	done := ctx.Done()
	if done == nil {
		return nil, false
	}
	repeat := done == p.ws.lastDone
	p.ws.lastDone = done
	if w = p.ws.kept.Load(); w == nil || w.done != done {
		if w = p.unkeep(); w == nil {
			w, p.ws.spare = p.ws.spare, nil
		}
		if w == nil {
			w = &cancelWatch{p: p}
			w.fire = w.interrupt
		}
		w.done, w.fired = done, false
		w.stop = context.AfterFunc(ctx, w.fire)
		p.ws.kept.Store(w)
		if p.broken.Load() {
			p.unkeep() // fail has run: nothing else would unregister it
		}
	}
	w.keep = repeat
	w.mu.Lock()
	w.active = true
	ended = w.fired
	w.mu.Unlock()
	return w, ended
}

// endWatch ends w (nil: none) before the reader role changes hands. A watch
// that fired may have left the read deadline in the past: the next reader
// clears it.
func (p *pipe) endWatch(w *cancelWatch) {
	if w == nil {
		return
	}
	w.mu.Lock()
	w.active = false
	fired := w.fired
	w.mu.Unlock()
	if fired {
		p.stale = true
		p.ws.kept.CompareAndSwap(w, nil) // its ctx has ended: nothing to keep
		return
	}
	if !w.keep {
		if s := p.unkeep(); s != nil {
			p.ws.spare = s
		}
	}
}

// clearStale lifts the past read deadline a fired watch may have left, before
// the reader role's next read.
func (p *pipe) clearStale() error {
	if !p.stale {
		return nil
	}
	p.stale = false
	return p.conn.SetReadDeadline(time.Time{})
}

// unkeep unregisters the kept watch and returns it when its func can no
// longer run, for reuse. Safe from any goroutine: fail calls it too.
func (p *pipe) unkeep() *cancelWatch {
	if w := p.ws.kept.Swap(nil); w != nil && w.stop() {
		return w
	}
	return nil
}
