package client

import (
	"context"
	"errors"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// node holds the connections to one server address: cfg.Conns multiplexed
// pipes (dialled lazily, replaced when they break) and a small pool of
// dedicated connections for blocking commands. Nodes share no locks, and the
// fast path (a live pipe) takes none.
type node struct {
	addr  string
	cfg   *connConfig
	pipes []atomic.Pointer[pipe]
	next  atomic.Uint32

	lastErr atomic.Pointer[nodeErr]
	budget  *budget // bounds what the pipes have queued (see budget)

	mu        sync.Mutex
	dials     []*dialAttempt // in-flight dial per pipe slot
	dialErr   error          // last dial failure, served during dialBackoff
	dialErrAt time.Time
	idle      []*dedicatedConn
	busy      map[*dedicatedConn]struct{} // in use: closed by close, interrupting them
	closed    bool
	retired   error         // why retireAll took the node out of service; nil otherwise
	draining  []*pipe       // pipes retireAll took out, closed by close if still open
	done      chan struct{} // closed by close
}

type nodeErr struct {
	err error
	at  time.Time
}

// dialAttempt is one in-flight dial shared by every caller that needs the
// pipe; each waits on it with its own ctx.
type dialAttempt struct {
	done chan struct{}
	p    *pipe
	err  error
}

func newNode(addr string, cfg *connConfig) *node {
	n := &node{addr: addr, cfg: cfg, budget: newBudget(cfg.MaxInflight, cfg.MaxInflightBytes), done: make(chan struct{})}
	n.pipes = make([]atomic.Pointer[pipe], cfg.conns())
	n.dials = make([]*dialAttempt, cfg.conns())
	return n
}

func (n *node) closedErr() error {
	if n.retired != nil {
		// Nothing was sent: the attempt loop re-routes the call like any unsent one.
		return &ConnError{Addr: n.addr, Op: "drain", Err: n.retired}
	}
	return &ConnError{Addr: n.addr, Op: "closed", Err: net.ErrClosed}
}

// lastError is the most recent dial or connection failure; nil once a dial
// succeeds afterwards.
func (n *node) lastError() error {
	if e := n.lastErr.Load(); e != nil {
		return e.err
	}
	return nil
}

// lastErrorAt is when lastError happened (zero when there is none).
func (n *node) lastErrorAt() time.Time {
	if e := n.lastErr.Load(); e != nil {
		return e.at
	}
	return time.Time{}
}

func (n *node) setLastErr(err error) {
	n.lastErr.Store(&nodeErr{err: err, at: time.Now()})
	n.cfg.logger().Debug("slotrouter: connection failed", "addr", n.addr, "err", err)
}

// pipe returns a live pipe, dialling one if needed.
func (n *node) pipe(ctx context.Context) (*pipe, error) {
	i := 0
	if len(n.pipes) > 1 {
		i = int(n.next.Add(1) % uint32(len(n.pipes)))
	}
	if p := n.pipes[i].Load(); p != nil && !p.broken.Load() {
		return p, nil
	}
	return n.dialPipe(ctx, i)
}

func (n *node) dialPipe(ctx context.Context, i int) (*pipe, error) {
	n.mu.Lock()
	if n.closed {
		n.mu.Unlock()
		return nil, n.closedErr()
	}
	if p := n.pipes[i].Load(); p != nil && !p.broken.Load() {
		n.mu.Unlock()
		return p, nil
	}
	d := n.dials[i]
	if d == nil {
		if n.dialErr != nil && time.Since(n.dialErrAt) < dialBackoff {
			err := n.dialErr
			n.mu.Unlock()
			return nil, err
		}
		d = &dialAttempt{done: make(chan struct{})}
		n.dials[i] = d
		// The dial runs on its own goroutine with DialTimeout, so no single
		// caller's short ctx aborts it for the others, and every waiter can
		// still leave on its own ctx.
		go n.runDial(i, d)
	}
	n.mu.Unlock()
	select {
	case <-d.done:
		return d.p, d.err
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-n.done:
		return nil, n.closedErr()
	}
}

func (n *node) runDial(i int, d *dialAttempt) {
	conn, rd, err := dialConn(context.Background(), n.addr, n.cfg)
	n.mu.Lock()
	n.dials[i] = nil
	if err == nil && n.closed {
		_ = conn.Close()
		err = n.closedErr()
	}
	if err != nil {
		n.dialErr, n.dialErrAt = err, time.Now()
		n.mu.Unlock()
		n.setLastErr(err)
	} else {
		p := newPipe(n.addr, conn, rd, n.cfg, n.setLastErr)
		p.budget = n.budget
		if old := n.pipes[i].Swap(p); old != nil {
			old.close()
		}
		n.dialErr = nil
		n.lastErr.Store(nil)
		d.p = p
		n.mu.Unlock()
	}
	d.err = err
	close(d.done)
}

// retryable reports a failure that happened before the request left this
// process, on a pipe that broke between pick and send: worth one more try
// on a fresh pipe.
func retryable(err error) bool {
	var ce *ConnError
	return errors.As(err, &ce) && !ce.Sent && ce.Op != "dial" && ce.Op != "setup" && ce.Op != "closed"
}

// do sends cmd on a shared pipe. See pipe.do for the error contract.
func (n *node) do(ctx context.Context, cmd *command, asking bool) (Result, error) {
	for attempt := 0; ; attempt++ {
		p, err := n.pipe(ctx)
		if err != nil {
			return errResult(err), err
		}
		r, err := p.do(ctx, cmd, asking)
		if err == nil || attempt > 0 || !retryable(err) {
			return r, err
		}
	}
}

// doMulti sends cmds in one write on a shared pipe; see pipe.doMulti.
func (n *node) doMulti(ctx context.Context, cmds []*command, out []Result, asking []bool) error {
	for attempt := 0; ; attempt++ {
		p, err := n.pipe(ctx)
		if err != nil {
			for i := range cmds {
				if i < len(out) {
					out[i] = errResult(err)
				}
			}
			return err
		}
		err = p.doMulti(ctx, cmds, out, asking)
		if err == nil || attempt > 0 || !retryable(err) {
			return err
		}
	}
}

// doDedicated runs cmd on a connection of its own (blocking commands such as
// BLPOP, which would stall a shared pipe). ctx bounds it; a connection that
// hit its ctx is closed, not reused.
func (n *node) doDedicated(ctx context.Context, cmd *command) (Result, error) {
	var out [1]Result
	err := n.doDedicatedMulti(ctx, []*command{cmd}, out[:])
	return out[0], err
}

// doDedicatedMulti is doDedicated for several commands in one write (MULTI
// ... EXEC with a blocking command inside, WATCH sequences).
func (n *node) doDedicatedMulti(ctx context.Context, cmds []*command, out []Result) error {
	if len(out) < len(cmds) {
		return &ArgError{Index: -1, Type: "doDedicatedMulti: out shorter than cmds"}
	}
	fail := func(err error) error {
		for i := range cmds {
			out[i] = errResult(err)
		}
		return err
	}
	if err := ctx.Err(); err != nil {
		return fail(err)
	}
	dc, err := n.getDedicated(ctx)
	if err != nil {
		return fail(err)
	}
	ok, err := dc.do(ctx, n.addr, cmds, out)
	if !ok {
		n.dropDedicated(dc)
		if err != nil {
			if _, isConn := err.(*ConnError); isConn {
				n.setLastErr(err)
			}
			return fail(err)
		}
		return nil
	}
	n.putDedicated(dc)
	return nil
}

func (n *node) getDedicated(ctx context.Context) (*dedicatedConn, error) {
	n.mu.Lock()
	if n.closed {
		n.mu.Unlock()
		return nil, n.closedErr()
	}
	if k := len(n.idle); k > 0 {
		dc := n.idle[k-1]
		n.idle[k-1] = nil
		n.idle = n.idle[:k-1]
		n.busyLocked(dc)
		n.mu.Unlock()
		return dc, nil
	}
	if n.dialErr != nil && time.Since(n.dialErrAt) < dialBackoff {
		err := n.dialErr
		n.mu.Unlock()
		return nil, err
	}
	n.mu.Unlock()
	conn, rd, err := dialConn(ctx, n.addr, n.cfg)
	if err != nil {
		if ctx.Err() == nil {
			n.mu.Lock()
			n.dialErr, n.dialErrAt = err, time.Now()
			n.mu.Unlock()
			n.setLastErr(err)
		}
		return nil, err
	}
	dc := &dedicatedConn{conn: conn, rd: rd}
	n.mu.Lock()
	if n.closed {
		n.mu.Unlock()
		_ = conn.Close()
		return nil, n.closedErr()
	}
	n.busyLocked(dc)
	n.mu.Unlock()
	return dc, nil
}

// busyLocked records dc as in use, so close can interrupt it.
func (n *node) busyLocked(dc *dedicatedConn) {
	if n.busy == nil {
		n.busy = map[*dedicatedConn]struct{}{}
	}
	n.busy[dc] = struct{}{}
}

// dropDedicated closes a dedicated connection that is not reusable.
func (n *node) dropDedicated(dc *dedicatedConn) {
	n.mu.Lock()
	delete(n.busy, dc)
	n.mu.Unlock()
	_ = dc.conn.Close()
}

func (n *node) putDedicated(dc *dedicatedConn) {
	n.mu.Lock()
	delete(n.busy, dc)
	if !n.closed && len(n.idle) < n.cfg.dedicatedIdle() {
		n.idle = append(n.idle, dc)
		n.mu.Unlock()
		return
	}
	n.mu.Unlock()
	_ = dc.conn.Close()
}

// close closes every connection, draining ones and the ones in use by
// blocking commands included, and fails callers waiting for a dial or for
// room in the budget; later calls fail with Op "closed". A node retireAll
// took out of service is closed too: closed is then already set.
func (n *node) close() {
	n.mu.Lock()
	select {
	case <-n.done:
		n.mu.Unlock()
		return
	default:
	}
	n.closed, n.retired = true, nil
	close(n.done)
	idle, draining := n.idle, n.draining
	n.idle, n.draining = nil, nil
	for dc := range n.busy {
		idle = append(idle, dc)
	}
	n.busy = nil
	n.mu.Unlock()
	n.budget.close(n.closedErr())
	for _, p := range draining {
		p.close()
	}
	for _, dc := range idle {
		_ = dc.conn.Close()
	}
	for i := range n.pipes {
		if p := n.pipes[i].Load(); p != nil {
			p.close()
		}
	}
}

// outstanding is the number of requests written to the node's pipes and
// not yet answered (a load and health signal for the router).
func (n *node) outstanding() int64 {
	var s int64
	for i := range n.pipes {
		if p := n.pipes[i].Load(); p != nil && !p.broken.Load() {
			s += p.sent.Load() - p.done.Load()
		}
	}
	return s
}

// drain retires the connections whose peer address keep rejects (a DNS
// name that now points elsewhere): new commands dial afresh, while requests
// already written on the old pipes still get their replies; each old pipe
// is closed once it has nothing outstanding (see retire).
// It returns how many connections were retired.
func (n *node) drain(keep func(ip string) bool) int {
	n.mu.Lock()
	var old []*pipe
	for i := range n.pipes {
		p := n.pipes[i].Load()
		if p != nil && !p.broken.Load() && !keep(remoteIP(p.conn)) && n.pipes[i].CompareAndSwap(p, nil) {
			old = append(old, p)
		}
	}
	idle := n.idle[:0]
	var stale []*dedicatedConn
	for _, dc := range n.idle {
		if keep(remoteIP(dc.conn)) {
			idle = append(idle, dc)
		} else {
			stale = append(stale, dc)
		}
	}
	clear(n.idle[len(idle):])
	n.idle = idle
	n.mu.Unlock()
	letGo(stale, old, errDrained)
	return len(old) + len(stale)
}

// retireAll takes the node out of service without cutting the calls in
// flight (the node left the view: a demoted master, a removed node): new
// commands fail at once with a not-sent *ConnError (Op "drain"), which the
// attempt loop re-routes, while the replies already owed on each pipe are
// read until they arrive or the health rule fires. Such a reply is often
// READONLY or MOVED, proof that the command did not run, so its call is
// re-routed too, where closing the connection would have failed it as "may
// have been sent". Idle dedicated connections are closed; busy ones are
// closed when their caller hands them back.
func (n *node) retireAll(cause error) {
	n.mu.Lock()
	if n.closed {
		n.mu.Unlock()
		return
	}
	n.closed, n.retired = true, cause
	idle := n.idle
	n.idle = nil
	var old []*pipe
	for i := range n.pipes {
		if p := n.pipes[i].Swap(nil); p != nil {
			old = append(old, p)
		}
	}
	n.draining = old
	n.mu.Unlock()
	letGo(idle, old, cause)
}

// letGo closes idle dedicated connections and retires pipes (see retire).
func letGo(idle []*dedicatedConn, pipes []*pipe, cause error) {
	for _, dc := range idle {
		_ = dc.conn.Close()
	}
	for _, p := range pipes {
		go retire(p, cause)
	}
}

// drained reports that a retired node has no connection left open.
func (n *node) drained() bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	for _, p := range n.draining {
		if !p.broken.Load() {
			return false
		}
	}
	return true
}

// retire closes p once it has nothing outstanding, recording cause. A
// stalled reply is the pipe's own health rule's to fail (Op "health"); the
// cap of four health timeouts only ends a drain that keeps making progress.
func retire(p *pipe, cause error) {
	deadline := time.Now().Add(4 * p.health)
	for time.Now().Before(deadline) && !p.broken.Load() {
		p.mu.Lock()
		queued := len(p.queue)
		p.mu.Unlock()
		if queued == 0 && p.sent.Load() == p.done.Load() {
			break
		}
		time.Sleep(p.tick())
	}
	p.fail("drain", cause)
}

func remoteIP(c net.Conn) string {
	if c == nil || c.RemoteAddr() == nil {
		return ""
	}
	host, _, err := net.SplitHostPort(c.RemoteAddr().String())
	if err != nil {
		return c.RemoteAddr().String()
	}
	return host
}
