package router

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"time"

	"github.com/slotrouter/slotrouter/slots"
)

// Action is what the client does next with a command.
type Action uint8

const (
	// Done: hand the reply (or error) to the caller.
	Done Action = iota
	// Retry: ask Target again and resend, after Wait if the decision says so.
	Retry
)

// Decision is the router's verdict on one reply or failure.
type Decision struct {
	Action Action
	// Backoff asks the client to call Wait before retrying.
	Backoff bool
	// Redial means the connection to the node is stale (a name that now
	// points elsewhere): drop it and dial again before retrying.
	Redial bool
	// Err is the error to return when Action is Done and the reply itself
	// is not what the caller should see.
	Err error
}

// Attempt is the routing state of one command across retries. It lives on
// the caller's stack; the zero value plus Slot/HasSlot/ReadOnly is ready.
type Attempt struct {
	Slot    slots.Slot
	HasSlot bool // false for key-less commands: any master will do
	// ReadOnly commands may go to replicas and may be retried after an
	// ambiguous failure; so may Idempotent ones.
	ReadOnly   bool
	Idempotent bool

	addr     string // forced by a redirect
	asking   bool
	chain    []Redirect
	retries  int
	deadline time.Time // retry budget end for calls without a deadline
	gen      uint64    // view generation the last Target used
	seen     bool      // gen is set
}

// Asking reports whether the next send must be preceded by ASKING.
func (a *Attempt) Asking() bool { return a.asking }

// Redirects is the number of MOVED/ASK hops so far.
func (a *Attempt) Redirects() int { return len(a.chain) }

// Target returns the address to send the command to.
func (r *Router) Target(a *Attempt) (string, error) {
	if a.addr != "" {
		return a.addr, nil
	}
	t := r.tab.Load()
	a.gen, a.seen = t.gen, true
	if t.snap == nil {
		return "", ErrNoTopology
	}
	if !a.HasSlot {
		return r.anyMaster(t)
	}
	rt, ok := t.ownerOf(a.Slot)
	if !ok {
		return "", &SlotError{Slot: a.Slot, Err: ErrNoOwner}
	}
	if a.ReadOnly && r.opts.ReadPolicy != MasterOnly {
		return r.pickRead(rt, a.Slot)
	}
	if rt.master == "" {
		return "", &SlotError{Slot: a.Slot, Err: ErrNoOwner}
	}
	return rt.master, nil
}

// anyMaster picks a master for a key-less command, avoiding suspects (a
// READONLY reply marks a demoted master suspect) while any other is left.
func (r *Router) anyMaster(t *table) (string, error) {
	n := len(t.masters)
	if n == 0 {
		return "", ErrNoOwner
	}
	i := rand.IntN(n)
	for k := range n {
		if m := t.masters[(i+k)%n]; !r.IsSuspect(m) {
			return m, nil
		}
	}
	return t.masters[i], nil
}

// OnReply judges an error reply from addr. Replies that are not errors
// never need judging: the client hands them straight to the caller.
func (r *Router) OnReply(a *Attempt, addr, msg string) Decision {
	a.addr, a.asking = "", false
	kind, _, _ := strings.Cut(msg, " ")
	switch kind {
	case "MOVED", "ASK":
		rd, err := ParseRedirect(msg, addr)
		if err != nil {
			return Decision{Action: Done, Err: &NodeError{Addr: addr, Slot: a.Slot, Err: err}}
		}
		if a.HasSlot && rd.Slot != a.Slot {
			// Not an answer to this command: a node that sends it is broken
			// or hostile, and its claim about another slot is not news.
			r.MarkSuspect(addr)
			return Decision{Action: Done, Err: &NodeError{Addr: addr, Slot: a.Slot,
				Err: fmt.Errorf("%w: %s", ErrBadRedirect, rd)}}
		}
		a.chain = append(a.chain, rd)
		if len(a.chain) > r.opts.MaxRedirects {
			return Decision{Action: Done, Err: &RedirectError{Chain: a.chain}}
		}
		if rd.Addr != addr && !r.knows(rd.Addr) {
			// A target the view does not know is followed only once the
			// cluster vouches for it: rediscover (which asks the nodes) and
			// route by the new view.
			r.TriggerRefresh()
			return Decision{Action: Retry, Backoff: true}
		}
		if rd.Kind == Ask {
			a.addr, a.asking = rd.Addr, true
			return Decision{Action: Retry}
		}
		if rd.Addr == addr {
			// MOVED to the very node we asked: we reached it by a name that
			// now points at another server. Dial again rather than loop.
			r.TriggerRefresh()
			return Decision{Action: Retry, Redial: true, Backoff: len(a.chain) > 1}
		}
		if a.HasSlot {
			r.patch(rd.Slot, rd.Addr)
		}
		r.TriggerRefresh()
		a.addr = rd.Addr
		return Decision{Action: Retry}
	case "TRYAGAIN", "CLUSTERDOWN", "LOADING", "MASTERDOWN":
		// Definitely not executed: safe to retry any command.
		r.TriggerRefresh()
		return Decision{Action: Retry, Backoff: true}
	case "READONLY":
		// A key-less write reached a replica (or a demoted master).
		r.MarkSuspect(addr)
		return Decision{Action: Retry, Backoff: true}
	}
	return Decision{Action: Done}
}

// OnFailure judges a failure to get any reply from addr. sent is false
// when the command certainly never reached the server.
func (r *Router) OnFailure(ctx context.Context, a *Attempt, addr string, err error, sent bool) Decision {
	a.addr, a.asking = "", false
	if ctx.Err() != nil {
		// The caller's own deadline: a slow node is not proof of failure,
		// but it is reason to look for a new owner now.
		if sent {
			r.MarkSuspect(addr)
		}
		// The failure and the deadline can land together (a health timeout
		// firing as the context expires): the caller must still be able to
		// match its own deadline.
		if cerr := ctx.Err(); !errors.Is(err, cerr) {
			err = fmt.Errorf("%w (%w)", cerr, err)
		}
		return Decision{Action: Done, Err: &NodeError{Addr: addr, Slot: a.Slot, Err: err}}
	}
	if errors.Is(err, ErrNoOwner) || errors.Is(err, ErrNoTopology) {
		r.TriggerRefresh()
		return Decision{Action: Retry, Backoff: true}
	}
	if errors.Is(err, ErrNoReplica) {
		return Decision{Action: Done, Err: err}
	}
	r.MarkSuspect(addr)
	if sent && !a.ReadOnly && !a.Idempotent {
		// It may have run; running it twice could be wrong.
		return Decision{Action: Done, Err: &NodeError{Addr: addr, Slot: a.Slot, Err: err}}
	}
	return Decision{Action: Retry, Backoff: true}
}

// Wait sleeps before a retry: a jittered, growing back-off, cut short by a
// new view of the topology (that is what retries wait for) and bounded by
// ctx and the retry budget. It returns an error when the caller should give up.
func (r *Router) Wait(ctx context.Context, a *Attempt) error {
	if r.closed.Load() {
		return ErrClosed
	}
	if a.deadline.IsZero() {
		if _, ok := ctx.Deadline(); !ok {
			a.deadline = time.Now().Add(r.opts.RetryBudget)
		}
	}
	if !a.deadline.IsZero() && time.Now().After(a.deadline) {
		return errRetryBudget
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	changed := r.changedChan()
	if a.seen && r.tab.Load().gen != a.gen {
		// A new view arrived since this attempt was routed (perhaps while
		// its failure was in flight): retry on it at once, and start the
		// back-off over, since the new view is a fresh start.
		a.retries = 0
		a.gen = r.tab.Load().gen
		return nil
	}
	d := r.opts.MinBackoff << min(a.retries, 10)
	d = min(d, r.opts.MaxBackoff)
	d = d/2 + time.Duration(rand.Int64N(int64(d)/2+1))
	a.retries++
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-changed:
		a.retries = 0
	case <-ctx.Done():
		return ctx.Err()
	case <-r.stop:
		return ErrClosed
	}
	return nil
}

var (
	errRetryBudget = errors.New("slotrouter: retry budget exhausted")
	errSuspect     = errors.New("slotrouter: node is suspect; not asked")
)

// knows reports whether addr is a node of the current view (one the
// cluster's answers vouched for, see topology's witness rules) or a master
// a MOVED from a known node already installed.
func (r *Router) knows(addr string) bool {
	t := r.tab.Load()
	if t.snap != nil && t.snap.Node(addr) != nil {
		return true
	}
	for _, rt := range t.shards {
		if rt.master == addr {
			return true
		}
	}
	return false
}
