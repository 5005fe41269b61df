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
// node the router names next when a step says it did not run there. It
// drives the same attempt state machine as Do (attempt.go), so MOVED
// patches the table, ASK pins the next run to the importing node (run gets
// asking true and must send ASKING first), a failure with sent set is
// retried only when a.ReadOnly or a.Idempotent, permanent failures end it,
// and back-off and the retry budget are the same.
//
// run returns a pending step to go again, or its final error (nil on
// success).
func (c *Client) runOnOwner(ctx context.Context, a *router.Attempt, run func(addr string, asking bool) (ownerStep, error)) error {
	t := attempt{c: c, a: *a}
	defer func() { *a = t.a }()
	for {
		if c.closed.Load() {
			return ErrClosed
		}
		if t.wait {
			if final, ok := t.backoff(ctx); !ok {
				return final.Err()
			}
		}
		addr, final, ok := t.target(ctx)
		if !ok {
			if t.wait {
				continue
			}
			return final.Err()
		}
		step, err := run(addr, t.a.Asking())
		if !step.pending() {
			if err == nil {
				c.router.ClearSuspect(addr)
			}
			return err
		}
		var done bool
		if step.fail != nil {
			final, done = t.failed(ctx, step.fail, step.sent)
		} else {
			final, done = t.replied(Result{kind: KindError, err: &Error{msg: step.reply}})
		}
		if done {
			return final.Err()
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
