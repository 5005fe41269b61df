package client

import (
	"context"
	"errors"
	"maps"
	"slices"
	"time"

	"github.com/slotrouter/slotrouter/router"
	"github.com/slotrouter/slotrouter/slots"
)

// A subGroup is what one node must serve together: all classic channels and
// patterns (any master will do), or the sharded channels of one slot (only
// that slot's master will). Each group lives on one subscription connection
// and moves as a whole.
//
// The wanted sets say what the application asked for; the conn and on sets
// say what a node has confirmed. sync makes the second match the first,
// deciding where with the router's attempt rules (Target, OnReply, OnFailure,
// Wait), exactly as a command would.
type subGroup struct {
	sharded bool
	slot    slots.Slot
	lock    chan struct{} // held by the one sync talking to servers for the group

	// Guarded by Subscription.mu.
	chans, pats     map[string]struct{} // wanted
	conn            *subConn            // where it is subscribed; nil while lost
	onChans, onPats map[string]struct{} // confirmed on conn
	gap             *Gap                // the open interruption, if any
	homing          bool                // a background re-home is running
}

func newSubGroup(sharded bool, slot slots.Slot) *subGroup {
	return &subGroup{
		sharded: sharded, slot: slot, lock: make(chan struct{}, 1),
		chans: map[string]struct{}{}, pats: map[string]struct{}{},
		onChans: map[string]struct{}{}, onPats: map[string]struct{}{},
	}
}

func (g *subGroup) empty() bool { return len(g.chans) == 0 && len(g.pats) == 0 }

// Kinds of names a Subscription holds.
type subKind uint8

const (
	classicChannels subKind = iota
	patternNames
	shardChannels
)

// change adds (or removes) names in the wanted sets and syncs the groups
// touched, in parallel, with ctx. When a node refuses an addition (an error
// reply the router does not retry, such as NOPERM), the names that were
// new are taken back out, so nothing keeps asking for them; other failures
// leave them wanted, to be subscribed in the background.
func (s *Subscription) change(ctx context.Context, kind subKind, names []string, add bool) error {
	if len(names) == 0 {
		return nil
	}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return ErrSubscriptionClosed
	}
	gs, fresh := s.edit(kind, names, add)
	s.mu.Unlock()
	errs := make([]error, len(gs))
	done := make(chan struct{}, len(gs))
	for i, g := range gs {
		go func() {
			errs[i] = s.sync(ctx, g)
			done <- struct{}{}
		}()
	}
	for range gs {
		<-done
	}
	err := errors.Join(errs...)
	if rerr := new(*Error); len(fresh) > 0 && errors.As(err, rerr) {
		s.mu.Lock()
		s.edit(kind, fresh, false)
		s.mu.Unlock()
	}
	return err
}

// edit changes the wanted sets and returns the groups touched and, when
// adding, the names that were not wanted before. Called with s.mu held.
func (s *Subscription) edit(kind subKind, names []string, add bool) (gs []*subGroup, fresh []string) {
	for _, n := range names {
		g := s.classic
		if kind == shardChannels {
			slot := slots.Of(n)
			if g = s.shards[slot]; g == nil {
				if !add {
					continue
				}
				g = newSubGroup(true, slot)
				s.shards[slot] = g
			}
		}
		set := g.chans
		if kind == patternNames {
			set = g.pats
		}
		if _, ok := set[n]; add && !ok {
			set[n] = struct{}{}
			fresh = append(fresh, n)
		} else if !add {
			delete(set, n)
		}
		if !slices.Contains(gs, g) {
			gs = append(gs, g)
		}
	}
	return gs, fresh
}

// serves reports whether the router still sends g to addr: the slot's
// master for sharded channels, any routable master for classic ones. A
// slot with no owner right now (a failover under way) keeps its node.
func (s *Subscription) serves(g *subGroup, addr string) bool {
	a := router.Attempt{Slot: g.slot, HasSlot: g.sharded}
	if !g.sharded {
		return s.c.router.Serves(&a, addr)
	}
	t, err := s.c.router.Target(&a)
	return err != nil || t == addr
}

// usable reports whether g's connection can take changes in place.
// Called with s.mu held.
func (s *Subscription) usable(g *subGroup) bool {
	return g.conn != nil && !g.conn.dead && s.serves(g, g.conn.addr)
}

// sync makes g's confirmed state match its wanted state: in place when its
// node still serves it, else by subscribing everything on the node the
// router names and then releasing the old one. It retries as commands do,
// until it succeeds or ctx ends; an error reply the router does not retry
// (NOPERM, say) is returned as is.
func (s *Subscription) sync(ctx context.Context, g *subGroup) error {
	select {
	case g.lock <- struct{}{}:
	case <-ctx.Done():
		return ctx.Err()
	}
	defer func() { <-g.lock }()
	// Subscribing twice is harmless, so a subscribe that may have reached a
	// node before its connection died is always retried.
	// The router's decisions come through the same attempt state machine
	// as every command's (attempt.go).
	t := attempt{c: s.c, a: router.Attempt{Slot: g.slot, HasSlot: g.sharded, Idempotent: true}}
	for {
		s.mu.Lock()
		if s.closed {
			s.mu.Unlock()
			return ErrSubscriptionClosed
		}
		inPlace := s.usable(g)
		from := g.conn
		var sc *subConn
		var addC, delC, addP, delP []string
		if inPlace {
			sc = g.conn
			addC, delC = diff(g.chans, g.onChans), diff(g.onChans, g.chans)
			addP, delP = diff(g.pats, g.onPats), diff(g.onPats, g.pats)
		} else {
			addC, addP = slices.Collect(maps.Keys(g.chans)), slices.Collect(maps.Keys(g.pats))
		}
		empty := g.empty()
		s.mu.Unlock()
		if !inPlace && empty {
			if s.commit(g, from, nil, nil, nil, nil, nil) {
				return nil
			}
			continue
		}

		addr, err := "", error(nil)
		if inPlace {
			addr = sc.addr
		} else if addr, err = s.c.router.Target(&t.a); err == nil {
			sc, err = s.connTo(ctx, addr)
		}
		t.tries++
		if err == nil {
			err = s.applyWatched(ctx, sc, g, addC, delC, addP, delP)
			if err == nil && s.commit(g, from, sc, addC, delC, addP, delP) {
				return nil
			}
			if err == nil && !s.isDead(sc) {
				continue // the group lost its node meanwhile: start over
			}
			if err == nil {
				err = sc.err // lost between the confirmation and the commit
			}
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if errors.Is(err, ErrSubscriptionClosed) {
			return err
		}
		var final Result
		var done bool
		var rerr *Error
		switch {
		case errors.As(err, &rerr):
			t.addr = addr
			final, done = t.replied(Result{kind: KindError, err: rerr})
		case sc == nil && !errors.As(err, new(*ConnError)):
			t.addr = "" // no target yet
			final, done = t.failed(ctx, err, false)
		default:
			t.addr = addr
			final, done = t.failed(ctx, err, true)
		}
		s.log.Debug("slotrouter: subscribe attempt failed", "addr", addr, "try", t.tries, "err", err)
		if done {
			return final.Err()
		}
		if final, ok := t.backoff(ctx); !ok {
			return final.Err()
		}
	}
}

func diff(a, b map[string]struct{}) []string {
	var out []string
	for k := range a {
		if _, ok := b[k]; !ok {
			out = append(out, k)
		}
	}
	return out
}

// applyWatched is apply, abandoned when a new view routes g away from
// sc's node while that node is silent: a hung node (SIGSTOP, a dead host)
// would otherwise hold the group until the health timeout although its
// replica took over. The connection is then closed, since a late
// confirmation would subscribe the group twice. A node that has sent
// anything since the request left is alive and gets to answer (a MOVED,
// most likely), so a healthy node's other groups are never cut off.
func (s *Subscription) applyWatched(ctx context.Context, sc *subConn, g *subGroup, addC, delC, addP, delP []string) error {
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	start := time.Now()
	go func() {
		for {
			changed := s.c.router.Changed()
			if !s.serves(g, sc.addr) {
				select {
				case <-time.After(time.Until(start.Add(silentFor))):
				case <-wctx.Done():
					return
				}
				if time.Unix(0, sc.lastSeen.Load()).Before(start) {
					cancel()
				}
				return
			}
			select {
			case <-changed:
			case <-wctx.Done():
				return
			}
		}
	}()
	err := s.apply(wctx, sc, g.sharded, addC, delC, addP, delP)
	if err != nil && ctx.Err() == nil && wctx.Err() != nil {
		err = &ConnError{Addr: sc.addr, Op: "read", Sent: true, Err: errSubMoved}
		sc.fail(err)
	}
	return err
}

// silentFor is how long a node must have said nothing since a request
// before a view change makes the request be abandoned: far above a
// healthy node's reply time.
const silentFor = 20 * time.Millisecond

// apply sends the changes on sc and waits for every confirmation.
func (s *Subscription) apply(ctx context.Context, sc *subConn, sharded bool, addC, delC, addP, delP []string) error {
	sub, unsub := "subscribe", "unsubscribe"
	if sharded {
		sub, unsub = "ssubscribe", "sunsubscribe"
	}
	var reqs []*subReq
	for _, c := range []struct {
		kind  string
		names []string
	}{{sub, addC}, {"psubscribe", addP}, {unsub, delC}, {"punsubscribe", delP}} {
		if len(c.names) > 0 {
			reqs = append(reqs, sc.send(c.kind, c.names))
		}
	}
	var first error
	for _, r := range reqs {
		if err := sc.wait(ctx, r); err != nil && first == nil {
			first = err
		}
	}
	return first
}

// commit records that sc confirmed the changes to g (sc nil: g is empty
// and needs no node). A move closes the open gap, reports it, and releases
// the old node: closed when nothing else lives there, else unsubscribed.
// It reports false when sc died meanwhile, or when g lost its node while
// the change was out (from is where the change began): the caller then
// starts over.
func (s *Subscription) commit(g *subGroup, from, sc *subConn, addC, delC, addP, delP []string) bool {
	s.mu.Lock()
	if (sc != nil && sc.dead) || g.conn != from {
		s.mu.Unlock()
		return false
	}
	old := g.conn
	var oldC, oldP []string
	if old != sc {
		oldC, oldP = slices.Collect(maps.Keys(g.onChans)), slices.Collect(maps.Keys(g.onPats))
		clear(g.onChans)
		clear(g.onPats)
	}
	for _, c := range addC {
		g.onChans[c] = struct{}{}
	}
	for _, c := range delC {
		delete(g.onChans, c)
	}
	for _, p := range addP {
		g.onPats[p] = struct{}{}
	}
	for _, p := range delP {
		delete(g.onPats, p)
	}
	g.conn = sc
	gap := g.gap
	switch {
	case old != sc || g.empty():
		g.gap = nil
	case s.usable(g):
		g.gap, gap = nil, nil // served where it is again (the view flipped back): nothing was missed
	default:
		gap = nil // an in-place change; the move is still to come and the gap stays open
	}
	if g.empty() && g.sharded && s.shards[g.slot] == g {
		delete(s.shards, g.slot)
	}
	var release []func()
	if g.empty() && sc != nil {
		// Nothing left to receive here: a connection no other group uses
		// is closed rather than kept idle.
		g.conn = nil
		if !s.inUse(sc) {
			release = append(release, sc.close)
		}
	}
	if old != nil && old != sc && !old.dead {
		if !s.inUse(old) {
			release = append(release, old.close)
		} else {
			release = append(release, func() { s.unsubscribeOld(old, g.sharded, oldC, oldP) })
		}
	}
	s.mu.Unlock()
	for _, r := range release {
		r()
	}
	if gap != nil && sc != nil {
		gap.End, gap.To = time.Now(), sc.addr
		s.log.Info("slotrouter: subscription re-established", "from", gap.From, "to", gap.To,
			"gap", gap.Duration(), "cause", gap.Cause)
		s.deliver(&Message{Gap: gap})
	}
	return true
}

// unsubscribeOld drops a moved group's names from a node that still serves
// other groups; nobody waits for the confirmations.
func (s *Subscription) unsubscribeOld(sc *subConn, sharded bool, chans, pats []string) {
	unsub := "unsubscribe"
	if sharded {
		unsub = "sunsubscribe"
	}
	if len(chans) > 0 {
		sc.send(unsub, chans)
	}
	if len(pats) > 0 {
		sc.send("punsubscribe", pats)
	}
}

func (s *Subscription) isDead(sc *subConn) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return sc.dead
}

// inUse reports whether any group lives on sc. Called with s.mu held.
func (s *Subscription) inUse(sc *subConn) bool {
	if s.classic.conn == sc {
		return true
	}
	for _, g := range s.shards {
		if g.conn == sc {
			return true
		}
	}
	return false
}
