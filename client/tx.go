package client

import (
	"context"
	"errors"
	"fmt"

	"github.com/slotrouter/slotrouter/router"
	"github.com/slotrouter/slotrouter/slots"
)

// Transactions: MULTI ... EXEC, on a cluster that moves.
//
// A transaction runs whole on the master of its one slot. It is driven by
// runOnOwner, so the router decides every step as for Do: a MOVED, ASK,
// TRYAGAIN or CLUSTERDOWN before EXEC ran (to WATCH, a read, a queued
// command, or EXEC itself, which then discards the transaction) means
// nothing ran, and the whole transaction starts over where the router
// sends it; an ASK pins it to the importing node, every command behind
// ASKING (the flag lasts from MULTI to EXEC); a connection lost after EXEC
// was written may have committed, so it is retried only under Idempotent.
//
// TxPipeline needs no connection of its own: MULTI, the commands and EXEC
// are queued on a shared connection in one piece, and the server runs one
// connection's requests in order, so other callers' commands cannot land
// inside. Watch does need one (WATCH belongs to the connection), and holds
// a dedicated connection from WATCH to EXEC.

// TxPipeline returns a pipeline whose Exec runs the queued commands as one
// MULTI/EXEC transaction on the master of their slot: all of them or, when
// the transaction is refused, none. Their keys must share one slot (use a
// hash tag); a Pipeline with keys in several slots fails before sending.
func (c *Client) TxPipeline() *Pipeline { return &Pipeline{c: c, tx: txPipeline} }

// Pipeline.tx values.
const (
	txNone     uint8 = iota
	txPipeline       // Client.TxPipeline: Exec runs MULTI ... EXEC
	txQueue          // Tx.TxPipelined: queue only; TxPipelined sends
)

var (
	multiArgs  = []any{"MULTI"}
	execArgs   = []any{"EXEC"}
	askingArgs = []any{"ASKING"}
)

// txBatch is a transaction ready to send: MULTI, the commands, EXEC.
type txBatch struct {
	cmds []*command // [ASKING] MULTI c1 ... cn EXEC
	n    int        // queued commands
	ask  bool
	res  []Result
}

// txSlot checks the queued commands and returns their common slot. Any
// error is final: nothing has been sent.
func (c *Client) txSlot(ctx context.Context, p *Pipeline) (slot slots.Slot, hasSlot bool, err error) {
	for i, cmd := range p.cmds {
		if p.errs[i] != nil {
			return 0, false, p.errs[i]
		}
		info := c.lookup(ctx, cmd.args)
		if info == nil {
			continue // the server will refuse it at queue time; EXECABORT
		}
		if use := connStateUse(info); use != "" {
			return 0, false, connStateError(info, use)
		}
		s, has, err := info.Slot(cmd.args)
		if err != nil {
			return 0, false, fmt.Errorf("%w: %w", ErrCrossSlot, err)
		}
		if !has {
			continue
		}
		if hasSlot && s != slot {
			return 0, false, crossSlotError(slot, s)
		}
		slot, hasSlot = s, true
	}
	return slot, hasSlot, nil
}

func newTxBatch(queued []*command, asking bool) *txBatch {
	b := &txBatch{n: len(queued), ask: asking}
	if asking {
		a, _ := newCommand(askingArgs)
		b.cmds = append(b.cmds, a)
	}
	m, _ := newCommand(multiArgs)
	b.cmds = append(b.cmds, m)
	b.cmds = append(b.cmds, queued...)
	e, _ := newCommand(execArgs)
	b.cmds = append(b.cmds, e)
	b.res = make([]Result, len(b.cmds))
	return b
}

// release returns the commands the batch made (not the queued ones).
func (b *txBatch) release() {
	k := 0
	if b.ask {
		b.cmds[0].release()
		k = 1
	}
	b.cmds[k].release()
	b.cmds[len(b.cmds)-1].release()
}

// judge reads the replies of a batch that got them all: the results of the
// queued commands, or the step to take when nothing ran, or the final error.
func (b *txBatch) judge(out []Result) (ownerStep, error) {
	res := b.res
	if b.ask {
		if msg, isErr := errorText(res[0]); isErr {
			return ownerStep{}, &Error{msg: msg}
		}
		res = res[1:]
	}
	if msg, isErr := errorText(res[0]); isErr { // MULTI
		if mayRedirect(msg) {
			return ownerStep{reply: msg}, nil
		}
		return ownerStep{}, res[0].Err()
	}
	queued, exec := res[1:1+b.n], res[1+b.n]
	// A queued command refused with a redirect (the slot moved, is
	// migrating, or the cluster is down) flags the transaction: EXEC
	// discards it, so nothing ran and it may start over elsewhere.
	for _, q := range queued {
		if msg, isErr := errorText(q); isErr && mayRedirect(msg) {
			return ownerStep{reply: msg}, nil
		}
	}
	if msg, isErr := errorText(exec); isErr {
		if mayRedirect(msg) {
			return ownerStep{reply: msg}, nil
		}
		// EXECABORT: a command was refused at queue time (syntax,
		// unknown command); it carries its own error, the rest EXEC's.
		for i, q := range queued {
			if q.kind == KindError {
				out[i] = q
			} else {
				out[i] = exec
			}
		}
		return ownerStep{}, exec.Err()
	}
	if exec.kind == KindNil {
		for i := range out {
			out[i] = errResult(ErrTxFailed)
		}
		return ownerStep{}, ErrTxFailed
	}
	replies, err := exec.Results()
	if err != nil || len(replies) != b.n {
		err = &ProtocolError{Reason: fmt.Sprintf("EXEC answered %s for %d commands", exec.kind, b.n)}
		for i := range out {
			out[i] = errResult(err)
		}
		return ownerStep{}, err
	}
	copy(out, replies)
	return ownerStep{}, nil
}

// execTx is Exec for a TxPipeline.
func (p *Pipeline) execTx(ctx context.Context) ([]Result, error) {
	if p.tx == txQueue {
		return nil, errTxQueue
	}
	if p.pipeState == nil {
		return []Result{}, nil
	}
	defer p.Reset()
	out := make([]Result, len(p.cmds))
	fail := func(err error) ([]Result, error) {
		for i := range out {
			out[i] = errResult(err)
		}
		return out, err
	}
	c := p.c
	if c.closed.Load() {
		return fail(ErrClosed)
	}
	slot, hasSlot, err := c.txSlot(ctx, p)
	if err != nil {
		return fail(err)
	}
	a := router.Attempt{Slot: slot, HasSlot: hasSlot, Idempotent: isIdempotent(ctx)}
	err = c.runOnOwner(ctx, &a, func(addr string, asking bool) (ownerStep, error) {
		b := newTxBatch(p.cmds, asking)
		defer b.release()
		if err := c.node(addr).doMulti(ctx, b.cmds, b.res, nil); err != nil {
			return ownerStep{fail: err, sent: sentErr(err)}, nil
		}
		return b.judge(out)
	})
	if err != nil && out[0].kind == KindInvalid && out[0].err == nil {
		return fail(err)
	}
	return out, err
}

// Tx is one run of a Watch function: a dedicated connection to the master
// of the watched keys' slot, with the keys watched. Reads go through Do,
// writes through TxPipelined. A Tx is valid only inside its function.
type Tx struct {
	c      *Client
	d      *dedicated
	addr   string
	slot   slots.Slot
	asking bool
	// step is set when the run must start over (or EXEC's fate is
	// unknown): something failed while nothing had committed.
	step      ownerStep
	committed bool // an EXEC succeeded: the run can no longer start over
}

// Watch runs fn with keys watched on a connection of its own to their
// master: reads in fn see the keys, and the writes fn queues with
// tx.TxPipelined commit only if no watched key changed in between;
// otherwise TxPipelined returns ErrTxFailed and nothing was written. Watch
// returns fn's error; the usual loop retries on ErrTxFailed.
//
// The keys must share one slot. When the cluster moves the slot, fails over
// or is down before EXEC ran, fn runs again from the start on the new owner
// (so fn must not keep state across runs). A connection lost after EXEC was
// sent may have committed: Watch then returns the error, unless ctx was
// made by Idempotent.
func (c *Client) Watch(ctx context.Context, fn func(*Tx) error, keys ...string) error {
	if len(keys) == 0 {
		return &ArgError{Index: -1, Type: "Watch needs at least one key"}
	}
	slot := slots.Of(keys[0])
	for _, k := range keys[1:] {
		if s := slots.Of(k); s != slot {
			return crossSlotError(slot, s)
		}
	}
	watchArgs := make([]any, 0, len(keys)+1)
	watchArgs = append(watchArgs, "WATCH")
	for _, k := range keys {
		watchArgs = append(watchArgs, k)
	}
	a := router.Attempt{Slot: slot, HasSlot: true, Idempotent: isIdempotent(ctx)}
	return c.runOnOwner(ctx, &a, func(addr string, asking bool) (ownerStep, error) {
		d, err := c.dedicate(ctx, addr)
		if err != nil {
			return ownerStep{fail: err}, nil
		}
		tx := &Tx{c: c, d: d, addr: addr, slot: slot, asking: asking}
		defer tx.close()
		d.dirty = true // watching until EXEC or UNWATCH
		watch, err := newCommand(watchArgs)
		if err != nil {
			return ownerStep{}, err
		}
		r := tx.send(ctx, watch)
		watch.release()
		if tx.step.pending() {
			return tx.step, nil
		} else if err := r.Err(); err != nil {
			return ownerStep{}, err
		}
		err = fn(tx)
		if tx.step.pending() {
			// Something in fn failed before anything could have committed,
			// or EXEC's fate is unknown: the router decides.
			return tx.step, nil
		}
		return ownerStep{}, err
	})
}

func (tx *Tx) close() { tx.d.release() }

// Addr is the node this run of the transaction is on: the master of the
// watched keys' slot, or the node importing it.
func (tx *Tx) Addr() string { return tx.addr }

// Do runs a command, normally a read of the watched keys, on the
// transaction's connection. Keys must be in the watched keys' slot.
func (tx *Tx) Do(ctx context.Context, args ...any) Result {
	cmd, err := newCommand(args)
	if err != nil {
		return errResult(err)
	}
	defer cmd.release()
	if err := tx.check(ctx, cmd); err != nil {
		return errResult(err)
	}
	return tx.send(ctx, cmd)
}

// send runs one command on the transaction's connection, behind ASKING
// when the transaction is pinned to an importing node.
func (tx *Tx) send(ctx context.Context, cmd *command) Result {
	if tx.step.pending() {
		return errResult(tx.stepErr())
	}
	cmds := []*command{cmd}
	var res [2]Result
	out := res[:1]
	if tx.asking {
		a, _ := newCommand(askingArgs)
		defer a.release()
		cmds, out = []*command{a, cmd}, res[:2]
	}
	err := tx.d.do(ctx, cmds, out)
	r := out[len(out)-1]
	if tx.committed {
		return r // too late to start over: the caller sees what happened
	}
	if err != nil {
		// Nothing has committed: the run starts over on a new connection.
		tx.step = ownerStep{fail: err}
		return r
	}
	if msg, isErr := errorText(r); isErr && mayRedirect(msg) {
		tx.step = ownerStep{reply: msg}
	}
	return r
}

// check refuses, before sending, a command that would leave the
// transaction's slot or change its connection under it.
func (tx *Tx) check(ctx context.Context, cmd *command) error {
	info := tx.c.lookup(ctx, cmd.args)
	if info == nil {
		return nil
	}
	if use := connStateUse(info); use != "" && info.Name != "watch" {
		if info.Name == "multi" || info.Name == "exec" || info.Name == "discard" {
			use = "Tx.TxPipelined"
		}
		return connStateError(info, use)
	}
	s, has, err := info.Slot(cmd.args)
	if err != nil {
		return err
	}
	if has && s != tx.slot {
		return crossSlotError(tx.slot, s)
	}
	return nil
}

func (tx *Tx) stepErr() error {
	if tx.step.fail != nil {
		return tx.step.fail
	}
	return &Error{msg: tx.step.reply}
}

// TxPipelined queues the commands fn adds to p and runs them as
// MULTI ... EXEC on the transaction's connection. It returns ErrTxFailed,
// with nothing written, when a watched key changed since WATCH. The keys
// must be in the watched keys' slot.
func (tx *Tx) TxPipelined(ctx context.Context, fn func(p *Pipeline) error) ([]Result, error) {
	p := &Pipeline{c: tx.c, tx: txQueue}
	defer p.Reset()
	if err := fn(p); err != nil {
		return nil, err
	}
	if p.pipeState == nil {
		return []Result{}, nil
	}
	out := make([]Result, len(p.cmds))
	fail := func(err error) ([]Result, error) {
		for i := range out {
			out[i] = errResult(err)
		}
		return out, err
	}
	if tx.step.pending() {
		return fail(tx.stepErr())
	}
	for i, cmd := range p.cmds {
		if p.errs[i] != nil {
			return fail(p.errs[i])
		}
		if err := tx.check(ctx, cmd); err != nil {
			return fail(err)
		}
	}
	b := newTxBatch(p.cmds, tx.asking)
	defer b.release()
	if err := tx.d.do(ctx, b.cmds, b.res); err != nil {
		if !tx.committed {
			tx.step = ownerStep{fail: err, sent: sentErr(err)}
		}
		return fail(err)
	}
	// EXEC, whatever its answer, ended the transaction and the watch.
	tx.d.dirty = false
	step, err := b.judge(out)
	if step.pending() {
		if !tx.committed {
			tx.step = step
		}
		return fail(&Error{msg: step.reply})
	}
	if err == nil {
		tx.committed = true
	}
	return out, err
}

// errTxQueue: a Pipeline handed to TxPipelined's function only queues.
var errTxQueue = errors.New("slotrouter: this pipeline's commands run when the TxPipelined function returns; do not call Exec")
