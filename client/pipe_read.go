package client

import (
	"context"
	"errors"
	"os"
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
// A caller reads under its ctx, which interrupts the read when it ends
// (pipe_cancel.go). When that happens mid-reply the parse stops where it is
// (respReader keeps its state) and the next reader, often the background
// one, resumes it from that byte: leaving on time never desynchronises the
// stream, and no byte of a reply is parsed twice.

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
		p.idleAt.Store(time.Now().UnixNano())
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
	_ = p.clearStale()
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
func (p *pipe) readFor(ctx context.Context, c *call) (ok bool, err error) {
	// Cleared before the watch is active: one that fires from here on puts
	// the deadline back in the past, and the read sees it.
	if err := p.clearStale(); err != nil {
		p.fail("read", err)
		p.drain()
		return false, nil
	}
	w, ended := p.watch(ctx)
	for !ended {
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
		if !errors.Is(err, os.ErrDeadlineExceeded) || w == nil {
			p.endWatch(w)
			p.fail("read", err)
			p.drain()
			return false, nil
		}
		ended = true // only the watch sets a read deadline: ctx has ended
	}
	p.endWatch(w)
	p.wakes.Add(1)
	c.state.Store(callAbandoned)
	p.release()
	err = ctx.Err()
	if err == nil {
		err = context.Canceled // a ctx of its own kind that closes Done before setting Err
	}
	return true, err
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
