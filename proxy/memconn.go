package proxy

import (
	"io"
	"net"
	"os"
	"sync"
	"time"
)

// memBufMax bounds the bytes one direction of an in-memory connection
// holds; a writer beyond it waits for the reader (or its deadline), as on
// a socket whose buffers are full.
const memBufMax = 1 << 20

// memPipe returns the two ends of an in-memory connection. Unlike
// net.Pipe, writes are buffered: a client may send a whole pipeline before
// reading, and a session may answer before its client reads, as over TCP.
// No goroutine is involved; deadlines are timers.
func memPipe(addr string) (client, server net.Conn) {
	a, b := newMemBuf(), newMemBuf()
	caddr, saddr := memAddr("slotrouter-client"), memAddr(addr)
	c := &memConn{rd: a, wr: b, local: caddr, remote: saddr, rdl: newDeadline(), wdl: newDeadline()}
	s := &memConn{rd: b, wr: a, local: saddr, remote: caddr, rdl: newDeadline(), wdl: newDeadline()}
	return c, s
}

type memAddr string

func (memAddr) Network() string  { return "slotrouter-proxy" }
func (a memAddr) String() string { return string(a) }

// memBuf is one direction: a byte queue with one reader and one writer.
type memBuf struct {
	mu       sync.Mutex
	data     []byte
	closed   bool          // either end closed: no more data will come
	readable chan struct{} // signalled when data arrives or closed is set
	writable chan struct{} // signalled when the reader takes data or closed is set
}

func newMemBuf() *memBuf {
	return &memBuf{readable: make(chan struct{}, 1), writable: make(chan struct{}, 1)}
}

func signal(c chan struct{}) {
	select {
	case c <- struct{}{}:
	default:
	}
}

func (m *memBuf) close() {
	m.mu.Lock()
	m.closed = true
	m.mu.Unlock()
	signal(m.readable)
	signal(m.writable)
}

type memConn struct {
	rd, wr        *memBuf
	local, remote memAddr
	rdl, wdl      *deadline
	closeOnce     sync.Once
}

func (c *memConn) Read(p []byte) (int, error) {
	for {
		c.rd.mu.Lock()
		if len(c.rd.data) > 0 {
			n := copy(p, c.rd.data)
			c.rd.data = c.rd.data[n:]
			if len(c.rd.data) == 0 {
				c.rd.data = c.rd.data[:0:0] // let the backing array go
			}
			c.rd.mu.Unlock()
			signal(c.rd.writable)
			return n, nil
		}
		closed := c.rd.closed
		c.rd.mu.Unlock()
		if closed {
			return 0, io.EOF
		}
		select {
		case <-c.rd.readable:
		case <-c.rdl.wait():
			return 0, os.ErrDeadlineExceeded
		}
	}
}

func (c *memConn) Write(p []byte) (int, error) {
	written := 0
	for written < len(p) {
		c.wr.mu.Lock()
		if c.wr.closed {
			c.wr.mu.Unlock()
			return written, io.ErrClosedPipe
		}
		if room := memBufMax - len(c.wr.data); room > 0 {
			n := min(room, len(p)-written)
			c.wr.data = append(c.wr.data, p[written:written+n]...)
			written += n
			c.wr.mu.Unlock()
			signal(c.wr.readable)
			continue
		}
		c.wr.mu.Unlock()
		select {
		case <-c.wr.writable:
		case <-c.wdl.wait():
			return written, os.ErrDeadlineExceeded
		}
	}
	return written, nil
}

// Close ends both directions: the peer reads what was written, then EOF,
// and its writes fail.
func (c *memConn) Close() error {
	c.closeOnce.Do(func() {
		c.wr.close()
		c.rd.close()
	})
	return nil
}

func (c *memConn) LocalAddr() net.Addr  { return c.local }
func (c *memConn) RemoteAddr() net.Addr { return c.remote }

func (c *memConn) SetDeadline(t time.Time) error {
	c.rdl.set(t)
	c.wdl.set(t)
	return nil
}

func (c *memConn) SetReadDeadline(t time.Time) error  { c.rdl.set(t); return nil }
func (c *memConn) SetWriteDeadline(t time.Time) error { c.wdl.set(t); return nil }

// deadline is net.Pipe's: a channel closed when the time passes, made
// afresh when the deadline moves.
type deadline struct {
	mu     sync.Mutex
	timer  *time.Timer
	cancel chan struct{}
}

func newDeadline() *deadline { return &deadline{cancel: make(chan struct{})} }

func (d *deadline) set(t time.Time) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.timer != nil && !d.timer.Stop() {
		<-d.cancel // the timer fired: wait for its close
	}
	d.timer = nil
	closed := isClosed(d.cancel)
	if t.IsZero() {
		if closed {
			d.cancel = make(chan struct{})
		}
		return
	}
	if dur := time.Until(t); dur > 0 {
		if closed {
			d.cancel = make(chan struct{})
		}
		cancel := d.cancel
		d.timer = time.AfterFunc(dur, func() { close(cancel) })
		return
	}
	if !closed {
		close(d.cancel)
	}
}

func (d *deadline) wait() chan struct{} {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.cancel
}

func isClosed(c chan struct{}) bool {
	select {
	case <-c:
		return true
	default:
		return false
	}
}
