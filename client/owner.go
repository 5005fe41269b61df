package client

import (
	"context"
	"errors"
	"fmt"

	"github.com/slotrouter/slotrouter/router"
	"github.com/slotrouter/slotrouter/slots"
)

// ownerStep is what one run of whole-node work (a transaction, a session's
// dial) reports to runOnOwner when it did not finish.
type ownerStep struct {
	// reply is an error reply that came before anything could have run
	// (MOVED, ASK, TRYAGAIN, CLUSTERDOWN, ... to WATCH, to a queued
	// command, or to EXEC itself, which then discards the transaction).
	reply string
	// fail is a failure with no reply; sent says whether the part that
	// changes data (EXEC) may have reached the server.
	fail error
	sent bool
}

func (s ownerStep) pending() bool { return s.reply != "" || s.fail != nil }

// runOnOwner runs work that must happen whole on one node (the master of
// a.Slot, or where a redirect sends it) and starts it over, whole, on the
// node the router names next when a step says it did not run there. It is
// Client.process for work of several commands: the router makes every
// decision (Target, OnReply, OnFailure, Wait) exactly as for a single
// command, so MOVED patches the table, ASK pins the next run to the
// importing node (run gets asking true and must send ASKING first), a
// failure with sent set is retried only when a.ReadOnly or a.Idempotent,
// and back-off and the retry budget are the same.
//
// run returns a pending step to go again, or its final error (nil on
// success).
func (c *Client) runOnOwner(ctx context.Context, a *router.Attempt, run func(addr string, asking bool) (ownerStep, error)) error {
	var last error
	for attempt := 1; ; attempt++ {
		if c.closed.Load() {
			return ErrClosed
		}
		addr, err := c.router.Target(a)
		var backoff bool
		switch {
		case err != nil:
			last = err
			if cerr := ctx.Err(); cerr != nil {
				return &RetryError{Attempts: attempt, Err: cerr, Last: err}
			}
			if dec := c.router.OnFailure(ctx, a, "", err, false); dec.Action == router.Done {
				return dec.Err
			}
			backoff = true
		default:
			step, err := run(addr, a.Asking())
			if !step.pending() {
				if err == nil {
					c.router.ClearSuspect(addr)
				}
				return err
			}
			if c.closed.Load() {
				return ErrClosed
			}
			if step.fail != nil {
				last = step.fail
				dec := c.router.OnFailure(ctx, a, addr, step.fail, step.sent)
				if dec.Action == router.Done {
					return dec.Err
				}
				backoff = true
				break
			}
			last = &Error{msg: step.reply}
			dec := c.router.OnReply(a, addr, step.reply)
			if dec.Action == router.Done {
				if dec.Err != nil {
					return dec.Err
				}
				return last
			}
			if dec.Redial {
				c.deploy.nameMoved(addr)
				c.dropNode(addr)
			}
			backoff = dec.Backoff
		}
		if backoff {
			if werr := c.router.Wait(ctx, a); werr != nil {
				return &RetryError{Attempts: attempt, Err: werr, Last: last}
			}
		}
	}
}

// sentErr reports whether a failure may have reached the server.
func sentErr(err error) bool {
	var ce *ConnError
	return !errors.As(err, &ce) || ce.Sent
}

// crossSlotError refuses a command whose keys are not in the slot a
// session or transaction is bound to, before anything is sent. It matches
// ErrCrossSlot.
func crossSlotError(bound, got slots.Slot) error {
	return fmt.Errorf("%w: key in slot %d, but this connection is bound to slot %d", ErrCrossSlot, got, bound)
}
