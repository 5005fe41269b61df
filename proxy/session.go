package proxy

import (
	"context"
	"errors"
	"io"
	"net"
	"os"
	"sync"
	"time"

	"github.com/slotrouter/slotrouter/client"
)

// flushAt: replies are written out once this many bytes are waiting, so a
// batch of big replies is never held whole.
const flushAt = 64 << 10

// roundBytes is the size of one round of a batch's replies (see forward);
// firstRound commands go in a session's first round, before any size is
// known.
const (
	roundBytes = 1 << 20
	firstRound = 16
)

// errDrained ends a session whose idle read was interrupted by Shutdown.
var errDrained = errors.New("proxy: server shutting down")

// errNoReply stands in for an error-less failure, which the client never
// returns; the reply must still say something.
var errNoReply = errors.New("slotrouter: no reply")

// session is one client connection. Its goroutine reads requests, takes
// every complete request already buffered as one batch (a pipelining
// client's), answers them in order and writes the replies together.
// Consecutive ordinary commands of a batch go to the client as one
// client.Pipeline; session-state commands (tx.go, pubsub.go, local.go) are
// answered between them, in order.
type session struct {
	srv    *Server
	c      *client.Client
	conn   net.Conn
	id     int64
	ctx    context.Context
	cancel context.CancelFunc

	rd  *requestReader
	w   replyWriter
	wmu sync.Mutex // conn writes: the session's and its subscriptions'
	wdl time.Time  // the write deadline set on conn

	name    string
	authed  bool
	closing bool  // QUIT or a malformed request: close after the replies
	loopErr error // what ended an inner (WATCH) loop

	batch []request
	next  int // first request of batch not yet answered
	arena []byte
	argv  [][]byte
	boxes argBoxes
	pipe  *client.Pipeline
	round int // commands per round of a forwarded batch

	tx  txState
	sub subState
}

// request is one parsed request, or the protocol error that ended the
// stream (answered, then the session closes, as redis-server does).
type request struct {
	args [][]byte
	err  error
}

func newSession(srv *Server, conn net.Conn) *session {
	ctx, cancel := context.WithCancel(context.Background())
	if srv.opts.Idempotent {
		ctx = client.Idempotent(ctx)
	}
	s := &session{
		srv:    srv,
		c:      srv.c,
		conn:   conn,
		id:     srv.nextID.Add(1),
		ctx:    ctx,
		cancel: cancel,
		rd:     newRequestReader(conn),
		authed: !srv.opts.authRequired(),
		pipe:   srv.c.Pipeline(),
		round:  firstRound,
	}
	s.rd.authed = s.authed
	return s
}

func (s *session) run() {
	err := s.loop(func() bool { return s.closing })
	if err == nil {
		err = s.loopErr
	}
	if err == nil {
		err = s.flush()
	}
	s.cancel()
	s.conn.Close()
	s.endSubscriptions()
	switch {
	case err == nil, errors.Is(err, io.EOF), errors.Is(err, net.ErrClosed), errors.Is(err, errDrained),
		errors.Is(err, io.ErrClosedPipe):
	default:
		s.srv.opts.Logger.Info("proxy: session closed", "id", s.id, "remote", s.conn.RemoteAddr().String(), "err", err)
	}
}

// drain makes the session end once it has answered what it has read: its
// next read from the connection fails at once.
func (s *session) drain() { s.conn.SetReadDeadline(time.Now()) }

// abort ends the session now, calls in flight included.
func (s *session) abort() {
	s.cancel()
	s.conn.Close()
}

// loop answers requests until done says so. It is re-entered by WATCH
// (tx.go), whose connection lives exactly as long as the inner loop.
func (s *session) loop(done func() bool) error {
	for !done() {
		if s.next == len(s.batch) {
			if err := s.flush(); err != nil {
				return err
			}
			if err := s.read(); err != nil {
				return err
			}
		}
		s.step()
		if s.loopErr != nil {
			return s.loopErr
		}
		if len(s.w.b) >= flushAt {
			if err := s.flush(); err != nil {
				return err
			}
		}
	}
	return nil
}

// read blocks for one request, then takes every further complete request
// already buffered, up to MaxPipeline.
func (s *session) read() error {
	clear(s.batch[:cap(s.batch)])
	s.batch, s.next = s.batch[:0], 0
	if cap(s.arena) > 1<<20 {
		s.arena = nil // a huge request's arena is not kept for the session's life
	}
	clear(s.argv[:cap(s.argv)])
	s.arena, s.argv = s.arena[:0], s.argv[:0]
	s.rd.shrink()
	for len(s.batch) < s.srv.opts.MaxPipeline {
		block := len(s.batch) == 0
		if !block && !s.rd.buffered() {
			break
		}
		start := len(s.argv)
		var err error
		s.arena, s.argv, err = s.rd.next(s.arena, s.argv, block)
		if err == errIncomplete {
			break
		}
		if err != nil {
			var pe *protocolError
			if errors.As(err, &pe) {
				s.srv.opts.Logger.Info("proxy: malformed request", "id", s.id, "remote", s.conn.RemoteAddr().String(), "err", pe)
				s.batch = append(s.batch, request{err: pe})
				return nil
			}
			if errors.Is(err, os.ErrDeadlineExceeded) && s.srv.draining.Load() {
				return errDrained
			}
			return err
		}
		s.batch = append(s.batch, request{args: s.argv[start:len(s.argv):len(s.argv)]})
	}
	return nil
}

// step answers the next request, or the next run of ordinary commands.
func (s *session) step() {
	req := &s.batch[s.next]
	if req.err != nil {
		s.next = len(s.batch)
		s.w.error("ERR " + req.err.Error())
		s.closing = true
		return
	}
	k := classify(req.args[0])
	if k == kForward && s.plain() {
		end := s.next + 1
		for end < len(s.batch) && s.batch[end].err == nil && classify(s.batch[end].args[0]) == kForward {
			end++
		}
		s.forward(s.batch[s.next:end])
		s.next = end
		return
	}
	s.next++
	s.handle(req.args, k)
}

// plain reports a session in no special state: its ordinary commands go
// straight to the client.
func (s *session) plain() bool {
	return s.authed && !s.tx.multi && s.tx.watch == nil && !s.subscribedRESP2()
}

// forward runs ordinary commands: one with Do, more as Pipelines, so a
// pipelining client's batch costs one round per node. A batch is sent in
// rounds sized so that one round's replies come to about roundBytes: the
// session holds one round's replies, not a batch of big GETs' gigabyte,
// and a client that stops reading is noticed by the next write.
func (s *session) forward(run []request) {
	if len(run) == 1 {
		r := s.c.Do(s.ctx, s.anyArgs(run[0].args)...)
		s.w.shaped(r, shapeOf(run[0].args))
		return
	}
	for len(run) > 0 && s.loopErr == nil {
		part := run[:min(len(run), s.round)]
		run = run[len(part):]
		for _, rq := range part {
			s.pipe.Do(s.anyArgs(rq.args)...)
		}
		res, _ := s.pipe.Exec(s.ctx)
		before := len(s.w.b)
		for i, rq := range part {
			s.w.shaped(res[i], shapeOf(rq.args))
		}
		per := (len(s.w.b)-before)/len(part) + 1
		s.round = min(max(roundBytes/per, 1), s.srv.opts.MaxPipeline)
		if len(run) > 0 && len(s.w.b) >= flushAt {
			if err := s.flush(); err != nil {
				s.loopErr, s.closing = err, true
			}
		}
	}
}

// anyArgs boxes a request's arguments for the client, which copies them
// while encoding: the returned slice is reused by the next call.
func (s *session) anyArgs(args [][]byte) []any { return s.boxes.box(args) }

// flush writes the waiting replies. A client that accepts none of them
// for WriteTimeout is cut off: the error ends the session.
func (s *session) flush() error {
	if len(s.w.b) == 0 {
		return nil
	}
	s.wmu.Lock()
	defer s.wmu.Unlock()
	return s.flushLocked()
}

func (s *session) flushLocked() error {
	err := s.write(s.w.b)
	if cap(s.w.b) > 4*flushAt {
		s.w.b = nil
	} else {
		s.w.b = s.w.b[:0]
	}
	return err
}

// write writes b under wmu. The deadline is moved only when half of it is
// used, so a busy session does not pay for a timer on every write.
func (s *session) write(b []byte) error {
	if d := s.srv.opts.WriteTimeout; time.Until(s.wdl) < d/2 {
		s.wdl = time.Now().Add(d)
		s.conn.SetWriteDeadline(s.wdl)
	}
	_, err := s.conn.Write(b)
	if err != nil && errors.Is(err, os.ErrDeadlineExceeded) {
		s.srv.opts.Logger.Warn("proxy: client does not read its replies; disconnected", "id", s.id,
			"remote", s.conn.RemoteAddr().String(), "write_timeout", s.srv.opts.WriteTimeout)
	}
	return err
}

// errorReply writes err as a RESP error: a server's error reply as the
// server sent it, anything else (retries exhausted, client closed) as ERR.
func (w *replyWriter) errorReply(err error) {
	var re *client.Error
	if errors.As(err, &re) {
		w.error(re.Error())
		return
	}
	w.failure(err)
}
