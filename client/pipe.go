package client

import (
	"context"
	"crypto/tls"
	"errors"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// A pipe is one multiplexed connection. Callers append encoded requests to a
// shared write buffer and a FIFO of calls; whoever finds no flush running
// writes the buffer itself (so bursts coalesce into one syscall without a
// writer goroutine). Whoever holds the reader role matches replies to the
// FIFO in order: a caller that finds nobody reading reads itself (so a lone
// caller pays one wake-up per call, like a plain connection pool), and when
// it leaves with calls still outstanding a background reader takes over
// until the FIFO is empty (see pipe_read.go). A caller waits on its call or
// on its ctx, whichever is first; an abandoned call whose bytes already
// went out stays queued and the reader throws its reply away, one whose
// bytes had not is cut from the write buffer (dropAbandonedLocked).
//
// The caller that flushes blocks in Write at most until its ctx deadline:
// then the rest of the write is handed to a goroutine. (A ctx that is
// cancelled without a deadline cannot interrupt that Write; the write
// timeout, HealthTimeout, bounds it. Neither applies to TLS pipes, which
// always flush on a goroutine because a timed-out tls.Conn write is fatal.)
//
// Liveness is judged by progress, not completion: a pipe is alive while
// reply bytes arrive (a 512 MB value may take seconds) or while a command
// the server may legitimately take long on (EVAL, FCALL, KEYS, ...: see
// mayTakeLong) is outstanding, whose caller's ctx bounds it. Otherwise
// requests outstanding with no byte for HealthTimeout close the pipe: a hung
// node is declared so as fast as ever. Blocking commands still go to
// node.doDedicated: on a shared pipe they would hold every later caller.
type pipe struct {
	addr         string
	conn         net.Conn
	rd           *respReader
	tls          bool // a timed-out tls.Conn write is fatal, so never use ctx deadlines for writes
	writeTimeout time.Duration
	health       time.Duration
	onFail       func(error)         // tells the node why the pipe died
	budget       *budget             // the node's bound on queued requests; nil: none
	onPush       func(*pipe, Result) // RESP3 pushes (cache invalidations); nil: ignored

	mu        sync.Mutex
	wbuf      []byte     // small requests, coalesced
	segs      [][]byte   // written before wbuf: big requests, and the wbufs queued ahead of them
	pins      []*command // commands whose buf is in segs (uncopied); released once written
	spare     []byte
	queue     []*call // in send order; the last `unflushed` have not reached Write
	unflushed int
	flushing  bool
	closed    bool
	causeOp   string
	cause     error

	// reading is the reader role: whoever set it owns rd, pend, head,
	// stale and ws. Outstanding calls always have a holder (or one about to
	// CAS).
	reading atomic.Bool
	pend    []*call // calls taken from the queue, in order; pend[head:] unanswered
	head    int
	stale   bool       // a fired cancel watch may have left the read deadline in the past
	ws      watchState // cancel watches (pipe_cancel.go)

	handovers atomic.Int32 // writes finished by a goroutine after a caller's deadline (diagnostics)
	bgReaders atomic.Int32 // background readers started (diagnostics)
	wakes     atomic.Int32 // callers whose ctx ended before their reply (diagnostics)
	wave      atomic.Int32 // calls the reader took from the queue at its last refill
	idleAt    atomic.Int64 // UnixNano when the reader role was last given up
	broken    atomic.Bool  // fast-path check for node
	queued    atomic.Int64 // calls appended to the write buffer (gather watches it grow)
	sent      atomic.Int64 // calls handed to Write
	done      atomic.Int64 // calls whose replies have been read
	slowOut   atomic.Int32 // outstanding calls holding a command that may take long
	dropped   atomic.Int64 // abandoned calls cut out before they were written

	// Write-deadline cache, owned by whoever holds the flushing role.
	wdl      time.Time
	wdlByCtx bool

	// Health checker state, owned by the timer callback.
	timer      *time.Timer
	lastDone   int64
	lastBytes  int64
	stallSince time.Time
}

const (
	callWaiting uint32 = iota
	callDone
	callAbandoned
)

// asking is the ASKING request sent in front of a redirected command.
var askingCmd = []byte("*1\r\n$6\r\nASKING\r\n")

const (
	// maxPooledWriteBuf caps what an idle pipe keeps for its write buffers.
	maxPooledWriteBuf = 1 << 20
	// bigRequest: a command at least this long is written from its own
	// buffer (pinned by a reference) instead of being copied under the lock,
	// so a multi-megabyte value neither holds up other callers nor costs a
	// second allocation.
	bigRequest = 16 << 10
)

// call is one queued request (or a batch of them for doMulti). It is pooled;
// exactly one party returns it: the waiter once it received done, or the
// reader/closer when the waiter abandoned it.
type call struct {
	done    chan struct{} // capacity 1, drained before reuse
	state   atomic.Uint32
	n       int          // replies expected (not counting ASKING acks)
	slow    bool         // holds a command that may take long (counted in slowOut)
	asks    []bool       // asks[i]: reply i is preceded by an ASKING ack
	expect  []replyClass // expect[i]: what reply i may be (desync.go)
	results []Result     // filled by the reader
	err     error        // transport failure, set before done

	// Room taken in the node's budget, given back once, when the call
	// completes or is recycled.
	budget        *budget
	bCmds, bBytes int64
	// wfrom, wto: the call's bytes in wbuf while it is unflushed (valid
	// while segs is empty), so an abandoned call can be cut out.
	wfrom, wto int

	// reader-only progress
	ackPending bool
	ack        Result // an error reply to ASKING, if any
}

var callPool = sync.Pool{New: func() any { return &call{done: make(chan struct{}, 1)} }}

func getCall(n int) *call {
	c := callPool.Get().(*call)
	c.state.Store(callWaiting)
	c.n = n
	c.slow = false
	c.err = nil
	c.ack = Result{}
	return c
}

func (c *call) releaseBudget() {
	if c.budget != nil {
		c.budget.release(c.bCmds, c.bBytes)
		c.budget = nil
	}
}

func putCall(c *call) {
	c.releaseBudget()
	clear(c.results) // do not pin reply memory in the pool
	if cap(c.results) > 1024 || cap(c.asks) > 1024 {
		return
	}
	c.results, c.asks, c.expect = c.results[:0], c.asks[:0], c.expect[:0]
	callPool.Put(c)
}

// complete hands c to its waiter, or recycles it if the waiter is gone.
func complete(c *call, err error) {
	c.releaseBudget()
	c.err = err
	if c.state.CompareAndSwap(callWaiting, callDone) {
		c.done <- struct{}{}
		return
	}
	putCall(c)
}

func newPipe(addr string, conn net.Conn, rd *respReader, cfg *connConfig, onFail func(error)) *pipe {
	_, isTLS := conn.(*tls.Conn)
	p := &pipe{
		addr:         addr,
		conn:         conn,
		rd:           rd,
		tls:          isTLS || cfg.TLS != nil,
		writeTimeout: cfg.healthTimeout(),
		health:       cfg.healthTimeout(),
		wbuf:         make([]byte, 0, 4096),
		spare:        make([]byte, 0, 4096),
		onFail:       onFail,
		onPush:       cfg.OnPush,
	}
	p.timer = time.AfterFunc(p.tick(), p.healthCheck)
	p.idleAt.Store(time.Now().UnixNano())
	if p.tls || p.onPush != nil {
		// A tls.Conn read that times out mid-record is not worth the risk:
		// TLS pipes keep one reader for their whole life. So do tracking
		// pipes: an invalidation must be applied when it arrives, not when
		// the next caller happens to read.
		p.reading.Store(true)
		go p.readLoop(true)
	}
	return p
}

func (p *pipe) tick() time.Duration { return max(p.health/8, 5*time.Millisecond) }

func (p *pipe) closedErr() error {
	return &ConnError{Addr: p.addr, Op: p.causeOp, Sent: false, Err: p.cause}
}

// do sends cmd (after ASKING when asking) and waits for its reply. The error
// is non-nil only when no reply was received: ctx.Err() when the caller's
// context ended first, otherwise a *ConnError. Error replies come back as a
// Result of KindError with a nil error.
func (p *pipe) do(ctx context.Context, cmd *command, asking bool) (Result, error) {
	if err := ctx.Err(); err != nil {
		return errResult(err), err
	}
	c := getCall(1)
	c.asks = append(c.asks, asking)
	c.expect = append(c.expect[:0], expectedReply(cmd))
	if err := p.send(ctx, c, cmd, nil); err != nil {
		putCall(c)
		return errResult(err), err
	}
	if err := p.wait(ctx, c); err != nil {
		return errResult(err), err
	}
	r := c.results[0]
	putCall(c)
	return r, nil
}

// doMulti sends cmds in one write and fills out (len(out) >= len(cmds)) in
// order. asking may be nil. A transport failure fills every out with it.
func (p *pipe) doMulti(ctx context.Context, cmds []*command, out []Result, asking []bool) error {
	if len(cmds) == 0 {
		return nil
	}
	if len(out) < len(cmds) || (asking != nil && len(asking) < len(cmds)) {
		return &ArgError{Index: -1, Type: "doMulti: out or asking shorter than cmds"}
	}
	c, err := p.startMulti(ctx, cmds, asking)
	if err == nil {
		return p.finishMulti(ctx, c, cmds, out)
	}
	for i := range cmds {
		out[i] = errResult(err)
	}
	return err
}

// startMulti queues cmds as one call and sends them; finishMulti collects
// the replies. Split, they let one goroutine have batches in flight on
// several pipes at once (Pipeline.Exec) instead of a goroutine per pipe.
// asking may be nil; the caller guarantees len(asking) >= len(cmds) else.
func (p *pipe) startMulti(ctx context.Context, cmds []*command, asking []bool) (*call, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	c := getCall(len(cmds))
	c.expect = c.expect[:0]
	for i := range cmds {
		c.asks = append(c.asks, asking != nil && asking[i])
		c.expect = append(c.expect, expectedReply(cmds[i]))
	}
	if err := p.send(ctx, c, nil, cmds); err != nil {
		putCall(c)
		return nil, err
	}
	return c, nil
}

// finishMulti waits for c from startMulti and fills out (len(out) >=
// len(cmds)) in order; a transport failure fills every out with it. c is
// consumed either way.
//
// One caller collects a round's shares node after node, so a node that
// holds it up to its deadline would fail the shares of the nodes after it
// although their replies are already here. Those are still collected: a
// ctx that has ended gets collectGrace to read what has arrived.
func (p *pipe) finishMulti(ctx context.Context, c *call, cmds []*command, out []Result) error {
	wctx := ctx
	if ended(ctx) {
		var cancel context.CancelFunc
		wctx, cancel = context.WithTimeout(context.WithoutCancel(ctx), collectGrace)
		defer cancel()
	}
	err := p.wait(wctx, c)
	if err != nil && wctx != ctx && errors.Is(err, context.DeadlineExceeded) {
		err = context.DeadlineExceeded // the caller's own end, not the grace's
		if cerr := ctx.Err(); cerr != nil {
			err = cerr
		}
	}
	if err == nil {
		copy(out, c.results)
		putCall(c)
		return nil
	}
	for i := range cmds {
		out[i] = errResult(err)
	}
	return err
}

// collectGrace bounds how long after its deadline a caller still reads
// replies that have arrived (see finishMulti).
const collectGrace = time.Millisecond

// ended reports that ctx is done or its deadline has passed (its timer may
// not have fired yet).
func ended(ctx context.Context) bool {
	if ctx.Err() != nil {
		return true
	}
	dl, ok := ctx.Deadline()
	return ok && !time.Now().Before(dl)
}

func (p *pipe) wait(ctx context.Context, c *call) error {
	if p.reading.CompareAndSwap(false, true) {
		// Only the role holder completes calls, so c's state is now stable:
		// the previous holder may have answered it before leaving.
		if c.state.Load() != callWaiting {
			p.release()
		} else if ok, err := p.readFor(ctx, c); ok {
			return err
		}
		// Otherwise the pipe failed: c was completed like every other call.
	}
	if ctxDone := ctx.Done(); ctxDone == nil {
		<-c.done // a context that never ends: a plain receive, no select
	} else {
		select {
		case <-c.done:
		case <-ctxDone:
			if c.state.CompareAndSwap(callWaiting, callAbandoned) {
				return ctx.Err() // the reader (or closer) owns c now
			}
			<-c.done // completed at the same moment: the token is on its way
		}
	}
	if c.err != nil {
		err := c.err
		putCall(c)
		return err
	}
	return nil
}

// fail closes the pipe once; the reader then fails every queued call.
func (p *pipe) fail(op string, err error) {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return
	}
	p.closed, p.causeOp, p.cause = true, op, err
	p.mu.Unlock()
	p.broken.Store(true)
	p.timer.Stop()
	p.unkeep() // else a long-lived ctx would keep the dead pipe
	// Report before closing: the reader fails the callers only after the
	// close, so they can rely on the node having recorded the cause.
	if p.onFail != nil {
		p.onFail(&ConnError{Addr: p.addr, Op: op, Sent: true, Err: err})
	}
	_ = p.conn.Close()
}

func (p *pipe) close() { p.fail("closed", net.ErrClosed) }

// healthCheck closes the pipe when requests are outstanding, none of them
// may legitimately take long, and not one reply byte has arrived for the
// health timeout. It runs on a timer, so the hot path pays nothing but
// atomic counters.
func (p *pipe) healthCheck() {
	if p.broken.Load() {
		return
	}
	now := time.Now()
	sent, done, got := p.sent.Load(), p.done.Load(), p.rd.progress.Load()
	switch {
	case sent == done:
		p.stallSince = time.Time{}
	case done != p.lastDone || got != p.lastBytes || p.slowOut.Load() > 0 || p.stallSince.IsZero():
		p.stallSince = now // progress (or a new stall): the clock starts now
	case now.Sub(p.stallSince) >= p.health:
		p.fail("health", &healthError{after: p.health.String()})
		return
	}
	p.lastDone, p.lastBytes = done, got
	p.timer.Reset(p.tick())
}

func isRedirect(r Result) bool {
	if r.kind != KindError {
		return false
	}
	e, ok := r.err.(*Error)
	if !ok {
		return false
	}
	p := e.Prefix()
	return p == "MOVED" || p == "ASK"
}
