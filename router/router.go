package router

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sync/singleflight"

	"github.com/slotrouter/slotrouter/slots"
	"github.com/slotrouter/slotrouter/topology"
)

// Options configure a Router. The zero value of every field is usable.
type Options struct {
	// Source discovers the deployment. Required.
	Source Source
	// RefreshInterval is the cheap periodic check while all is well.
	// Default 5s; the client derives it from the cluster's
	// cluster-node-timeout (half of it, within 1s..10s) when it can read it.
	RefreshInterval time.Duration
	// DegradedInterval is how often the router re-discovers while a node is
	// suspect or a slot has no routable owner. Default 50ms: a promotion is
	// then seen within one interval of the survivors learning of it.
	DegradedInterval time.Duration
	// MinRefreshGap rate-limits refreshes triggered by replies. Default 20ms.
	MinRefreshGap time.Duration
	// MaxRedirects bounds MOVED/ASK hops per command. Default 16.
	MaxRedirects int
	// RetryBudget bounds retries of a call whose context has no deadline.
	// Default 15s.
	RetryBudget time.Duration
	// MinBackoff and MaxBackoff bound the jittered, growing back-off after
	// TRYAGAIN, CLUSTERDOWN, LOADING, MASTERDOWN and unreachable nodes.
	// Defaults 2ms and 100ms.
	MinBackoff, MaxBackoff time.Duration
	// SuspectFor is how long a node that failed stays suspect unless a
	// later reply or discovery clears it. Default 10s.
	SuspectFor time.Duration
	// ReadPolicy picks nodes for read-only commands. Default MasterOnly.
	ReadPolicy ReadPolicy
	// LatencyTolerance is the band within which Nearest treats nodes as
	// equally near. Default 1ms.
	LatencyTolerance time.Duration
	// OnChange, if set, is called (from the refresh goroutine) with every
	// change between consecutive views.
	OnChange func([]topology.Change)
	// Logger receives topology changes and refresh failures. Default: discard.
	Logger *slog.Logger
}

func (o *Options) setDefaults() {
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&o.RefreshInterval, 5*time.Second)
	def(&o.DegradedInterval, 50*time.Millisecond)
	def(&o.MinRefreshGap, 20*time.Millisecond)
	def(&o.RetryBudget, 15*time.Second)
	def(&o.MinBackoff, 2*time.Millisecond)
	def(&o.MaxBackoff, 100*time.Millisecond)
	def(&o.SuspectFor, 10*time.Second)
	def(&o.LatencyTolerance, time.Millisecond)
	if o.MaxRedirects <= 0 {
		o.MaxRedirects = 16
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
}

// Router decides where every command goes and what to do with every reply.
// It holds the current view behind an atomic pointer, so routing takes no
// lock, and it refreshes that view in the background so healthy shards
// never wait for a failing one. It never touches a socket: the Source does
// the asking and the client does the sending.
type Router struct {
	opts Options
	tab  atomic.Pointer[table]
	sf   singleflight.Group
	// discoveries counts the discoveries started, so that Refresh can tell
	// one begun before its call from one begun after.
	discoveries atomic.Int64

	kick   chan struct{}
	stop   chan struct{}
	done   chan struct{}
	closed atomic.Bool

	mu       sync.RWMutex
	changed  chan struct{} // closed and replaced whenever a view is installed
	suspects map[string]time.Time
	nsuspect atomic.Int32
	version  uint64
	lastRun  time.Time
	lastErr  error

	latency sync.Map // addr -> *ewma

	refreshEvery atomic.Int64 // RefreshInterval, adjustable after New
}

// New makes a Router and starts its refresh loop. It does not wait for a
// first view: call Refresh for that.
func New(opts Options) (*Router, error) {
	if opts.Source == nil {
		return nil, errors.New("slotrouter: router.Options.Source is required")
	}
	opts.setDefaults()
	r := &Router{
		opts:     opts,
		kick:     make(chan struct{}, 1),
		stop:     make(chan struct{}),
		done:     make(chan struct{}),
		changed:  make(chan struct{}),
		suspects: map[string]time.Time{},
	}
	r.tab.Store(newTable(nil, 0, 0))
	r.refreshEvery.Store(int64(opts.RefreshInterval))
	go r.loop()
	return r, nil
}

// Close stops the refresh loop. Safe to call more than once.
func (r *Router) Close() {
	if r.closed.CompareAndSwap(false, true) {
		close(r.stop)
		<-r.done
	}
}

// Snapshot is the view in use (nil before the first discovery).
func (r *Router) Snapshot() *topology.Snapshot { return r.tab.Load().snap }

// Refresh discovers now and installs the result; concurrent callers share
// one discovery. The discovery a call returns from started after the call:
// one already in flight may have read the deployment before whatever made
// the caller ask (a redirect, a kick), so it is waited for and followed by
// another (at most two rounds: the second one starts after the call).
func (r *Router) Refresh(ctx context.Context) error {
	after := r.discoveries.Load()
	for {
		ch := r.sf.DoChan("refresh", func() (any, error) {
			n := r.discoveries.Add(1)
			return n, r.discover(context.WithoutCancel(ctx))
		})
		select {
		case res := <-ch:
			if n, _ := res.Val.(int64); n <= after {
				continue
			}
			return res.Err
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// TriggerRefresh asks the background loop to discover soon, without waiting.
func (r *Router) TriggerRefresh() {
	select {
	case r.kick <- struct{}{}:
	default:
	}
}

func (r *Router) discover(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	prev := r.tab.Load().snap
	snap, err := r.opts.Source.Discover(ctx, prev, r.IsSuspect)
	r.mu.Lock()
	r.lastRun = time.Now()
	r.lastErr = err
	r.mu.Unlock()
	if err != nil {
		r.opts.Logger.Debug("slotrouter: discovery failed", "err", err)
		return err
	}
	r.install(snap)
	return nil
}

// install swaps in a view, clears suspects that no longer matter and wakes
// everyone waiting for a change.
func (r *Router) install(snap *topology.Snapshot) {
	prev := r.tab.Load().snap
	var changes []topology.Change
	if prev != nil {
		changes = topology.Diff(prev, snap)
	}
	// Build the table outside the lock (it walks every slot); callers on
	// the hot path take the lock to check suspects.
	t := newTable(snap, 0, 0)
	wake := prev == nil || len(changes) > 0
	r.mu.Lock()
	r.version++
	t.version, t.gen = r.version, r.tab.Load().gen
	if wake {
		t.gen++
	}
	r.tab.Store(t)
	if wake {
		// Store first, then wake: a retry that wakes finds the new view.
		close(r.changed)
		r.changed = make(chan struct{})
	}
	r.mu.Unlock()
	for _, c := range changes {
		r.opts.Logger.Info("slotrouter: topology changed", "change", c.String())
	}
	if len(changes) > 0 && r.opts.OnChange != nil {
		r.opts.OnChange(changes)
	}
}

// patch records a MOVED at once, before any rediscovery, so the next
// command for that slot goes straight to the new owner.
func (r *Router) patch(slot slots.Slot, addr string) {
	for range 8 {
		old := r.tab.Load()
		n, ok := old.withOwner(slot, addr)
		if !ok || r.tab.CompareAndSwap(old, n) {
			return
		}
	}
}

// SetRefreshInterval changes the periodic check (the client derives it
// from the cluster's node timeout once it can ask). It applies from the next tick.
func (r *Router) SetRefreshInterval(d time.Duration) {
	if d > 0 {
		r.refreshEvery.Store(int64(d))
	}
}

// degraded reports whether the router should poll fast.
func (r *Router) degraded() bool {
	return r.nsuspect.Load() > 0 || r.tab.Load().incomplete()
}

func (r *Router) loop() {
	defer close(r.done)
	timer := time.NewTimer(r.opts.RefreshInterval)
	defer timer.Stop()
	var notified <-chan struct{} // nil (never ready) unless the source tells of changes
	if n, ok := r.opts.Source.(Notifier); ok {
		notified = n.Changed()
	}
	for {
		select {
		case <-r.stop:
			return
		case <-r.kick:
		case <-notified:
		case <-timer.C:
		}
		r.mu.Lock()
		wait := r.opts.MinRefreshGap - time.Since(r.lastRun)
		r.mu.Unlock()
		if wait > 0 {
			select {
			case <-r.stop:
				return
			case <-time.After(wait):
			}
		}
		r.expireSuspects()
		began := time.Now()
		_ = r.Refresh(context.Background())
		next := time.Duration(r.refreshEvery.Load())
		if r.degraded() {
			// The cadence counts from the start of a round, so a slow round
			// does not stretch the gap to the next one.
			next = max(r.opts.DegradedInterval-time.Since(began), time.Millisecond)
		}
		timer.Reset(next)
	}
}

// MarkSuspect records that addr failed (refused, reset, timed out) and
// starts a refresh from the other nodes at once.
func (r *Router) MarkSuspect(addr string) {
	// While a node is down every call to it fails; refreshing the mark
	// more than every few milliseconds would only contend on the lock.
	r.mu.RLock()
	at, ok := r.suspects[addr]
	r.mu.RUnlock()
	if ok && time.Since(at) < 10*time.Millisecond {
		r.TriggerRefresh()
		return
	}
	r.mu.Lock()
	if _, ok := r.suspects[addr]; !ok {
		r.nsuspect.Add(1)
		r.opts.Logger.Info("slotrouter: node suspect", "addr", addr)
	}
	r.suspects[addr] = time.Now()
	r.mu.Unlock()
	r.TriggerRefresh()
}

// ClearSuspect records that addr answered again.
func (r *Router) ClearSuspect(addr string) {
	if r.nsuspect.Load() == 0 {
		return
	}
	r.mu.Lock()
	if _, ok := r.suspects[addr]; ok {
		delete(r.suspects, addr)
		r.nsuspect.Add(-1)
		r.opts.Logger.Info("slotrouter: node answered again", "addr", addr)
	}
	r.mu.Unlock()
}

// IsSuspect reports whether addr recently failed.
func (r *Router) IsSuspect(addr string) bool {
	if r.nsuspect.Load() == 0 {
		return false
	}
	r.mu.RLock()
	_, ok := r.suspects[addr]
	r.mu.RUnlock()
	return ok
}

func (r *Router) expireSuspects() {
	if r.nsuspect.Load() == 0 {
		return
	}
	t := r.tab.Load()
	used := map[string]bool{}
	for _, rt := range t.shards {
		used[rt.master] = true
		for _, a := range rt.replicas {
			used[a] = true
		}
	}
	r.mu.Lock()
	for a, at := range r.suspects {
		// A node that no longer serves anything need not be watched: the
		// cluster has routed around it.
		if time.Since(at) > r.opts.SuspectFor || !used[a] {
			delete(r.suspects, a)
			r.nsuspect.Add(-1)
		}
	}
	r.mu.Unlock()
}

// Changed returns a channel that is closed when the next view that differs
// from the current one is installed. The client uses it to abandon
// retry-safe calls stuck on a suspect node once the slot has a new owner.
func (r *Router) Changed() <-chan struct{} { return r.changedChan() }

// changedChan returns a channel closed at the next view change.
func (r *Router) changedChan() <-chan struct{} {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return r.changed
}

// Serves reports whether the current view still sends a's command to addr:
// addr is the slot's master or one of its replicas (any routable master for
// a key-less command). The client asks after a view change, to decide
// whether a retry-safe call stuck on a suspect node should be abandoned and
// sent to the new owner.
func (r *Router) Serves(a *Attempt, addr string) bool {
	t := r.tab.Load()
	if !a.HasSlot {
		for _, m := range t.masters {
			if m == addr {
				return true
			}
		}
		return false
	}
	rt, ok := t.ownerOf(a.Slot)
	if !ok {
		return false
	}
	if rt.master == addr {
		return true
	}
	for _, rep := range rt.replicas {
		if rep == addr {
			return true
		}
	}
	return false
}
