package client

import (
	"context"
	"errors"
	"net"
	"os"
	"runtime"
	"time"
)

// The write side of a pipe: callers append their requests to a shared
// buffer under p.mu, and whoever finds no flush running writes it (see the
// pipe's contract in pipe.go). Requests wait for room in the node's budget
// before they are queued, and a request whose caller left before its bytes
// went out is cut from the buffer.

// send queues c's bytes and, if nobody is flushing, flushes them itself.
func (p *pipe) send(ctx context.Context, c *call, one *command, many []*command) error {
	c.ackPending = c.asks[0]
	if p.budget != nil {
		cmds, size := int64(1), int64(0)
		if one != nil {
			size = int64(len(one.buf))
		} else {
			cmds = int64(len(many))
			for _, cmd := range many {
				size += int64(len(cmd.buf))
			}
		}
		cmds, size, err := p.budget.acquire(ctx, cmds, size)
		if err != nil {
			return err // nothing was queued: the caller recycles c
		}
		c.budget, c.bCmds, c.bBytes = p.budget, cmds, size
	}
	p.mu.Lock()
	if p.closed {
		err := p.closedErr()
		p.mu.Unlock()
		return err
	}
	if err := p.probeIdleLocked(); err != nil {
		p.mu.Unlock()
		p.fail("read", err)
		return &ConnError{Addr: p.addr, Op: "read", Sent: false, Err: err}
	}
	c.wfrom = len(p.wbuf)
	if one != nil {
		p.appendLocked(one, c.asks[0])
		c.slow = one.slow
	} else {
		for i, cmd := range many {
			p.appendLocked(cmd, c.asks[i])
			c.slow = c.slow || cmd.slow
		}
	}
	c.wto = len(p.wbuf)
	if c.slow {
		p.slowOut.Add(1)
	}
	p.queue = append(p.queue, c)
	p.unflushed++
	p.queued.Add(1)
	if p.flushing {
		p.mu.Unlock()
		return nil
	}
	p.flushing = true
	// Other calls in flight, or several answered in the reader's last
	// wave, mean other callers are about to queue too (typically the ones
	// whose replies were just handed out): let them run first so one write
	// carries all of them instead of one each. A lone caller writes at once.
	busy := len(p.queue) > 1 || p.sent.Load() != p.done.Load() || p.wave.Load() > 1
	p.mu.Unlock()
	if p.tls {
		go p.flush(time.Time{})
		return nil
	}
	if busy {
		p.gather()
	}
	deadline, _ := ctx.Deadline()
	p.flush(deadline)
	return nil
}

func (p *pipe) appendLocked(cmd *command, asking bool) {
	if asking {
		p.wbuf = append(p.wbuf, askingCmd...)
	}
	if len(cmd.buf) < bigRequest {
		p.wbuf = append(p.wbuf, cmd.buf...)
		return
	}
	if len(p.wbuf) > 0 {
		p.segs = append(p.segs, p.wbuf)
		p.wbuf = nil
	}
	cmd.refs.Add(1)
	p.segs = append(p.segs, cmd.buf)
	p.pins = append(p.pins, cmd)
}

func unpin(pins []*command) {
	for _, c := range pins {
		c.release()
	}
}

// flush writes until nothing is queued. The caller holds the flushing role;
// ctxDeadline bounds how long that caller blocks in Write.
func (p *pipe) flush(ctxDeadline time.Time) {
	var written []byte
	for {
		p.mu.Lock()
		if written != nil && cap(written) <= maxPooledWriteBuf {
			p.spare = written[:0]
		}
		p.dropAbandonedLocked()
		if p.closed || (len(p.wbuf) == 0 && len(p.segs) == 0) {
			p.flushing = false
			p.mu.Unlock()
			return
		}
		segs, pins, buf, n := p.takeLocked()
		p.mu.Unlock()

		p.sent.Add(int64(n))
		rest, err := p.write(segs, buf, ctxDeadline)
		if rest != nil {
			// The caller's deadline hit mid-write but the socket is fine:
			// a goroutine finishes so the caller can return on time.
			p.handovers.Add(1)
			go func() {
				if _, err := p.write(rest, nil, time.Time{}); err != nil {
					p.fail("write", err)
				}
				unpin(pins)
				p.flush(time.Time{})
			}()
			return
		}
		unpin(pins)
		if err != nil {
			p.fail("write", err)
			p.mu.Lock()
			p.flushing = false
			p.mu.Unlock()
			return
		}
		written = buf
		if p.sent.Load()-p.done.Load() > 1 {
			p.gather()
		}
	}
}

// gather lets the callers that are about to queue (woken by the reader's
// last wave, or running on another P) append before the next Write, so one
// syscall carries them all: it yields while the queue keeps growing, a few
// times at most. Writes dominate a loaded client's CPU (each wakes the
// server), so fewer, fuller writes are what throughput needs.
func (p *pipe) gather() {
	for i := 0; i < maxGatherYields; i++ {
		before := p.queued.Load()
		runtime.Gosched()
		if p.queued.Load() == before {
			return
		}
	}
}

const maxGatherYields = 4

// maxWriteChunk is about the most bytes of small requests one Write takes
// from the buffer. A Write blocked on a node that reads nothing keeps its
// bytes however long its callers wait; what stays in the buffer can still
// be cut out when they leave (dropAbandonedLocked).
const maxWriteChunk = 64 << 10

// takeLocked takes what the next Write sends and the number of calls it
// completes. That is everything queued, except that a buffer of small
// requests over maxWriteChunk gives only its first whole calls up to that
// size (at least one): otherwise one Write would carry all of them, and a
// request far behind what the socket can take would go out after its
// caller left. (With big requests in segs the offsets span several
// buffers, so all of it goes, as dropAbandonedLocked leaves it.)
func (p *pipe) takeLocked() (segs [][]byte, pins []*command, buf []byte, n int) {
	if len(p.segs) == 0 && len(p.wbuf) > maxWriteChunk && p.unflushed > 1 {
		q := p.queue[len(p.queue)-p.unflushed:]
		k := 1
		for k < len(q) && q[k].wto <= maxWriteChunk {
			k++
		}
		if k < len(q) {
			// The rest stays where it is (no copy: a long queue is taken
			// a chunk at a time). The chunk's capacity ends at the cut,
			// so reusing it as the spare buffer cannot reach the rest.
			cut := q[k-1].wto
			for _, c := range q[k:] {
				c.wfrom -= cut
				c.wto -= cut
			}
			buf, p.wbuf = p.wbuf[:cut:cut], p.wbuf[cut:]
			p.unflushed -= k
			return nil, nil, buf, k
		}
	}
	segs, pins, buf, n = p.segs, p.pins, p.wbuf, p.unflushed
	p.segs, p.pins = nil, nil
	p.wbuf, p.spare = p.spare, nil
	if p.wbuf == nil {
		p.wbuf = make([]byte, 0, 4096)
	}
	p.unflushed = 0
	return segs, pins, buf, n
}

// dropAbandonedLocked cuts out of the write buffer the requests whose
// callers left before their bytes went out: they surely did not run, and
// a slow node must not be sent work nobody waits for. (Requests behind a
// big one, whose bytes are in segs, are left as they are.)
func (p *pipe) dropAbandonedLocked() {
	if len(p.segs) != 0 || p.unflushed == 0 {
		return
	}
	q := p.queue[len(p.queue)-p.unflushed:]
	first := -1
	for i, c := range q {
		if c.state.Load() == callAbandoned {
			first = i
			break
		}
	}
	if first < 0 {
		return
	}
	keep, w := q[:first], q[first].wfrom
	for _, c := range q[first:] {
		if c.state.Load() == callAbandoned {
			if c.slow {
				p.slowOut.Add(-1)
			}
			complete(c, context.Canceled) // its waiter is gone: this recycles c
			continue
		}
		n := copy(p.wbuf[w:], p.wbuf[c.wfrom:c.wto])
		c.wfrom, c.wto = w, w+n
		w += n
		keep = append(keep, c)
	}
	p.wbuf = p.wbuf[:w]
	p.dropped.Add(int64(len(q) - len(keep)))
	clear(q[len(keep):])
	p.queue = p.queue[:len(p.queue)-len(q)+len(keep)]
	p.unflushed = len(keep)
}

// write writes segs then buf. With a ctx deadline earlier than the write
// timeout it returns the unwritten rest (non-nil) when that deadline, not the
// connection, failed.
func (p *pipe) write(segs [][]byte, buf []byte, ctxDeadline time.Time) (rest [][]byte, err error) {
	now := time.Now()
	wd, byCtx := now.Add(p.writeTimeout), false
	if !ctxDeadline.IsZero() && ctxDeadline.Before(wd) && !p.tls {
		wd, byCtx = ctxDeadline, true
	}
	// Re-arming the deadline costs a runtime timer update; skip it while
	// the one in place is a plain write timeout with at least half to go.
	if byCtx || p.wdlByCtx || p.wdl.Sub(now) < p.writeTimeout/2 {
		if err := p.conn.SetWriteDeadline(wd); err != nil {
			return nil, err
		}
		p.wdl, p.wdlByCtx = wd, byCtx
	}
	if len(segs) == 0 {
		// The common case: one buffer, and no net.Buffers (it would escape).
		n, err := p.conn.Write(buf)
		if err != nil && byCtx && errors.Is(err, os.ErrDeadlineExceeded) {
			return [][]byte{buf[n:]}, err
		}
		return nil, err
	}
	bufs := net.Buffers(segs)
	if len(buf) > 0 {
		bufs = append(bufs, buf)
	}
	_, err = bufs.WriteTo(p.conn) // consumes what it wrote
	if err != nil && byCtx && errors.Is(err, os.ErrDeadlineExceeded) {
		return bufs, err
	}
	return nil, err
}
