package client

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net"
	"slices"
	"strings"
	"time"

	"github.com/slotrouter/slotrouter/slots"
)

// Where groups live and how they move: the connections a subscription
// keeps per node, and the events that send a group elsewhere (a connection
// lost, a node's own sunsubscribe, a new view, a DNS answer that changed).

// subDial is one dial in flight to a node, shared by every group that needs
// that node.
type subDial struct {
	done chan struct{}
	sc   *subConn
	err  error
}

// connTo returns the subscription's connection to addr, dialling it once
// for every group that needs it.
func (s *Subscription) connTo(ctx context.Context, addr string) (*subConn, error) {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil, ErrSubscriptionClosed
	}
	if sc := s.conns[addr]; sc != nil && !sc.dead {
		s.mu.Unlock()
		return sc, nil
	}
	d := s.dials[addr]
	if d == nil {
		d = &subDial{done: make(chan struct{})}
		s.dials[addr] = d
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			sc, err := s.dialSub(s.ctx, addr)
			s.mu.Lock()
			delete(s.dials, addr)
			closed := s.closed
			if err == nil && !closed {
				s.conns[addr] = sc
			}
			s.mu.Unlock()
			if err == nil && closed {
				sc.close()
				sc, err = nil, ErrSubscriptionClosed
			}
			d.sc, d.err = sc, err
			close(d.done)
		}()
	}
	s.mu.Unlock()
	select {
	case <-d.done:
		return d.sc, d.err
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// connLost is called once when sc ends: every group on it opens a gap that
// starts at the last frame sc delivered, and is re-homed in the background.
func (s *Subscription) connLost(sc *subConn, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	sc.dead = true
	if s.conns[sc.addr] == sc {
		delete(s.conns, sc.addr)
	}
	if s.closed || errors.Is(err, errSubClosed) {
		return
	}
	if !errors.Is(err, errDrained) {
		s.c.router.MarkSuspect(sc.addr)
	}
	since := time.Unix(0, sc.lastSeen.Load())
	for _, g := range s.groups() {
		if g.conn == sc {
			s.lose(g, since, err)
		}
	}
}

// shardLost handles a sunsubscribe the node sent on its own: it gave the
// channel's slot away, and with it every channel of that slot. since is the
// last moment sc showed it served the slot.
func (s *Subscription) shardLost(sc *subConn, channel string, since time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	g := s.shards[slots.Of(channel)]
	if g == nil || g.conn != sc || s.closed {
		return
	}
	s.lose(g, since, fmt.Errorf("%w: %s sent sunsubscribe %q", ErrSubscriptionMoved, sc.addr, channel))
	g.conn = nil
	clear(g.onChans)
	if !s.inUse(sc) {
		go sc.close()
	}
}

// lose opens g's gap (keeping an earlier start) and starts re-homing it.
// Called with s.mu held.
func (s *Subscription) lose(g *subGroup, since time.Time, cause error) {
	if g.gap == nil {
		from := ""
		if g.conn != nil {
			from = g.conn.addr
		}
		g.gap = &Gap{Start: since, From: from, Cause: cause,
			Channels: slices.Sorted(maps.Keys(g.chans)), Patterns: slices.Sorted(maps.Keys(g.pats))}
		s.log.Warn("slotrouter: subscription interrupted; re-subscribing", "from", from,
			"channels", len(g.chans)+len(g.pats), "since", since.Format(time.RFC3339Nano), "cause", cause)
	}
	if g.conn != nil && g.conn.dead {
		g.conn = nil
		clear(g.onChans)
		clear(g.onPats)
	}
	if g.homing {
		return
	}
	g.homing = true
	s.wg.Add(1)
	go s.rehome(g)
}

// rehome re-establishes g until it is home or the subscription closes.
func (s *Subscription) rehome(g *subGroup) {
	defer s.wg.Done()
	for {
		// Taken before the try, so a view that arrives while it fails
		// ends the pause below: a new view is what the next try needs.
		changed := s.c.router.Changed()
		err := s.sync(s.ctx, g)
		s.mu.Lock()
		if s.closed || (err == nil && (g.empty() || s.usable(g))) {
			g.homing = false
			s.mu.Unlock()
			return
		}
		s.mu.Unlock()
		if err != nil {
			s.log.Warn("slotrouter: re-subscribing failed; trying again", "err", err)
			select {
			case <-s.ctx.Done():
			case <-changed:
			case <-time.After(100 * time.Millisecond):
			}
		}
	}
}

// groups lists every group. Called with s.mu held.
func (s *Subscription) groups() []*subGroup {
	out := make([]*subGroup, 0, len(s.shards)+1)
	out = append(out, s.classic)
	for _, g := range s.shards {
		out = append(out, g)
	}
	return out
}

// watch follows the router's views: a group whose node no longer serves it
// (a promotion, a Sentinel or role-probe switch, a finished migration) is
// moved even though its connection still works. It also closes the
// subscription when the client closes.
func (s *Subscription) watch() {
	defer s.wg.Done()
	for {
		changed := s.c.router.Changed()
		s.mu.Lock()
		if s.closed {
			s.mu.Unlock()
			return
		}
		for _, g := range s.groups() {
			if g.conn != nil && !g.conn.dead && !s.serves(g, g.conn.addr) {
				s.lose(g, time.Now(), fmt.Errorf("%w: the router now routes them away from %s", ErrSubscriptionMoved, g.conn.addr))
			}
		}
		s.mu.Unlock()
		select {
		case <-changed:
		case <-s.ctx.Done():
			return
		case <-s.c.stop:
			go s.Close()
			return
		}
	}
}

// drainSubscriptions moves every subscription group whose connection went
// to an address host no longer resolves to (what node.drain does for
// command connections): the connection is ended, and the re-home dials the
// name afresh. It returns how many connections it ended.
func (c *Client) drainSubscriptions(host string, keep func(ip string) bool) int {
	n := 0
	c.subs.Range(func(k, _ any) bool {
		s := k.(*Subscription)
		s.mu.Lock()
		var stale []*subConn
		for addr, sc := range s.conns {
			h, _, err := net.SplitHostPort(addr)
			if err == nil && strings.EqualFold(h, host) && !keep(remoteIP(sc.conn)) {
				stale = append(stale, sc)
			}
		}
		s.mu.Unlock()
		for _, sc := range stale {
			sc.fail(&ConnError{Addr: sc.addr, Op: "drain", Err: errDrained})
		}
		n += len(stale)
		return true
	})
	return n
}
