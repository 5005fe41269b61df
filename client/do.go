package client

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/slotrouter/slotrouter/router"
	"github.com/slotrouter/slotrouter/slots"
)

// Do runs one command, args being the command name and its arguments
// (strings, []byte, integers, floats, bools), and returns its reply. The
// command goes to the node that owns its keys (every key must hash to one
// slot); key-less commands go to any master.
//
// Redirects, failovers and resharding are handled inside Do, bounded by ctx:
// Do never returns later than ctx's deadline. A command that surely did not
// run is retried whatever it is; one that may have run (the connection died
// after it was sent) is retried only if it is read-only or ctx was made by
// Idempotent.
func (c *Client) Do(ctx context.Context, args ...any) Result {
	cmd, err := encodeCommand(args, deadlineOf(ctx))
	if err != nil {
		return errResult(err)
	}
	res := c.process(ctx, cmd, "")
	cmd.release()
	return res
}

// DoOn runs a command on the node at addr, without routing or redirects:
// for per-node commands such as INFO, SCAN, KEYS or DBSIZE.
func (c *Client) DoOn(ctx context.Context, addr string, args ...any) Result {
	cmd, err := encodeCommand(args, deadlineOf(ctx))
	if err != nil {
		return errResult(err)
	}
	res := c.process(ctx, cmd, addr)
	cmd.release()
	return res
}

// RetryError is returned when a call ran out of time or retries while the
// deployment was recovering. It matches both causes with errors.Is: the
// context's error (or the budget) and the last failure seen, e.g.
// errors.Is(err, context.DeadlineExceeded) and errors.Is(err, ErrClusterDown).
type RetryError struct {
	Attempts int
	Err      error // why retrying stopped
	Last     error // the last failure
}

func (e *RetryError) Error() string {
	return fmt.Sprintf("slotrouter: gave up after %d attempts: %v (last: %v)", e.Attempts, e.Err, e.Last)
}

func (e *RetryError) Unwrap() []error { return []error{e.Err, e.Last} }

// process is the routing loop: the router decides, the node carries.
func (c *Client) process(ctx context.Context, cmd *command, pinned string) Result {
	if c.closed.Load() {
		return errResult(ErrClosed)
	}
	if ctx == nil {
		return errResult(ErrNilContext)
	}
	info := c.lookup(ctx, cmd.args)
	var a router.Attempt
	blocking := false
	if info != nil {
		slot, hasKeys, err := info.Slot(cmd.args)
		if err != nil {
			return errResult(err)
		}
		a.Slot, a.HasSlot = slot, hasKeys
		a.ReadOnly = info.Flags&slots.Readonly != 0
		blocking = info.IsBlocking(cmd.args)
	}
	var last error
	for attempt := 1; ; attempt++ {
		addr := pinned
		if addr == "" {
			var err error
			if addr, err = c.router.Target(&a); err != nil {
				last = err
				if cerr := ctx.Err(); cerr != nil {
					return errResult(&RetryError{Attempts: attempt, Err: cerr, Last: err})
				}
				dec := c.router.OnFailure(ctx, &a, "", err, false)
				if dec.Action == router.Done {
					return errResult(dec.Err)
				}
				if werr := c.router.Wait(ctx, &a); werr != nil {
					return errResult(&RetryError{Attempts: attempt, Err: werr, Last: last})
				}
				continue
			}
		}
		n := c.node(addr)
		var res Result
		var err error
		if blocking {
			res, err = n.doDedicated(ctx, cmd)
		} else if pinned == "" && !a.Asking() && c.router.IsSuspect(addr) && (a.ReadOnly || a.Idempotent || isIdempotent(ctx)) {
			res, err = c.doWatched(ctx, n, cmd, &a, addr)
		} else {
			res, err = n.do(ctx, cmd, a.Asking())
		}
		if err != nil {
			if c.closed.Load() {
				return errResult(ErrClosed)
			}
			last = err
			var ce *ConnError
			sent := !errors.As(err, &ce) || ce.Sent
			if !a.ReadOnly && !a.Idempotent {
				a.Idempotent = isIdempotent(ctx)
			}
			if pinned != "" || permanent(err) {
				return errResult(err)
			}
			dec := c.router.OnFailure(ctx, &a, addr, err, sent)
			if dec.Action == router.Done {
				return errResult(dec.Err)
			}
			if werr := c.router.Wait(ctx, &a); werr != nil {
				return errResult(&RetryError{Attempts: attempt, Err: werr, Last: last})
			}
			continue
		}
		msg, isErr := errorText(res)
		if !isErr || pinned != "" || !mayRedirect(msg) {
			c.router.ClearSuspect(addr)
			return res
		}
		last = res.Err()
		dec := c.router.OnReply(&a, addr, msg)
		if dec.Action == router.Done {
			if dec.Err != nil {
				return errResult(dec.Err)
			}
			return res
		}
		if dec.Redial {
			c.deploy.nameMoved(addr) // resolve the name afresh for the redial
			c.dropNode(addr)
		}
		if dec.Backoff {
			if werr := c.router.Wait(ctx, &a); werr != nil {
				return errResult(&RetryError{Attempts: attempt, Err: werr, Last: last})
			}
		}
	}
}

// doWatched sends a retry-safe command to a node that recently failed, and
// gives up on it as soon as a new view routes the command elsewhere: a hung
// master (SIGSTOP, a dead host without RST) would otherwise hold the call
// until its deadline although its replica took over. The abandoned request
// may still run on the old node, which is why only read-only and idempotent
// commands are watched.
func (c *Client) doWatched(ctx context.Context, n *node, cmd *command, a *router.Attempt, addr string) (Result, error) {
	wctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	key := router.Attempt{Slot: a.Slot, HasSlot: a.HasSlot} // the goroutine must not share a
	go func() {
		for {
			changed := c.router.Changed()
			if !c.router.Serves(&key, addr) {
				cancel(errOwnerChanged)
				return
			}
			select {
			case <-changed:
			case <-wctx.Done():
				return
			}
		}
	}()
	res, err := n.do(wctx, cmd, a.Asking())
	if err != nil && ctx.Err() == nil && errors.Is(context.Cause(wctx), errOwnerChanged) {
		err = &ConnError{Addr: addr, Op: "read", Sent: true, Err: errOwnerChanged}
	}
	return res, err
}

var errOwnerChanged = errors.New("slotrouter: abandoned: the slot has a new owner")

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

// lookup finds the command in the key table, learning unknown (module)
// commands from the server's COMMAND INFO once.
func (c *Client) lookup(ctx context.Context, args [][]byte) *slots.Command {
	t := c.cmds.Load()
	if info := t.Lookup(args); info != nil {
		return info
	}
	// A known command with an unknown subcommand: the server will refuse
	// it, so asking it about the command teaches nothing.
	if len(args) > 1 && t.Lookup(args[:1]) != nil {
		return nil
	}
	name := strings.ToLower(string(args[0]))
	if _, ok := c.unknown.Load(name); ok {
		return nil
	}
	v, _, _ := c.learn.Do(name, func() (any, error) {
		if info := c.cmds.Load().Lookup(args); info != nil {
			return info, nil
		}
		reply, err := c.Do(ctx, "COMMAND", "INFO", name).Slice()
		if err != nil {
			return nil, err // maybe transient: ask again next time
		}
		cmds, err := slots.ParseCommandInfo(reply)
		if err != nil || len(cmds) == 0 {
			// The server does not know it either: remember, so every call
			// of a typo does not cost a round trip.
			c.unknown.Store(name, struct{}{})
			return nil, err
		}
		for {
			old := c.cmds.Load()
			if c.cmds.CompareAndSwap(old, old.With(cmds...)) {
				break
			}
		}
		return c.cmds.Load().Lookup(args), nil
	})
	info, _ := v.(*slots.Command)
	return info
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
