package proxy

import (
	"context"
	"errors"

	"github.com/slotrouter/slotrouter/client"
	"github.com/slotrouter/slotrouter/slots"
)

// errWatchAgain: client.Watch asked to run a watch's function a second
// time. A proxy session cannot run again what its client already saw.
var errWatchAgain = errors.New("proxy: a session's WATCH runs once")

// clientTx is the production txBackend: client.Client's TxPipeline and
// Watch.
type clientTx struct{ c *client.Client }

func (t clientTx) Exec(ctx context.Context, cmds [][]any) ([]client.Result, error) {
	p := t.c.TxPipeline()
	for _, cmd := range cmds {
		p.Do(cmd...)
	}
	res, err := p.Exec(ctx)
	return txResult(res, err)
}

// Watch runs fn once. client.Watch starts its function over when the slot
// moves or the master fails before EXEC; here fn is the session itself,
// whose client has seen the replies of the first run, so it cannot be run
// again. watchedTx instead turns such a loss into a failed EXEC (nothing
// ran; the client's own loop runs again), and once fn has returned the
// context of client.Watch is ended so that its retry loop stops at once.
func (t clientTx) Watch(ctx context.Context, fn func(watchedConn) error, keys ...string) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	ran := false
	return t.c.Watch(ctx, func(tx *client.Tx) error {
		if ran {
			return errWatchAgain
		}
		ran = true
		defer cancel()
		return fn(&watchedTx{c: t.c, tx: tx})
	}, keys...)
}

// watchedTx is a session's watch: its commands run on the transaction's
// connection while it holds. A command the connection could not run
// without leaving the watch behind (the slot moved, the master failed
// before anything ran) marks it lost: that command and the rest until EXEC
// go through the client's ordinary routing, and EXEC reports errTxFailed
// without sending anything. A command on a key of another slot is no
// reason to lose the watch: it runs through the ordinary routing too, as
// it would on one redis-server.
type watchedTx struct {
	c    *client.Client
	tx   *client.Tx
	lost bool
}

func (w *watchedTx) Do(ctx context.Context, args ...any) client.Result {
	if w.lost {
		return w.c.Do(ctx, args...)
	}
	r := w.tx.Do(ctx, args...)
	err := r.Err()
	if err == nil || r.Kind() == client.KindNil {
		return r
	}
	var ce *client.ConnError
	var re *client.Error
	switch {
	case errors.As(err, &ce):
		// The watch's connection is gone. A write that may have run is not
		// run twice; a read, or a command that surely did not run, runs
		// elsewhere.
		w.lost = true
		if ce.Sent && !readOnly(args) {
			return r
		}
		return w.c.Do(ctx, args...)
	case notRun(err):
		w.lost = true
		return w.c.Do(ctx, args...)
	case errors.Is(err, client.ErrCrossSlot) && !errors.As(err, &re):
		// Refused before sending: the key is not in the watched slot.
		return w.c.Do(ctx, args...)
	}
	return r
}

// Watch is a further WATCH while watching. Once the watch is lost it only
// answers OK: the coming EXEC fails whatever the keys.
func (w *watchedTx) Watch(ctx context.Context, args ...any) error {
	if w.lost {
		return nil
	}
	err := w.tx.Do(ctx, args...).Err()
	var ce *client.ConnError
	if errors.As(err, &ce) || notRun(err) {
		w.lost = true
		return nil
	}
	return err
}

func (w *watchedTx) Exec(ctx context.Context, cmds [][]any) ([]client.Result, error) {
	if w.lost {
		return nil, errTxFailed
	}
	res, err := w.tx.TxPipelined(ctx, func(p *client.Pipeline) error {
		for _, c := range cmds {
			p.Do(c...)
		}
		return nil
	})
	if notRun(err) {
		return nil, errTxFailed
	}
	return txResult(res, err)
}

// txResult: a transaction that failed as a whole (refused, aborted, or its
// fate unknown) is one error for EXEC, not one per command.
func txResult(res []client.Result, err error) ([]client.Result, error) {
	switch {
	case errors.Is(err, client.ErrTxFailed):
		return nil, errTxFailed
	case err != nil:
		return nil, err
	}
	return res, nil
}

// notRun reports a failure that proves nothing ran: a redirect or
// cluster-state refusal, or a connection that failed before the command
// was sent.
func notRun(err error) bool {
	var ce *client.ConnError
	if errors.As(err, &ce) {
		return !ce.Sent
	}
	for _, k := range redirectKinds {
		if errors.Is(err, k) {
			return true
		}
	}
	return false
}

var redirectKinds = []error{client.ErrMoved, client.ErrAsk, client.ErrTryAgain, client.ErrClusterDown,
	client.ErrLoading, client.ErrMasterDown, client.ErrReadOnly}

// readOnly reports a command the server marks readonly: running it again
// after a lost connection changes nothing.
func readOnly(args []any) bool {
	var buf [2][]byte
	for i := range min(len(args), 2) {
		b, ok := args[i].([]byte)
		if !ok {
			return false
		}
		buf[i] = b
	}
	info := slots.DefaultTable().Lookup(buf[:min(len(args), 2)])
	return info != nil && info.Flags&slots.Readonly != 0
}
