package client

import (
	"context"
	"sync"

	"github.com/slotrouter/slotrouter/router"
	"github.com/slotrouter/slotrouter/slots"
)

// Conn is a session: a connection of its own to the master of one key's
// slot, for what must share a connection and so cannot go through Do
// (every Do shares its node's connections with every other caller): WAIT
// and WAITAOF counting the session's own writes, CLIENT REPLY, CLIENT
// TRACKING, MONITOR. Commands run in order, are never redirected or retried
// (a MOVED comes back as the reply), and must have keys in the session's
// slot, if any.
//
// Close returns the connection; one whose state a command changed is
// closed rather than pooled. A Conn is safe for concurrent use, but
// commands of concurrent callers interleave in no particular order.
type Conn struct {
	c    *Client
	addr string
	slot slots.Slot

	mu sync.Mutex
	d  *dedicated
}

// Conn opens a session on the master that owns key's slot. Finding the
// owner rides through failovers and resharding like Do; ctx bounds that
// and the dial.
func (c *Client) Conn(ctx context.Context, key string) (*Conn, error) {
	a := router.Attempt{Slot: slots.Of(key), HasSlot: true}
	var s *Conn
	err := c.runOnOwner(ctx, &a, func(addr string, _ bool) (ownerStep, error) {
		d, err := c.dedicate(ctx, addr)
		if err != nil {
			return ownerStep{fail: err}, nil
		}
		s = &Conn{c: c, addr: addr, slot: a.Slot, d: d}
		return ownerStep{}, nil
	})
	if err != nil {
		return nil, err
	}
	return s, nil
}

// Addr is the node the session is connected to.
func (s *Conn) Addr() string { return s.addr }

// Do runs one command on the session's connection and returns its reply.
func (s *Conn) Do(ctx context.Context, args ...any) Result {
	cmd, err := newCommand(args)
	if err != nil {
		return errResult(err)
	}
	defer cmd.release()
	info := s.c.lookup(ctx, cmd.args)
	if info != nil {
		if use := connStateUse(info); use == subscribeUse {
			// A subscribed connection answers with messages, not replies.
			return errResult(connStateError(info, use))
		} else if use != "" {
			s.mu.Lock()
			s.d.dirty = true
			s.mu.Unlock()
		}
		if slot, hasKeys, err := info.Slot(cmd.args); err != nil {
			return errResult(err)
		} else if hasKeys && slot != s.slot {
			return errResult(crossSlotError(s.slot, slot))
		}
	}
	var out [1]Result
	s.mu.Lock()
	defer s.mu.Unlock()
	_ = s.d.do(ctx, []*command{cmd}, out[:])
	return out[0]
}

// Receive reads the next reply the server sends without a request of the
// session's: after MONITOR, or for replies a CLIENT REPLY SKIP/OFF left
// unread. ctx bounds the wait; a wait cut short closes the session's
// connection, since a reply may have been half read.
func (s *Conn) Receive(ctx context.Context) Result {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.d.dirty = true
	r, _ := s.d.receive(ctx)
	return r
}

// Close ends the session. Later calls fail with a *ConnError.
func (s *Conn) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.d.release()
	return nil
}
