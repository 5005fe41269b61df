package client

import (
	"context"
	"errors"
	"os"
	"sync"
	"time"
)

// The read side of a pipe. Exactly one party reads at a time: the holder of
// the reader role (pipe.reading). A caller that finds the role free after
// queuing its request takes it and reads until its own reply arrives,
// handing earlier replies to their callers on the way: a lone caller thus
// waits in its own Read, one wake-up per call instead of two (reader
// goroutine, then caller). When the holder leaves while calls are still
// outstanding, a background reader takes over and runs until the FIFO is
// empty; under sustained concurrency it simply never runs dry, so replies
// are read in bulk by one goroutine, as before.
//
// A caller reads under its ctx: the read deadline is its ctx deadline (and,
// for a cancellable ctx, at most cancelPoll ahead, so a cancellation is seen
// promptly; past the first poll, a cancellation interrupts the read
// instead). When the deadline hits mid-reply the parse stops where it is
// (respReader keeps its state) and the next reader, often the background
// one, resumes it from that byte: leaving on time never desynchronises the
// stream, and no byte of a reply is parsed twice.

// cancelPoll bounds how late a caller reading its own reply notices that
// its ctx was cancelled while the reply is young; past it, a cancellation
// interrupts the read at once (a ctx deadline is exact: it is the read
// deadline).
const cancelPoll = 2 * time.Millisecond

// next reads one reply and matches it to the FIFO. It returns the call the
// reply completed, or nil when it only advanced one (an ASKING ack, one
// reply of a batch, a RESP3 push).
func (p *pipe) next() (*call, error) {
	res, err := p.rd.readReply()
	if err != nil {
		return nil, err
	}
	if res.kind == KindPush {
		// Out of band (RESP3 only), never an answer to a call. Applied
		// here, before any later reply is handed out.
		if p.onPush != nil {
			p.onPush(p, res)
		}
		return nil, nil
	}
	if p.head == len(p.pend) {
		clear(p.pend)
		p.pend, p.head = p.pend[:0], 0
		p.mu.Lock()
		k := len(p.queue) - p.unflushed
		p.pend = append(p.pend, p.queue[:k]...)
		p.wave.Store(int32(k))
		m := copy(p.queue, p.queue[k:])
		clear(p.queue[m:])
		p.queue = p.queue[:m]
		p.mu.Unlock()
		if len(p.pend) == 0 {
			return nil, desyncErr("a reply arrived while no request awaited one")
		}
	}
	c := p.pend[p.head]
	if c.ackPending {
		c.ackPending = false
		if res.kind != KindString && res.kind != KindError {
			return nil, desyncErr("a %s reply cannot acknowledge ASKING", res.kind)
		}
		if res.kind == KindError {
			c.ack = res
		}
		return nil, nil
	}
	if c.ack.kind == KindError && isRedirect(res) {
		// Bounced because ASKING was refused: the refusal is the cause.
		res = c.ack
	}
	c.ack = Result{}
	if i := len(c.results); i < len(c.expect) && !c.expect[i].fits(res) {
		return nil, desyncErr("a %s reply cannot answer the command awaiting one", res.kind)
	}
	c.results = append(c.results, res)
	if i := len(c.results); i < c.n {
		c.ackPending = c.asks[i]
		return nil, nil
	}
	p.pend[p.head] = nil
	p.head++
	if c.slow {
		p.slowOut.Add(-1)
	}
	p.done.Add(1)
	return c, nil
}

// idleLocked reports that no call awaits a reply. p.mu must be held.
func (p *pipe) idleLocked() bool { return p.head == len(p.pend) && len(p.queue) == 0 }

// release gives the reader role up, or to a background reader when calls
// are still outstanding. Deciding under p.mu pairs with send: a call queued
// before the decision is seen here, one queued after finds the role free.
func (p *pipe) release() {
	p.mu.Lock()
	if p.idleLocked() {
		if p.strayLocked() {
			p.mu.Unlock()
			p.failDesync()
			return
		}
		now := time.Now()
		if p.rdl.After(now) {
			// A read deadline yet to come would fire on an idle pipe: a
			// wake-up for nothing, once per call for a caller that pauses
			// between calls.
			p.rdl = time.Time{}
			_ = p.conn.SetReadDeadline(time.Time{})
		}
		p.idleAt.Store(now.UnixNano())
		p.reading.Store(false)
		p.mu.Unlock()
		return
	}
	p.mu.Unlock()
	p.bgReaders.Add(1)
	go p.readLoop(false)
}

// readLoop is the background reader. persistent readers (TLS pipes) run
// until the pipe fails; the others give the role up once the FIFO is empty.
func (p *pipe) readLoop(persistent bool) {
	if !p.rdl.IsZero() {
		_ = p.conn.SetReadDeadline(time.Time{})
		p.rdl = time.Time{}
	}
	for {
		if !persistent && p.head == len(p.pend) {
			p.mu.Lock()
			if p.idleLocked() {
				if p.strayLocked() {
					p.mu.Unlock()
					p.failDesync()
					return
				}
				p.idleAt.Store(time.Now().UnixNano())
				p.reading.Store(false)
				p.mu.Unlock()
				return
			}
			p.mu.Unlock()
		}
		c, err := p.next()
		if err != nil {
			p.fail("read", err)
			p.drain()
			return
		}
		if c != nil {
			complete(c, nil)
		}
	}
}

// readFor is the reader role held by the caller waiting for c. ok is false
// when the pipe failed: every call, c included, has then been completed
// with the failure and the caller collects it like any waiter. Otherwise
// err is nil once c's replies are in, or the ctx error when the caller
// left first (c is then abandoned to the background reader).
//
// A cancellable ctx is first polled once, cancelPoll ahead, which costs
// nothing when the reply comes within it, as most do. A reply that
// outlasts that poll (a large value, a slow script, a blocking command) is
// slow, and polling on would cost a timer, a wake-up and a deadline update
// every cancelPoll (a 300 ms script woke its caller 130 times): from then
// on the read deadline is the ctx's own and a cancellation interrupts the
// read (watchCancel).
func (p *pipe) readFor(ctx context.Context, c *call) (ok bool, err error) {
	done := ctx.Done()
	dl, hasDL := ctx.Deadline()
	var w *cancelWatch
	for {
		if w == nil {
			if err := p.armRead(done != nil, dl, hasDL); err != nil {
				p.fail("read", err)
				p.drain()
				return false, nil
			}
		}
		cc, err := p.next()
		if err == nil {
			if cc == c {
				p.endWatch(w)
				p.release()
				return true, nil
			}
			if cc != nil {
				complete(cc, nil)
			}
			continue
		}
		if !errors.Is(err, os.ErrDeadlineExceeded) {
			p.endWatch(w)
			p.fail("read", err)
			p.drain()
			return false, nil
		}
		p.rdl = aLongTimeAgo // spent: a new one is set before the next read
		p.wakes.Add(1)
		if cerr := ctx.Err(); cerr != nil || (hasDL && !time.Now().Before(dl)) {
			p.endWatch(w)
			c.state.Store(callAbandoned)
			p.release()
			if cerr == nil {
				cerr = context.DeadlineExceeded // the poller fired a hair before ctx's timer
			}
			return true, cerr
		}
		if w == nil {
			w = p.watchCancel(ctx)
		}
		if err := w.arm(p, dl); err != nil {
			p.endWatch(w)
			p.fail("read", err)
			p.drain()
			return false, nil
		}
	}
}

// cancelWatch interrupts the reader-role holder's read when its ctx is
// cancelled, and never anyone else's: once the holder ends the watch, a
// cancellation that comes later does nothing.
type cancelWatch struct {
	stop   func() bool
	mu     sync.Mutex
	active bool
	fired  bool
}

func (p *pipe) watchCancel(ctx context.Context) *cancelWatch {
	w := &cancelWatch{active: true}
	w.stop = context.AfterFunc(ctx, func() {
		w.mu.Lock()
		defer w.mu.Unlock()
		if w.active {
			w.fired = true
			_ = p.conn.SetReadDeadline(aLongTimeAgo)
		}
	})
	return w
}

// arm makes dl (zero: none) the read deadline, unless w has fired: the
// deadline in the past that it set must stand, or the read would outlast
// the cancellation.
func (w *cancelWatch) arm(p *pipe, dl time.Time) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.fired {
		return nil
	}
	p.rdl = dl
	return p.conn.SetReadDeadline(dl)
}

// endWatch ends w (nil: none) before the reader role changes hands. If it
// fired, the deadline it set is marked spent so the next reader resets it.
func (p *pipe) endWatch(w *cancelWatch) {
	if w == nil || w.stop() {
		return
	}
	w.mu.Lock()
	w.active = false
	fired := w.fired
	w.mu.Unlock()
	if fired {
		p.rdl = aLongTimeAgo
	}
}

// armRead sets the read deadline for a caller-reader: none for a ctx that
// can never end, else the ctx deadline but at most cancelPoll ahead. A
// deadline already in force that is no later is kept: re-arming costs a
// runtime timer update, which a caller reading other callers' replies on
// the way to its own would otherwise pay for each.
func (p *pipe) armRead(cancellable bool, dl time.Time, hasDL bool) error {
	if !cancellable {
		if p.rdl.IsZero() {
			return nil
		}
		p.rdl = time.Time{}
		return p.conn.SetReadDeadline(time.Time{})
	}
	now := time.Now()
	want := now.Add(cancelPoll)
	if hasDL && dl.Before(want) {
		want = dl
	}
	if !p.rdl.IsZero() && p.rdl.After(now) && !p.rdl.After(want) {
		return nil
	}
	p.rdl = want
	return p.conn.SetReadDeadline(want)
}

// drain fails every outstanding call after the pipe closed. The reader role
// is never released again: the pipe is dead and send refuses new calls.
func (p *pipe) drain() {
	p.mu.Lock()
	q, unflushed := p.queue, p.unflushed
	p.queue, p.unflushed = nil, 0
	unpin(p.pins) // never written: the flusher stops at closed
	p.segs, p.pins = nil, nil
	sentErr := &ConnError{Addr: p.addr, Op: p.causeOp, Sent: true, Err: p.cause}
	notSent := &ConnError{Addr: p.addr, Op: p.causeOp, Sent: false, Err: p.cause}
	p.mu.Unlock()
	for _, c := range p.pend[p.head:] {
		complete(c, sentErr)
	}
	clear(p.pend)
	p.pend, p.head = p.pend[:0], 0
	for i, c := range q {
		if i < len(q)-unflushed {
			complete(c, sentErr)
		} else {
			complete(c, notSent)
		}
	}
}

// probeAfter: a pipe nobody has read from for this long is checked for a
// close by the server before a request goes out on it.
const probeAfter = time.Millisecond

// probeIdleLocked reports that the server hung up (or broke the protocol)
// while nobody was reading: a restart or a kill between calls. Without the
// check the next request would be written into a dead socket and fail as
// possibly sent, which a write must not retry; with it, the request fails
// as not sent and node.do retries it at once on a fresh connection. It only
// looks when no call is outstanding (no reader, empty FIFO, under p.mu, so
// no reply can be on its way) and the pipe has been idle a while: the peek
// costs a system call, which back-to-back calls skip.
func (p *pipe) probeIdleLocked() error {
	if p.tls || p.reading.Load() || len(p.queue) > 0 || time.Now().UnixNano()-p.idleAt.Load() < int64(probeAfter) {
		return nil
	}
	return peerClosed(p.conn)
}
