package client

import (
	"context"
	"errors"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/slotrouter/slotrouter/slots"
)

// subConn is one subscription connection to one node: dialled and set up by
// dialConn like every other connection, then owned by one reader goroutine
// that turns frames into messages, confirmations and server-sent
// unsubscribes. It is never shared with commands.
//
// Replies are matched in order: Redis answers a (P|S)SUBSCRIBE or
// (P|S)UNSUBSCRIBE of n names with n confirmations, an error with one error
// reply, and PING with one pong. A confirmation that the oldest request does
// not expect is the server's own: Redis 7 sends sunsubscribe to sharded
// subscribers of a slot the node just lost.
type subConn struct {
	s    *Subscription
	addr string
	conn net.Conn
	rd   *respReader

	wmu sync.Mutex // one write (and its place in pending) at a time

	pmu     sync.Mutex
	pending []*subReq

	lastSeen atomic.Int64 // unix nanos of the last frame read
	// slotSeen is, per slot of a sharded channel, when this connection last
	// showed it served the slot (a confirmation or a message). A node hands
	// a slot to its importer before it tells its subscribers, so a message
	// published there in between is missed: an interruption starts here,
	// not when the sunsubscribe arrives. Read loop only.
	slotSeen map[slots.Slot]time.Time
	done     chan struct{}
	err      error // why the connection ended; set before done is closed
	dead     bool  // guarded by Subscription.mu: the connection is gone
	once     sync.Once
	started  time.Time
}

// subReq is one command awaiting its replies.
type subReq struct {
	kind string          // confirmation kind: "subscribe", ..., or "pong"
	want map[string]bool // names still to be confirmed
	err  error
	done chan struct{}
}

var (
	errSubHealth = errors.New("slotrouter: subscription connection did not answer within the health timeout")
	errSubClosed = errors.New("slotrouter: subscription connection closed")
	errSubMoved  = errors.New("slotrouter: abandoned: a new view routes the channels to another node")
)

// dialSub opens a subscription connection to addr. With RESP3 the
// connection switches protocol first, so messages arrive as push frames.
func (s *Subscription) dialSub(ctx context.Context, addr string) (*subConn, error) {
	conn, rd, err := dialConn(ctx, addr, &s.c.cfg)
	if err != nil {
		return nil, err
	}
	sc := &subConn{s: s, addr: addr, conn: conn, rd: rd, done: make(chan struct{}), started: time.Now()}
	sc.lastSeen.Store(time.Now().UnixNano())
	if s.opts.RESP3 {
		hctx, cancel := context.WithTimeout(ctx, s.c.cfg.dialTimeout())
		res, err := (&dedicatedConn{conn: conn, rd: rd}).doOne(hctx, addr, "HELLO", "3")
		cancel()
		_ = conn.SetDeadline(time.Time{})
		if err == nil {
			err = res.Err()
		}
		if err != nil {
			_ = conn.Close()
			return nil, &ConnError{Addr: addr, Op: "setup", Err: err}
		}
	}
	s.wg.Add(2)
	go sc.readLoop()
	go sc.healthLoop()
	return sc, nil
}

// doOne runs one setup command on a connection nobody else uses yet.
func (dc *dedicatedConn) doOne(ctx context.Context, addr string, args ...any) (Result, error) {
	cmd, err := newCommand(args)
	if err != nil {
		return Result{}, err
	}
	defer cmd.release()
	var out [1]Result
	ok, err := dc.do(ctx, addr, []*command{cmd}, out[:])
	if err == nil && !ok {
		err = ctx.Err()
	}
	return out[0], err
}

// send writes one command and returns the request that its replies
// complete. kind is the confirmation kind expected, one per name.
func (sc *subConn) send(kind string, names []string) *subReq {
	req := &subReq{kind: kind, want: make(map[string]bool, len(names)), done: make(chan struct{})}
	args := make([]any, 0, len(names)+1)
	if kind == "pong" {
		args = append(args, "PING")
	} else {
		args = append(args, strings.ToUpper(kind))
	}
	for _, n := range names {
		req.want[n] = true
		args = append(args, n)
	}
	cmd, err := newCommand(args)
	if err != nil {
		req.err = err
		close(req.done)
		return req
	}
	defer cmd.release()
	sc.wmu.Lock()
	defer sc.wmu.Unlock()
	sc.pmu.Lock()
	if sc.err != nil {
		sc.pmu.Unlock()
		req.err = sc.err
		close(req.done)
		return req
	}
	sc.pending = append(sc.pending, req)
	sc.pmu.Unlock()
	_ = sc.conn.SetWriteDeadline(time.Now().Add(sc.s.c.cfg.healthTimeout()))
	if _, err := sc.conn.Write(cmd.buf); err != nil {
		sc.fail(&ConnError{Addr: sc.addr, Op: "write", Sent: true, Err: err})
	}
	return req
}

// wait waits for req's replies. A node that stays silent past the health
// timeout is declared lost: the connection is closed, and its groups move.
func (sc *subConn) wait(ctx context.Context, req *subReq) error {
	t := time.NewTimer(sc.s.c.cfg.healthTimeout())
	defer t.Stop()
	select {
	case <-req.done:
		return req.err
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		sc.fail(&ConnError{Addr: sc.addr, Op: "read", Sent: true, Err: errSubHealth})
	}
	<-req.done
	return req.err
}

// fail ends the connection once: pending requests get err and the
// subscription re-homes every group that lived here.
func (sc *subConn) fail(err error) {
	sc.once.Do(func() {
		sc.pmu.Lock()
		sc.err = err
		pend := sc.pending
		sc.pending = nil
		sc.pmu.Unlock()
		_ = sc.conn.Close()
		for _, r := range pend {
			r.err = err
			close(r.done)
		}
		close(sc.done)
		sc.s.connLost(sc, err)
	})
}

func (sc *subConn) readLoop() {
	defer sc.s.wg.Done()
	for {
		r, err := sc.rd.readReply()
		if err != nil {
			sc.fail(&ConnError{Addr: sc.addr, Op: "read", Sent: true, Err: err})
			return
		}
		sc.lastSeen.Store(time.Now().UnixNano())
		sc.handle(r)
	}
}

// handle sorts one frame. RESP2 frames are arrays, RESP3 ones push frames;
// the shapes are the same.
func (sc *subConn) handle(r Result) {
	switch r.kind {
	case KindError:
		sc.complete("", "", r.err)
		return
	case KindString: // +PONG outside subscribed mode, or under RESP3
		sc.complete("pong", "", nil)
		return
	case KindArray, KindPush:
	default:
		return
	}
	first, ok := r.at(0)
	if !ok {
		return
	}
	kind := strings.ToLower(first.str)
	text := func(i int) string {
		e, _ := r.at(i)
		return e.str
	}
	switch kind {
	case "message", "smessage":
		if kind == "smessage" {
			sc.sawSlot(text(1))
		}
		sc.s.deliver(&Message{Channel: text(1), Payload: text(2), Sharded: kind == "smessage"})
	case "pmessage":
		sc.s.deliver(&Message{Pattern: text(1), Channel: text(2), Payload: text(3)})
	case "pong":
		sc.complete("pong", "", nil)
	case "subscribe", "psubscribe", "ssubscribe", "unsubscribe", "punsubscribe", "sunsubscribe":
		expected := sc.complete(kind, text(1), nil)
		switch {
		case kind == "ssubscribe":
			sc.sawSlot(text(1))
		case !expected && kind == "sunsubscribe":
			sc.s.shardLost(sc, text(1), sc.slotSince(text(1)))
		}
	}
	// Other pushes (RESP3 invalidations) belong to features not built yet.
}

func (sc *subConn) sawSlot(channel string) {
	if sc.slotSeen == nil {
		sc.slotSeen = map[slots.Slot]time.Time{}
	}
	sc.slotSeen[slots.Of(channel)] = time.Now()
}

// slotSince is the last moment the connection showed it served channel's
// slot; the connection's start when it never did.
func (sc *subConn) slotSince(channel string) time.Time {
	if t, ok := sc.slotSeen[slots.Of(channel)]; ok {
		return t
	}
	return sc.started
}

// complete applies a reply to the oldest request; it reports whether that
// request expected it. An error reply answers a whole request.
func (sc *subConn) complete(kind, name string, err error) bool {
	sc.pmu.Lock()
	defer sc.pmu.Unlock()
	if len(sc.pending) == 0 {
		return false
	}
	req := sc.pending[0]
	switch {
	case err != nil:
		req.err = err
		clear(req.want)
	case req.kind != kind:
		return false
	case kind == "pong":
	case !req.want[name]:
		return false
	default:
		delete(req.want, name)
	}
	if len(req.want) == 0 {
		sc.pending[0] = nil
		sc.pending = sc.pending[1:]
		close(req.done)
	}
	return true
}

// healthLoop pings a connection that has been silent for PingInterval, so a
// node that hangs (SIGSTOP, a dead host) is noticed even when nobody
// publishes; it also hands over interruption reports held back by a full
// buffer.
func (sc *subConn) healthLoop() {
	defer sc.s.wg.Done()
	every := sc.s.opts.PingInterval
	t := time.NewTicker(every / 2)
	defer t.Stop()
	for {
		select {
		case <-sc.done:
			return
		case <-t.C:
		}
		sc.s.flushHeld()
		if time.Since(time.Unix(0, sc.lastSeen.Load())) < every {
			continue
		}
		_ = sc.wait(context.Background(), sc.send("pong", nil))
	}
}

// close ends the connection on purpose (Close, or its groups moved away).
func (sc *subConn) close() { sc.fail(&ConnError{Addr: sc.addr, Op: "closed", Err: errSubClosed}) }
