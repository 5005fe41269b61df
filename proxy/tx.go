package proxy

import (
	"context"
	"errors"
	"strings"

	"github.com/slotrouter/slotrouter/client"
	"github.com/slotrouter/slotrouter/slots"
)

// txBackend is the seam between a session's MULTI/EXEC/WATCH and the
// client's transactions. The session owns the protocol (queueing with
// +QUEUED, EXECABORT after a queueing error, DISCARD, WATCH state); the
// backend only runs what the session hands it, on the master that owns the
// keys. Its production form is clientTx, a thin adapter over
// client.Client.TxPipeline and client.Client.Watch.
type txBackend interface {
	// Exec runs cmds as one MULTI ... EXEC on the master owning their slot
	// and returns one result per command.
	Exec(ctx context.Context, cmds [][]any) ([]client.Result, error)
	// Watch sends WATCH keys on a connection held for the caller, calls fn
	// once with it, and releases it (UNWATCH) when fn returns. It returns
	// fn's error, or its own if fn was never called.
	Watch(ctx context.Context, fn func(watchedConn) error, keys ...string) error
}

// watchedConn is the connection a WATCH holds: commands between WATCH and
// EXEC run on it, and its Exec fails with errTxFailed when a watched key
// changed.
type watchedConn interface {
	Do(ctx context.Context, args ...any) client.Result
	// Watch adds keys (args is the whole WATCH command) to the watch.
	Watch(ctx context.Context, args ...any) error
	Exec(ctx context.Context, cmds [][]any) ([]client.Result, error)
}

// errTxFailed is what watchedConn.Exec returns when EXEC did not run
// because a watched key changed, or because the watch itself was lost (see
// watchedTx); the session answers it with a null array, as redis-server
// does for a changed key, so the client's optimistic-locking loop runs again.
var errTxFailed = errors.New("proxy: transaction aborted: a watched key changed")

// txState is a session's transaction: MULTI's queue and WATCH's connection.
type txState struct {
	multi  bool
	dirty  bool // a command was refused while queueing: EXEC aborts
	queued []queuedCmd
	// watch is set while a WATCH holds a connection; the session loop runs
	// inside txBackend.Watch's callback until it is nil again.
	watch watchedConn
}

type queuedCmd struct {
	args [][]byte // copies: a transaction outlives the batch it was read in
	sh   shape
}

func (t *txState) discard() {
	t.multi, t.dirty = false, false
	clear(t.queued)
	t.queued = t.queued[:0]
}

// txControl: the commands redis-server runs, rather than queues, in MULTI.
func txControl(k kind) bool {
	switch k {
	case kExec, kDiscard, kMulti, kWatch, kQuit, kReset:
		return true
	}
	return false
}

// queue answers a command sent between MULTI and EXEC. Errors a server
// finds while queueing (unknown command, wrong arity) are found here, with
// redis-server's text, and doom the transaction as they would there.
func (s *session) queue(args [][]byte, k kind) {
	name := strings.ToLower(string(args[0]))
	switch k {
	case kForward, kPing, kEcho, kUnwatch:
	default:
		// Commands about this session's connection cannot run inside a
		// transaction on the master's.
		s.w.error("ERR Command not allowed inside a transaction")
		s.tx.dirty = true
		return
	}
	t := slots.DefaultTable()
	info := t.Lookup(args)
	switch {
	case info == nil && t.Lookup(args[:1]) == nil:
		s.w.error("ERR unknown command '" + string(args[0]) + "', with args beginning with: " + quoteArgs(args[1:]))
		s.tx.dirty = true
		return
	case info == nil:
		s.w.error("ERR unknown subcommand '" + string(args[1]) + "'. Try " + strings.ToUpper(name) + " HELP.")
		s.tx.dirty = true
		return
	case !info.ValidArity(len(args)):
		s.w.error("ERR wrong number of arguments for '" + info.Name + "' command")
		s.tx.dirty = true
		return
	}
	q := queuedCmd{args: make([][]byte, len(args)), sh: shapeOf(args)}
	for i, a := range args {
		q.args[i] = append([]byte(nil), a...)
	}
	s.tx.queued = append(s.tx.queued, q)
	s.w.simple("QUEUED")
}

// quoteArgs formats arguments as redis-server's unknown-command error does.
func quoteArgs(args [][]byte) string {
	var b strings.Builder
	for _, a := range args {
		if b.Len() >= 128 {
			break
		}
		b.WriteByte('\'')
		b.Write(a[:min(len(a), 128-b.Len()+1)])
		b.WriteString("' ")
	}
	return b.String()
}

// txOrSub answers the transaction and pub/sub commands.
func (s *session) txOrSub(args [][]byte, k kind) {
	switch k {
	case kMulti:
		if s.tx.multi {
			s.w.error("ERR MULTI calls can not be nested")
			return
		}
		s.tx.multi = true
		s.w.simple("OK")
	case kExec:
		s.exec()
	case kDiscard:
		if !s.tx.multi {
			s.w.error("ERR DISCARD without MULTI")
			return
		}
		s.tx.discard()
		s.tx.watch = nil // DISCARD unwatches
		s.w.simple("OK")
	case kWatch:
		s.watch(args)
	case kUnwatch:
		s.tx.watch = nil
		s.w.simple("OK")
	case kSubscribe:
		s.subscribe(args)
	case kUnsubscribe:
		s.unsubscribe(args)
	}
}

func (s *session) exec() {
	if !s.tx.multi {
		s.w.error("ERR EXEC without MULTI")
		return
	}
	queued, dirty, wc := s.tx.queued, s.tx.dirty, s.tx.watch
	s.tx.queued = nil
	s.tx.discard()
	s.tx.watch = nil // EXEC unwatches, whatever its outcome
	if dirty {
		s.w.error("EXECABORT Transaction discarded because of previous errors.")
		return
	}
	if len(queued) == 0 {
		// The client sends no empty MULTI/EXEC, so an empty transaction
		// after WATCH does not learn whether a watched key changed.
		s.w.array(0)
		return
	}
	cmds := make([][]any, len(queued))
	for i, q := range queued {
		cmds[i] = make([]any, len(q.args))
		for j, a := range q.args {
			cmds[i][j] = a
		}
	}
	var res []client.Result
	var err error
	if wc != nil {
		res, err = wc.Exec(s.ctx, cmds)
	} else {
		res, err = s.srv.tx.Exec(s.ctx, cmds)
	}
	switch {
	case errors.Is(err, errTxFailed):
		s.w.nullArray()
	case err != nil && len(res) != len(queued):
		s.w.errorReply(err)
	default:
		// A command that failed inside EXEC carries its own error; the
		// others ran.
		s.w.array(len(res))
		for i, r := range res {
			s.w.shaped(r, queued[i].sh)
		}
	}
}

// watch is WATCH. Outside a watch it asks the backend for a held
// connection and runs the session's loop inside the backend's callback
// until EXEC, DISCARD, UNWATCH, RESET or the end of the session; the loop
// answers the rest of the current batch first, so a client's pipelined
// WATCH ... EXEC works as it does against redis-server.
func (s *session) watch(args [][]byte) {
	if len(args) < 2 {
		s.arityError(args)
		return
	}
	if s.tx.multi {
		s.w.error("ERR WATCH inside MULTI is not allowed")
		return
	}
	if s.tx.watch != nil {
		if err := s.tx.watch.Watch(s.ctx, s.anyArgs(args)...); err != nil {
			s.w.errorReply(err)
			return
		}
		s.w.simple("OK")
		return
	}
	keys := make([]string, len(args)-1)
	for i, k := range args[1:] {
		keys[i] = string(k)
	}
	called := false
	err := s.srv.tx.Watch(s.ctx, func(wc watchedConn) error {
		if called {
			return errors.New("proxy: txBackend.Watch called its callback twice")
		}
		called = true
		s.tx.watch = wc
		s.w.simple("OK")
		err := s.loop(func() bool { return s.tx.watch == nil || s.closing })
		s.tx.watch = nil
		if err != nil {
			s.closing = true
			s.loopErr = err
		}
		return err
	}, keys...)
	if !called {
		s.w.errorReply(err)
	}
}
