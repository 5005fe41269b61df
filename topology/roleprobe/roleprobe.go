package roleprobe

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/slotrouter/slotrouter/topology"
)

// Exec sends one command to addr and returns the decoded RESP2 reply (nested []any, string,
// int64, nil) or the server's error reply as an error. An alias so router.Exec values fit as is.
type Exec = func(ctx context.Context, addr string, args ...any) (any, error)

// Defaults for the zero values of Options.
const (
	DefaultInterval       = time.Second
	DefaultTimeout        = 500 * time.Millisecond
	DefaultSuspectTimeout = 100 * time.Millisecond
)

// ErrInvalidOptions is wrapped by every error New returns for bad Options.
var ErrInvalidOptions = errors.New("roleprobe: invalid options")

// ErrNoMaster is matched by errors that mean "no node may take writes now".
var ErrNoMaster = errors.New("roleprobe: no master")

// ErrClosed is returned by Probe and Discover after Close.
var ErrClosed = errors.New("roleprobe: source closed")

// UnreachableError says that no node answered the probe.
type UnreachableError struct{ Errs map[string]error }

func (e *UnreachableError) Error() string {
	parts := make([]string, 0, len(e.Errs))
	for a, err := range e.Errs {
		parts = append(parts, a+": "+err.Error())
	}
	slices.Sort(parts)
	return "roleprobe: no node answered: " + strings.Join(parts, "; ")
}

func (e *UnreachableError) Is(target error) bool { return target == ErrNoMaster }

// Options configure a Source.
type Options struct {
	// Addrs are the data nodes, "host:port", written the way the replicas name their master
	// (REPLICAOF host): follower counting compares these strings.
	Addrs []string
	// Exec sends commands to the nodes (required).
	Exec Exec
	// Interval between the starts of background probe rounds (Interval/4 while two nodes claim
	// master). 0 means DefaultInterval (1 s); a view change is noticed within Interval plus one
	// round's duration, or at once after Trigger.
	Interval time.Duration
	// Timeout bounds each node's probe. 0 means DefaultTimeout (500 ms).
	Timeout time.Duration
	// SuspectTimeout bounds the probe of a node the router marks suspect (the client failed to
	// reach it recently), so that a hung node does not hold up Discover. Suspects are still
	// asked rather than skipped: a master that merely dropped one connection answers ROLE in
	// a millisecond, and skipping it would leave writes without a master. 0 means
	// DefaultSuspectTimeout (100 ms); it is never longer than Timeout.
	SuspectTimeout time.Duration
	// Logger; nil means slog.Default(). Split brains are logged at Warn.
	Logger *slog.Logger
}

// Report is the result of one probe round.
type Report struct {
	At    time.Time     // when the probe round started
	Took  time.Duration // how long the round took
	Nodes []NodeStatus  // in Options.Addrs order
	Decision
}

// Source probes every node's role and presents the single writable node plus its replicas as
// one shard owning all slots. See Decide for the rule. Safe for concurrent use; Close it.
type Source struct {
	o       Options
	changed chan struct{}
	trigger chan struct{}
	ctx     context.Context
	cancel  context.CancelFunc
	wg      sync.WaitGroup

	mu        sync.Mutex
	seq       uint64 // of the last probe started
	applied   uint64 // of the last probe whose result is in last
	last      *Report
	lastKey   string
	splitFrom time.Time
	closed    bool
}

// New validates o and starts background probing.
func New(o Options) (*Source, error) {
	if len(o.Addrs) == 0 {
		return nil, fmt.Errorf("%w: no Addrs", ErrInvalidOptions)
	}
	for _, a := range o.Addrs {
		if _, _, err := net.SplitHostPort(a); err != nil {
			return nil, fmt.Errorf("%w: address %q: %v", ErrInvalidOptions, a, err)
		}
	}
	if o.Exec == nil {
		return nil, fmt.Errorf("%w: Exec is nil", ErrInvalidOptions)
	}
	if o.Interval <= 0 {
		o.Interval = DefaultInterval
	}
	if o.Timeout <= 0 {
		o.Timeout = DefaultTimeout
	}
	if o.SuspectTimeout <= 0 {
		o.SuspectTimeout = DefaultSuspectTimeout
	}
	o.SuspectTimeout = min(o.SuspectTimeout, o.Timeout)
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	o.Addrs = slices.Clone(o.Addrs)
	ctx, cancel := context.WithCancel(context.Background())
	s := &Source{o: o, changed: make(chan struct{}, 1), trigger: make(chan struct{}, 1), ctx: ctx, cancel: cancel}
	s.wg.Add(1)
	go s.loop()
	return s, nil
}

// Changed receives when a probe's decision (master or replica set) differs from the previous
// probe's. Signals coalesce.
func (s *Source) Changed() <-chan struct{} { return s.changed }

// Trigger asks for a probe now without waiting (after READONLY, a lost connection or a
// timeout). Calls coalesce.
func (s *Source) Trigger() {
	select {
	case s.trigger <- struct{}{}:
	default:
	}
}

// Report returns the last applied probe round, or nil before the first. It is shared: read it,
// do not modify it.
func (s *Source) Report() *Report {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.last
}

// Close stops background probing and waits for it. Idempotent.
func (s *Source) Close() error {
	s.mu.Lock()
	s.closed = true
	s.mu.Unlock()
	s.cancel()
	s.wg.Wait()
	return nil
}

func (s *Source) loop() {
	defer s.wg.Done()
	t := time.NewTimer(0)
	defer t.Stop()
	for {
		select {
		case <-s.ctx.Done():
			return
		case <-t.C:
		case <-s.trigger:
		}
		start := time.Now()
		r, err := s.Probe(s.ctx)
		if errors.Is(err, ErrClosed) || s.ctx.Err() != nil {
			return
		}
		// While two nodes claim master the set is being reconfigured: probe four times as often
		// so that writes follow the replicas' move promptly.
		next := s.o.Interval
		if r != nil && r.SplitBrain != nil {
			next /= 4
		}
		// Rounds start every Interval (not Interval after the previous round ended), so a slow
		// round does not push the next one later.
		t.Reset(max(0, next-time.Since(start)))
	}
}

// Probe asks every node for its role now (concurrently), applies the rule and returns the
// round's report. A report older than one already applied (a slower concurrent probe) is
// returned but not applied.
func (s *Source) Probe(ctx context.Context) (*Report, error) {
	return s.probe(ctx, nil)
}

func (s *Source) probe(ctx context.Context, suspects func(string) bool) (*Report, error) {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil, ErrClosed
	}
	s.seq++
	seq := s.seq
	s.mu.Unlock()

	r := &Report{At: time.Now(), Nodes: make([]NodeStatus, len(s.o.Addrs))}
	var wg sync.WaitGroup
	for i, addr := range s.o.Addrs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			timeout := s.o.Timeout
			if suspects != nil && suspects(addr) {
				timeout = s.o.SuspectTimeout
			}
			r.Nodes[i] = s.probeNode(ctx, addr, timeout)
		}()
	}
	wg.Wait()
	s.lineage(ctx, r.Nodes, suspects)
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	r.Took = time.Since(r.At)
	r.Decision = Decide(r.Nodes)
	s.apply(seq, r)
	return r, nil
}

func (s *Source) probeNode(ctx context.Context, addr string, timeout time.Duration) NodeStatus {
	st := NodeStatus{Addr: addr}
	cctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	reply, err := s.o.Exec(cctx, addr, "ROLE")
	if err == nil {
		st.Err = parseRole(reply, &st)
		return st
	}
	if !isReplyError(err) {
		st.Err = err
		return st
	}
	// ROLE refused (renamed, ACL, a proxy): INFO replication carries the same facts.
	reply, ierr := s.o.Exec(cctx, addr, "INFO", "replication")
	if ierr != nil {
		st.Err = errors.Join(err, ierr)
		return st
	}
	st.Err = parseInfo(reply, &st)
	return st
}

// lineage asks INFO replication of the nodes that claimed master through ROLE when two or
// more did: only it carries the replication IDs that tell the newer master (see Decide). A
// failure leaves the IDs empty, so the round falls back to the replicas' votes.
func (s *Source) lineage(ctx context.Context, nodes []NodeStatus, suspects func(string) bool) {
	var ask []int
	for i, n := range nodes {
		if n.Err == nil && n.Writable {
			ask = append(ask, i)
		}
	}
	if len(ask) < 2 {
		return
	}
	var wg sync.WaitGroup
	for _, i := range ask {
		if nodes[i].Via != "ROLE" {
			continue // INFO already filled them
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			timeout := s.o.Timeout
			if suspects != nil && suspects(nodes[i].Addr) {
				timeout = s.o.SuspectTimeout
			}
			cctx, cancel := context.WithTimeout(ctx, timeout)
			defer cancel()
			if reply, err := s.o.Exec(cctx, nodes[i].Addr, "INFO", "replication"); err == nil {
				_ = parseLineage(reply, &nodes[i])
			}
		}()
	}
	wg.Wait()
}

// isReplyError tells an error reply from the server apart from a transport failure, which
// INFO would not get past either.
func isReplyError(err error) bool {
	var ne net.Error
	return !errors.As(err, &ne) && !errors.Is(err, context.DeadlineExceeded) &&
		!errors.Is(err, context.Canceled) && !errors.Is(err, io.EOF) &&
		!errors.Is(err, io.ErrUnexpectedEOF) && !errors.Is(err, net.ErrClosed)
}

func (r *Report) key() string {
	reps := slices.Clone(r.Replicas)
	slices.Sort(reps)
	return r.Master + "|" + strings.Join(reps, ",")
}

func (s *Source) apply(seq uint64, r *Report) {
	s.mu.Lock()
	if seq <= s.applied {
		s.mu.Unlock()
		return
	}
	s.applied = seq
	prevSplit := s.last != nil && s.last.SplitBrain != nil
	if r.SplitBrain != nil {
		if !prevSplit {
			s.splitFrom = r.At
		}
		r.SplitBrain.Since = s.splitFrom
	}
	key := r.key()
	changed := s.last != nil && key != s.lastKey
	s.last, s.lastKey = r, key
	s.mu.Unlock()

	switch {
	case r.SplitBrain != nil && !prevSplit:
		s.o.Logger.Warn("roleprobe: several nodes claim master", "err", r.SplitBrain, "master", r.Master)
	case r.SplitBrain == nil && prevSplit:
		s.o.Logger.Info("roleprobe: split brain over", "master", r.Master)
	}
	if changed {
		s.o.Logger.Info("roleprobe: view changed", "master", r.Master, "replicas", r.Replicas, "rule", r.Rule)
		select {
		case s.changed <- struct{}{}:
		default:
		}
	}
}

// Discover probes now and returns one shard owning all slots. When no node may take writes
// (none claims master, or a split brain the rule cannot settle) the snapshot has no shard
// (topology drops a shard without a master), so requests wait or fail instead of reaching a
// node that may be the wrong one; Report says why. That is returned as a snapshot, not an
// error, because on an error the router would keep the previous view and its master, which
// may be one of the contenders. When no node answers at all, *UnreachableError (errors.Is
// ErrNoMaster) is returned and the router keeps its view. prev is unused; suspects (may be
// nil) get SuspectTimeout instead of Timeout.
func (s *Source) Discover(ctx context.Context, prev *topology.Snapshot, suspects func(addr string) bool) (*topology.Snapshot, error) {
	r, err := s.probe(ctx, suspects)
	if err != nil {
		return nil, err
	}
	errs := map[string]error{}
	for _, n := range r.Nodes {
		if n.Err != nil {
			errs[n.Addr] = n.Err
		}
	}
	if len(errs) == len(r.Nodes) {
		return nil, &UnreachableError{Errs: errs}
	}
	return snapshot(r), nil
}
