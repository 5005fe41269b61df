package client

import (
	"context"
	"errors"
	"strings"

	"github.com/slotrouter/slotrouter/router"
	"github.com/slotrouter/slotrouter/slots"
)

// attempt is one command's way through the router's decisions: the single
// state machine behind Do and Pipeline (and whatever else sends commands).
// The router decides, the client carries; a driver loops
//
//	addr, done := t.target(ctx)     // where to send it next (or a final result)
//	res, err := <send it to addr>   // the driver's own I/O: one command, a batch, a dedicated connection
//	final, done := t.judge(ctx, res, err)
//	if t.wait { <back off: t.backoff> }
//
// so every rule (redirects, failover retries, the hung-master rescue, what
// may run twice, suspects cleared on an answer, the error a caller sees)
// holds for every driver. A Pipeline drives one attempt per command, in
// rounds, and backs off once per round.
type attempt struct {
	c      *Client
	a      router.Attempt
	pinned string // DoOn: this node, no routing and no retries
	addr   string // the node of the try in progress
	tries  int    // tries made (RetryError.Attempts)
	last   error  // the last failure, for RetryError
	wait   bool   // back off before the next try

	blocking bool       // runs on a dedicated connection
	cache    *cacheFill // a DoCache miss: sent on the node's tracking connection
}

// classify looks the command up (learning it if needed) and fills in what
// the router needs: its slot, whether it is read-only, whether it blocks.
// info is the command's table entry (nil when unknown). A non-nil error is
// final unless the caller handles it (a CROSSSLOT split), or ctx ended
// while learning.
func (c *Client) classify(ctx context.Context, cmd *command, t *attempt) (*slots.Command, error) {
	t.c = c
	info := c.lookup(ctx, cmd.args)
	if info == nil {
		if err := ctx.Err(); err != nil {
			return nil, err // left while the command was being learnt
		}
		return nil, nil
	}
	cmd.slow = mayTakeLong(info, cmd.args)
	slot, hasKeys, err := info.Slot(cmd.args)
	if err != nil {
		return info, err
	}
	t.a.Slot, t.a.HasSlot = slot, hasKeys
	t.a.ReadOnly = info.Flags&slots.Readonly != 0
	t.blocking = info.IsBlocking(cmd.args)
	return info, nil
}

// target picks the node for the next try. When ok is false the attempt
// is over (final is its result) or, with t.wait set, must back off first.
func (t *attempt) target(ctx context.Context) (addr string, final Result, ok bool) {
	t.tries++
	if t.pinned != "" {
		t.addr = t.pinned
		return t.pinned, Result{}, true
	}
	addr, err := t.c.router.Target(&t.a)
	if err == nil {
		t.addr = addr
		return addr, Result{}, true
	}
	t.last = err
	if cerr := ctx.Err(); cerr != nil {
		return "", t.c.gaveUp(t.tries, cerr, err), false
	}
	dec := t.c.router.OnFailure(ctx, &t.a, "", err, false)
	if dec.Action == router.Done {
		return "", t.c.final(dec.Err), false
	}
	t.wait = true
	return "", Result{}, false
}

// judge applies the router's rules to one try's outcome: done with the
// final result, or not done and to be tried again (after backoff when
// t.wait is set).
func (t *attempt) judge(ctx context.Context, res Result, err error) (final Result, done bool) {
	if err != nil {
		var ce *ConnError
		return t.failed(ctx, err, !errors.As(err, &ce) || ce.Sent)
	}
	return t.replied(res)
}

// failed judges a try that got no reply; sent says whether the command may
// have reached the server (for work of several commands, whether the part
// that changes data may have).
func (t *attempt) failed(ctx context.Context, err error, sent bool) (final Result, done bool) {
	c := t.c
	if c.closed.Load() {
		return errResult(ErrClosed), true
	}
	t.last = err
	if !t.a.ReadOnly && !t.a.Idempotent {
		t.a.Idempotent = isIdempotent(ctx)
	}
	if t.pinned != "" || errors.Is(err, ErrReplyTooLarge) || permanent(err) {
		return errResult(err), true // a retry would fail the same way
	}
	dec := c.router.OnFailure(ctx, &t.a, t.addr, err, sent)
	if dec.Action == router.Done {
		return c.final(dec.Err), true
	}
	t.wait = true
	return Result{}, false
}

// replied judges a try that got a reply: anything but a redirect or a
// cluster error is final.
func (t *attempt) replied(res Result) (final Result, done bool) {
	c, addr := t.c, t.addr
	msg, isErr := errorText(res)
	if !isErr || t.pinned != "" || !mayRedirect(msg) {
		c.router.ClearSuspect(addr)
		return res, true
	}
	t.last = res.Err()
	dec := c.router.OnReply(&t.a, addr, msg)
	if dec.Action == router.Done {
		if dec.Err != nil {
			return c.final(dec.Err), true
		}
		return res, true
	}
	if dec.Redial {
		c.deploy.nameMoved(addr) // resolve the name afresh for the redial
		c.dropNode(addr)
	}
	t.wait = dec.Backoff
	return Result{}, false
}

// backoff waits before the next try; when the caller must give up (ctx,
// retry budget, Close) it returns the final result and false. A Pipeline
// backs off once per round instead, for all its commands (see Exec).
func (t *attempt) backoff(ctx context.Context) (Result, bool) {
	t.wait = false
	if werr := t.c.router.Wait(ctx, &t.a); werr != nil {
		return t.giveUp(werr), false
	}
	return Result{}, true
}

// giveUp is the final result when retrying stopped for why.
func (t *attempt) giveUp(why error) Result { return t.c.gaveUp(t.tries, why, t.last) }

// retrySafe reports whether the command may run twice: only such commands
// are abandoned on a suspect node (the hung-master rescue).
func (t *attempt) retrySafe(ctx context.Context) bool {
	return t.pinned == "" && !t.a.Asking() && (t.a.ReadOnly || t.a.Idempotent || isIdempotent(ctx))
}

// final is a decision's error as the caller sees it.
func (c *Client) final(err error) Result {
	if c.closed.Load() {
		return errResult(ErrClosed)
	}
	return errResult(err)
}

// gaveUp is the result of a call that stopped retrying.
func (c *Client) gaveUp(attempts int, why, last error) Result {
	if c.closed.Load() {
		return errResult(ErrClosed)
	}
	return errResult(&RetryError{Attempts: attempts, Err: why, Last: last})
}

// watch returns a ctx for I/O on a node that recently failed: it is
// cancelled as soon as a new view routes any of keys elsewhere, so a hung
// master (SIGSTOP, a dead host without RST) does not hold calls until their
// deadlines although its replica took over. The abandoned requests may
// still run on the old node, which is why only retry-safe commands are
// watched. stop must be called; ownerChanged converts the I/O error.
func (c *Client) watch(ctx context.Context, addr string, keys []router.Attempt) (wctx context.Context, stop func()) {
	wctx, cancel := context.WithCancelCause(ctx)
	go func() {
		for {
			changed := c.router.Changed()
			for i := range keys {
				if !c.router.Serves(&keys[i], addr) {
					cancel(errOwnerChanged)
					return
				}
			}
			select {
			case <-changed:
			case <-wctx.Done():
				return
			}
		}
	}()
	return wctx, func() { cancel(nil) }
}

// ownerChanged turns the error of I/O abandoned by watch into a failure
// that may have been sent, so the router retries it on the new owner.
func ownerChanged(ctx, wctx context.Context, addr string, err error) error {
	if err != nil && ctx.Err() == nil && errors.Is(context.Cause(wctx), errOwnerChanged) {
		return &ConnError{Addr: addr, Op: "read", Sent: true, Err: errOwnerChanged}
	}
	return err
}

// mayRedirect is a cheap first filter so ordinary error replies (WRONGTYPE,
// ERR ...) skip the router.
func mayRedirect(msg string) bool {
	if msg == "" {
		return false
	}
	switch msg[0] {
	case 'M', 'A', 'T', 'C', 'L', 'R':
		kind, _, _ := strings.Cut(msg, " ")
		switch kind {
		case "MOVED", "ASK", "TRYAGAIN", "CLUSTERDOWN", "LOADING", "MASTERDOWN", "READONLY":
			return true
		}
	}
	return false
}

// errorText is the text of an error reply, without allocating.
func errorText(r Result) (string, bool) {
	if r.kind != KindError {
		return "", false
	}
	if e, ok := r.err.(*Error); ok {
		return e.msg, true
	}
	return "", false
}
