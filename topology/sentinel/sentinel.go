package sentinel

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/slotrouter/slotrouter/slots"
	"github.com/slotrouter/slotrouter/topology"
)

// Exec sends one command to addr and returns the decoded RESP2 reply (nested []any, string,
// int64, nil) or the server's error reply as an error. It is an alias, not a new type, so that
// the client's router.Exec values can be passed without conversion.
type Exec = func(ctx context.Context, addr string, args ...any) (any, error)

// Subscribe runs SUBSCRIBE on addr and calls fn for each message until ctx ends or the
// connection fails.
type Subscribe = func(ctx context.Context, addr string, channels []string, fn func(channel, payload string)) error

// Defaults for the zero values of Options.
const (
	DefaultReconcile      = time.Second
	DefaultTimeout        = time.Second
	DefaultSuspectTimeout = 100 * time.Millisecond
	DefaultAttempts       = 3
)

// Channels are the Sentinel events the source subscribes to. +switch-master is the one that
// matters; the others change the healthy replica set or the sentinel set.
var Channels = []string{"+switch-master", "+sdown", "-sdown", "+odown", "-odown", "+slave", "+sentinel", "+reboot"}

// Options configure a Source.
type Options struct {
	// MasterName is the name the Sentinels monitor (required).
	MasterName string
	// Sentinels are "host:port" addresses of Sentinels (at least one). Sentinels learnt from
	// SENTINEL sentinels are added to them.
	Sentinels []string
	// Exec talks to Sentinels (required), with the Sentinels' credentials.
	Exec Exec
	// NodeExec talks to data nodes (the ROLE check), with the data nodes' credentials, which
	// usually differ from the Sentinels'. nil means Exec is used for both.
	NodeExec Exec
	// Subscribe, when set, is used to follow events on every Sentinel; nil leaves only the
	// periodic reconciliation.
	Subscribe Subscribe
	// Reconcile is how often the source asks a Sentinel for the master and healthy replicas and
	// signals Changed if they differ from what Discover last returned; this catches a missed
	// event and retries a Discover that failed mid-failover. 0 means DefaultReconcile (1 s);
	// negative disables it.
	Reconcile time.Duration
	// Timeout bounds each command. 0 means DefaultTimeout (1 s).
	Timeout time.Duration
	// SuspectTimeout bounds the ROLE check of a master the router marks suspect, so that a hung
	// node does not hold up Discover. 0 means DefaultSuspectTimeout (100 ms); never longer than
	// Timeout.
	SuspectTimeout time.Duration
	// Attempts is how many passes over the Sentinels Discover makes before reporting an
	// unverified master (a failover caught mid-way often settles in tens of ms). 0 means
	// DefaultAttempts (3).
	Attempts int
	// Logger; nil means slog.Default().
	Logger *slog.Logger
}

// Source is a router topology source for a Sentinel-managed master: one shard owning every
// slot, the master verified with ROLE. Safe for concurrent use. Close it when done.
type Source struct {
	o       Options
	changed chan struct{}
	ctx     context.Context
	cancel  context.CancelFunc
	wg      sync.WaitGroup

	mu        sync.Mutex
	sentinels []string                      // configured first, then learnt
	lastGood  string                        // sentinel that last answered with a verified master
	watching  map[string]context.CancelFunc // sentinels with a subscription goroutine
	lastView  string                        // master + replicas of the last returned snapshot
	closed    bool
}

// New validates o and starts the event subscriptions and reconciliation. Nothing is asked
// synchronously: the first Discover does that.
func New(o Options) (*Source, error) {
	if o.MasterName == "" {
		return nil, fmt.Errorf("%w: MasterName is empty", ErrInvalidOptions)
	}
	if len(o.Sentinels) == 0 {
		return nil, fmt.Errorf("%w: no Sentinels", ErrInvalidOptions)
	}
	for _, a := range o.Sentinels {
		if _, _, err := splitAddr(a); err != nil {
			return nil, fmt.Errorf("%w: sentinel %q: %v", ErrInvalidOptions, a, err)
		}
	}
	if o.Exec == nil {
		return nil, fmt.Errorf("%w: Exec is nil", ErrInvalidOptions)
	}
	if o.NodeExec == nil {
		o.NodeExec = o.Exec
	}
	if o.Reconcile == 0 {
		o.Reconcile = DefaultReconcile
	}
	if o.Timeout <= 0 {
		o.Timeout = DefaultTimeout
	}
	if o.SuspectTimeout <= 0 {
		o.SuspectTimeout = DefaultSuspectTimeout
	}
	o.SuspectTimeout = min(o.SuspectTimeout, o.Timeout)
	if o.Attempts <= 0 {
		o.Attempts = DefaultAttempts
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &Source{
		o:         o,
		changed:   make(chan struct{}, 1),
		ctx:       ctx,
		cancel:    cancel,
		sentinels: slices.Compact(slices.Clone(o.Sentinels)),
		watching:  map[string]context.CancelFunc{},
	}
	s.mu.Lock()
	for _, a := range s.sentinels {
		s.watchLocked(a)
	}
	s.mu.Unlock()
	if o.Reconcile > 0 {
		s.wg.Add(1)
		go s.reconcileLoop()
	}
	return s, nil
}

// Changed receives when the source learnt (by an event or reconciliation) that Discover would
// return something new. Signals coalesce: one receive may stand for several events.
func (s *Source) Changed() <-chan struct{} { return s.changed }

func (s *Source) signal() {
	select {
	case s.changed <- struct{}{}:
	default:
	}
}

// Close stops subscriptions and reconciliation and waits for their goroutines. Idempotent.
func (s *Source) Close() error {
	s.mu.Lock()
	s.closed = true
	s.mu.Unlock()
	s.cancel()
	s.wg.Wait()
	return nil
}

// Sentinels returns the Sentinels currently known, the last one that answered first.
func (s *Source) Sentinels() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.orderLocked()
}

func (s *Source) orderLocked() []string {
	out := make([]string, 0, len(s.sentinels))
	if s.lastGood != "" {
		out = append(out, s.lastGood)
	}
	for _, a := range s.sentinels {
		if a != s.lastGood {
			out = append(out, a)
		}
	}
	return out
}

// Discover asks the Sentinels in order (the last good one first) for the master, verifies it
// with ROLE on the data node and returns one shard owning all slots: the master and the
// replicas Sentinel does not flag s_down, o_down or disconnected. A node that is not confirmed
// master by ROLE is never returned as master: after making Attempts passes, Discover returns
// *UnverifiedError (or *UnknownMasterError if every Sentinel answering said so). prev is unused:
// Sentinel is asked afresh each time. suspects (may be nil) are data nodes the client failed to
// reach: the ROLE check of a suspect master gets SuspectTimeout instead of Timeout. It is never
// skipped, since an unverified master must not be returned.
//
// A named master that says master is still refused when one of its listed replicas says master
// too and was promoted out of its history (its master_replid2 is the named one's
// master_replid, see *SupersededError): the Sentinels are behind. If no Sentinel names a
// master that passes, the snapshot has no master, so writes wait (bounded by their callers'
// deadlines) instead of going to a node about to be converted and resynced.
func (s *Source) Discover(ctx context.Context, prev *topology.Snapshot, suspects func(addr string) bool) (*topology.Snapshot, error) {
	s.mu.Lock()
	closed := s.closed
	s.mu.Unlock()
	if closed {
		return nil, ErrClosed
	}
	var attempts []Attempt
	var unknown []string
	backoff := 25 * time.Millisecond
	for pass := 0; pass < s.o.Attempts; pass++ {
		if pass > 0 {
			t := time.NewTimer(backoff)
			select {
			case <-ctx.Done():
				t.Stop()
				return nil, s.failure(ctx, attempts, unknown)
			case <-t.C:
			}
			backoff *= 2
		}
		attempts, unknown = attempts[:0], unknown[:0]
		for _, sent := range s.Sentinels() {
			if ctx.Err() != nil {
				return nil, s.failure(ctx, attempts, unknown)
			}
			v, err := s.ask(ctx, sent, suspects)
			if err == nil {
				return v.snapshot(), nil
			}
			var ue *UnknownMasterError
			if errors.As(err, &ue) {
				unknown = append(unknown, sent)
			}
			a := Attempt{Sentinel: sent, Err: err}
			var ve *verifyError
			if errors.As(err, &ve) {
				a.Master, a.Err = ve.master, ve.err
			}
			attempts = append(attempts, a)
		}
		if len(unknown) > 0 && len(unknown) == len(attempts) {
			break // a configuration error, not a failover: retrying will not help
		}
	}
	if err := superseded(attempts); err != nil && ctx.Err() == nil {
		// Returned as a view with no master, not as an error: on an error the router would
		// keep its view, whose master is probably the superseded node. Reconcile re-checks.
		s.o.Logger.Warn("sentinel: the named master was superseded; no master until the Sentinels catch up", "err", err)
		s.mu.Lock()
		s.lastView = ""
		s.mu.Unlock()
		return topology.NewSnapshot(nil), nil
	}
	return nil, s.failure(ctx, attempts, unknown)
}

// superseded returns the first *SupersededError among the attempts, or nil.
func superseded(attempts []Attempt) error {
	for _, a := range attempts {
		var se *SupersededError
		if errors.As(a.Err, &se) {
			return se
		}
	}
	return nil
}

func (s *Source) failure(ctx context.Context, attempts []Attempt, unknown []string) error {
	if len(unknown) > 0 && len(unknown) == len(attempts) {
		return &UnknownMasterError{MasterName: s.o.MasterName, Sentinels: slices.Clone(unknown)}
	}
	if len(attempts) == 0 && ctx.Err() != nil {
		return ctx.Err()
	}
	return &UnverifiedError{MasterName: s.o.MasterName, Attempts: slices.Clone(attempts)}
}

// verifyError carries the address a sentinel named when its ROLE check failed.
type verifyError struct {
	master string
	err    error
}

func (e *verifyError) Error() string { return e.master + ": " + e.err.Error() }
func (e *verifyError) Unwrap() error { return e.err }

// view is what one Sentinel said, after verification.
type view struct {
	master   string
	offset   int64
	replicas []instance
}

func (v *view) key() string {
	addrs := make([]string, len(v.replicas))
	for i, r := range v.replicas {
		addrs[i] = r.Addr
	}
	slices.Sort(addrs)
	return v.master + "|" + strings.Join(addrs, ",")
}

// ask runs the whole exchange with one sentinel.
func (s *Source) ask(ctx context.Context, sent string, suspects func(string) bool) (*view, error) {
	master, replicas, listed, err := s.query(ctx, sent)
	if err != nil {
		return nil, err
	}
	// Sentinel's answer is checked against the node itself: mid-failover the named node may be
	// dead or still a replica, and a restarted old master claims master for ~10 s, so only the
	// combination "Sentinel names it AND it says master" is trusted.
	cctx, cancel := context.WithTimeout(ctx, s.timeout(master, suspects))
	reply, err := s.o.NodeExec(cctx, master, "ROLE")
	cancel()
	if err != nil {
		return nil, &verifyError{master, err}
	}
	role, offset, err := parseRole(reply)
	if err != nil {
		return nil, &verifyError{master, err}
	}
	if role != "master" {
		return nil, &verifyError{master, &NotMasterError{Addr: master, Role: role}}
	}
	if by := s.successor(ctx, master, listed, suspects); by != "" {
		return nil, &verifyError{master, &SupersededError{Addr: master, By: by}}
	}
	v := &view{master: master, offset: offset, replicas: replicas}
	s.learnSentinels(ctx, sent)
	s.mu.Lock()
	if s.lastGood != sent {
		s.o.Logger.Debug("sentinel: answering sentinel changed", "from", s.lastGood, "to", sent)
	}
	s.lastGood = sent
	s.lastView = v.key()
	s.mu.Unlock()
	return v, nil
}

// query asks one sentinel for the master address and the healthy replicas (without ROLE), and
// lists every replica it knows apart from the master, flags notwithstanding (Sentinel's own
// link to a node says little about ours).
func (s *Source) query(ctx context.Context, sent string) (string, []instance, []instance, error) {
	cctx, cancel := context.WithTimeout(ctx, s.o.Timeout)
	defer cancel()
	reply, err := s.o.Exec(cctx, sent, "SENTINEL", "get-master-addr-by-name", s.o.MasterName)
	if err != nil {
		return "", nil, nil, err
	}
	master, ok, err := parseMasterAddr(reply)
	if err != nil {
		return "", nil, nil, err
	}
	if !ok {
		return "", nil, nil, &UnknownMasterError{MasterName: s.o.MasterName, Sentinels: []string{sent}}
	}
	reply, err = s.o.Exec(cctx, sent, "SENTINEL", "replicas", s.o.MasterName)
	if err != nil && strings.Contains(strings.ToLower(err.Error()), "subcommand") {
		// Sentinels before 5.0 know only the old name.
		reply, err = s.o.Exec(cctx, sent, "SENTINEL", "slaves", s.o.MasterName)
	}
	if err != nil {
		return "", nil, nil, err
	}
	all, err := parseInstances("SENTINEL replicas", reply)
	if err != nil {
		return "", nil, nil, err
	}
	replicas := make([]instance, 0, len(all))
	listed := make([]instance, 0, len(all))
	for _, r := range all {
		// Right after a switch Sentinel can still list the promoted node among the replicas.
		if r.Addr == master {
			continue
		}
		listed = append(listed, r)
		if healthy(r.Fields["flags"]) {
			replicas = append(replicas, r)
		}
	}
	return master, replicas, listed, nil
}

// learnSentinels adds the other Sentinels that sent knows of, and subscribes to them. Failures
// only cost the chance to learn, so they are logged, not returned.
func (s *Source) learnSentinels(ctx context.Context, sent string) {
	cctx, cancel := context.WithTimeout(ctx, s.o.Timeout)
	reply, err := s.o.Exec(cctx, sent, "SENTINEL", "sentinels", s.o.MasterName)
	cancel()
	if err != nil {
		s.o.Logger.Debug("sentinel: SENTINEL sentinels failed", "sentinel", sent, "err", err)
		return
	}
	others, err := parseInstances("SENTINEL sentinels", reply)
	if err != nil {
		s.o.Logger.Warn("sentinel: bad SENTINEL sentinels reply", "sentinel", sent, "err", err)
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, o := range others {
		if !slices.Contains(s.sentinels, o.Addr) && !s.closed {
			s.sentinels = append(s.sentinels, o.Addr)
			s.o.Logger.Info("sentinel: learnt sentinel", "addr", o.Addr, "from", sent)
			s.watchLocked(o.Addr)
		}
	}
}

func (v *view) snapshot() *topology.Snapshot {
	master := newNode(v.master, topology.RoleMaster, "")
	master.ReplOffset = v.offset
	shard := topology.Shard{Master: master, Ranges: []topology.Range{{Start: 0, End: slots.Count - 1}}}
	for _, r := range v.replicas {
		n := newNode(r.Addr, topology.RoleReplica, master.ID)
		if off, err := strconv.ParseInt(r.Fields["slave-repl-offset"], 10, 64); err == nil {
			n.ReplOffset = off
		}
		shard.Replicas = append(shard.Replicas, n)
	}
	return topology.NewSnapshot([]topology.Shard{shard})
}
