package topology

import (
	"context"
	"errors"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/netip"
	"sort"
	"strconv"
	"time"
)

// Fetcher returns the CLUSTER NODES text of the node at addr.
type Fetcher func(ctx context.Context, addr string) ([]byte, error)

// Resolver looks up seed hostnames; *net.Resolver satisfies it.
type Resolver interface {
	LookupHost(ctx context.Context, host string) ([]string, error)
}

// DiscoverOptions configure one discovery round. The zero value of every
// field but Fetch is usable.
type DiscoverOptions struct {
	// Seeds are host:port addresses; hostnames are resolved on every call
	// (so a DNS name that now points elsewhere is followed) and expanded to
	// every address returned.
	Seeds []string
	// Fetch is required.
	Fetch Fetcher
	// Previous is the last good view: its routable nodes are asked too, and
	// it fills slots that no answer covers.
	Previous *Snapshot
	// Sample bounds how many nodes are asked when seeds plus known nodes are
	// more than that; default 10. Below it every one is asked.
	Sample int
	// Resolver defaults to net.DefaultResolver.
	Resolver Resolver
	// Timeout bounds the round (on top of ctx); default 1 s.
	Timeout time.Duration
	// Straggle is how long to keep waiting for the remaining nodes once a
	// majority of the asked ones answered; default 50 ms. It keeps one hung
	// node from stretching every round to Timeout.
	Straggle time.Duration
	// Logger gets one debug line per round; nil means no logging.
	Logger *slog.Logger
}

// ErrNoAnswer is returned (wrapped in *DiscoverError) when no node gave a
// usable CLUSTER NODES answer.
var ErrNoAnswer = errors.New("topology: no node answered CLUSTER NODES")

// ErrNoFetcher is returned when DiscoverOptions.Fetch is nil.
var ErrNoFetcher = errors.New("topology: DiscoverOptions.Fetch is nil")

// errStraggler marks nodes dropped by the Straggle wait.
var errStraggler = errors.New("topology: no answer within the straggle wait after a majority answered")

// DiscoverError carries the per-address failures of a round with no answer.
type DiscoverError struct{ Report *Report }

func (e *DiscoverError) Error() string {
	s := ErrNoAnswer.Error() + " (asked " + strconv.Itoa(len(e.Report.Asked)) + ")"
	for _, a := range e.Report.Asked {
		if err := e.Report.Errors[a]; err != nil {
			s += "; " + a + ": " + err.Error()
			break
		}
	}
	return s
}

// Unwrap exposes ErrNoAnswer and every address's failure, so a caller can
// match the cause (a wrong password, a certificate error) with errors.Is/As.
func (e *DiscoverError) Unwrap() []error {
	errs := []error{ErrNoAnswer}
	for _, a := range e.Report.Asked {
		if err := e.Report.Errors[a]; err != nil {
			errs = append(errs, err)
		}
	}
	return errs
}

// Report describes how a view was reached, for logs and metrics.
type Report struct {
	Asked    []string
	Answered []string
	// Errors holds failures per address (resolve, fetch, parse).
	Errors map[string]error
	// DisagreeingSlots counts slots for which answers named different owners.
	DisagreeingSlots int
	// EpochConflicts counts slots claimed by different masters with the
	// same config epoch (the cluster resolves these itself, eventually).
	EpochConflicts int
	// Filled counts slots no answer covered that kept Previous's owner.
	Filled int
	// Uncovered counts slots left without an owner.
	Uncovered int
	// Failed lists the IDs judged failed (see Discover).
	Failed []string
	// Orphans counts replicas whose master is not a known master.
	Orphans int
	// Unconfirmed lists the addresses of nodes that were asked to confirm
	// what one answer (or a contradicted claim) said about them and did not
	// (see witness.go); their claims were not installed.
	Unconfirmed []string
	Duration    time.Duration

	confirm map[string]string // addr -> node ID to ask before trusting
}

// Discover asks several nodes for CLUSTER NODES at once and merges the
// answers into a Snapshot, instead of trusting whichever node answers
// first.
//
// Rules:
//   - A slot goes to the claiming master with the highest config epoch, so
//     a restarted ex-master still announcing its old slots (lower epoch)
//     never wins against its promoted replica. Equal epochs: a non-failed
//     claimant first, then the smaller ID (and the slot counts as an
//     epoch conflict).
//   - A node that answered is the authority on its own role, master and
//     migration state. Other nodes' opinions: the line with the highest
//     epoch.
//   - Failed: a majority of the nodes that mention it (its own answer
//     counts as "not failed") flag it fail, or at least one does and none
//     contradicts. fail? alone is one node's opinion and changes nothing.
//     Failed, noaddr and handshake nodes are never routable; a failed
//     master keeps its slots (nobody else claims them) so callers can see
//     the shard is down rather than guessing another owner.
//   - Slots no answer covers keep Previous's owner unless that node is
//     judged failed now.
func Discover(ctx context.Context, opts DiscoverOptions) (*Snapshot, *Report, error) {
	start := time.Now()
	rep := &Report{Errors: map[string]error{}}
	if opts.Fetch == nil {
		return nil, rep, ErrNoFetcher
	}
	timeout := opts.Timeout
	if timeout <= 0 {
		timeout = time.Second
	}
	straggle := opts.Straggle
	if straggle <= 0 {
		straggle = 50 * time.Millisecond
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()

	targets := pickTargets(ctx, opts, rep)
	rep.Asked = targets
	answers := fetchAll(ctx, opts.Fetch, targets, straggle, rep)
	defer func() { rep.Duration = time.Since(start) }()
	if len(answers) == 0 {
		return nil, rep, &DiscoverError{Report: rep}
	}
	var version uint64 = 1
	if opts.Previous != nil {
		version = opts.Previous.Version() + 1
	}
	if opts.Previous == nil {
		var groups [][]string
		if answers, groups = splitClusters(answers); groups != nil {
			return nil, rep, &ForeignSeedsError{Groups: groups}
		}
	} else {
		answers = sameCluster(answers, opts.Previous, rep)
		if len(answers) == 0 {
			return nil, rep, &DiscoverError{Report: rep}
		}
	}
	snap := merge(answers, opts.Previous, rep, version, false)
	switch {
	case len(rep.confirm) > 0:
		snap = confirmRound(ctx, opts.Fetch, answers, opts.Previous, rep, version, straggle)
	case len(answers) == 1:
		// A lone answer nobody can second is its own majority.
		rep.reset()
		snap = merge(answers, opts.Previous, rep, version, true)
	}
	if opts.Logger != nil {
		opts.Logger.Debug("topology discovered", "asked", len(targets), "answered", len(answers),
			"disagreeing_slots", rep.DisagreeingSlots, "epoch_conflicts", rep.EpochConflicts,
			"uncovered", rep.Uncovered, "failed", len(rep.Failed), "snapshot", snap.String())
	}
	return snap, rep, nil
}

func pickTargets(ctx context.Context, opts DiscoverOptions, rep *Report) []string {
	resolver := opts.Resolver
	if resolver == nil {
		resolver = net.DefaultResolver
	}
	seen := map[string]bool{}
	var seeds, known []string
	for _, s := range opts.Seeds {
		host, port, err := net.SplitHostPort(s)
		if err != nil {
			rep.Errors[s] = err
			continue
		}
		if _, err := netip.ParseAddr(host); err == nil {
			if !seen[s] {
				seen[s] = true
				seeds = append(seeds, s)
			}
			continue
		}
		ips, err := resolver.LookupHost(ctx, host)
		if err != nil {
			rep.Errors[s] = err
			continue
		}
		for _, ip := range ips {
			a := net.JoinHostPort(ip, port)
			if !seen[a] {
				seen[a] = true
				seeds = append(seeds, a)
			}
		}
	}
	if opts.Previous != nil {
		for _, n := range opts.Previous.Nodes() {
			if n.Routable() && !seen[n.Addr] {
				seen[n.Addr] = true
				known = append(known, n.Addr)
			}
		}
	}
	sample := opts.Sample
	if sample <= 0 {
		sample = 10
	}
	if len(seeds)+len(known) <= sample {
		return append(seeds, known...)
	}
	// Large cluster: a random subset, but always some seeds, because the
	// seeds are what still works when every known address went stale.
	rand.Shuffle(len(seeds), func(i, j int) { seeds[i], seeds[j] = seeds[j], seeds[i] })
	rand.Shuffle(len(known), func(i, j int) { known[i], known[j] = known[j], known[i] })
	nSeeds := min(len(seeds), max(1, sample/2))
	if len(known) < sample-nSeeds {
		nSeeds = sample - len(known)
	}
	out := append([]string{}, seeds[:nSeeds]...)
	return append(out, known[:sample-nSeeds]...)
}

type answer struct {
	addr  string
	nodes []Node
}

func fetchAll(ctx context.Context, fetch Fetcher, targets []string, straggle time.Duration, rep *Report) []answer {
	type result struct {
		addr string
		data []byte
		err  error
	}
	ch := make(chan result, len(targets))
	for _, a := range targets {
		go func() {
			data, err := fetch(ctx, a)
			ch <- result{a, data, err}
		}()
	}
	var answers []answer
	var straggleC <-chan time.Time
	majority := len(targets)/2 + 1
	for pending := len(targets); pending > 0; {
		var r result
		select {
		case r = <-ch:
		case <-ctx.Done():
			for _, a := range targets {
				if _, ok := rep.Errors[a]; !ok && !contains(rep.Answered, a) {
					rep.Errors[a] = ctx.Err()
				}
			}
			return sortAnswers(answers)
		case <-straggleC:
			for _, a := range targets {
				if _, ok := rep.Errors[a]; !ok && !contains(rep.Answered, a) {
					rep.Errors[a] = errStraggler
				}
			}
			return sortAnswers(answers)
		}
		pending--
		if r.err != nil {
			rep.Errors[r.addr] = r.err
			continue
		}
		nodes, err := ParseClusterNodes(r.data)
		if err != nil {
			rep.Errors[r.addr] = err
			continue
		}
		fixSelfAddr(nodes, r.addr)
		answers = append(answers, answer{r.addr, nodes})
		rep.Answered = append(rep.Answered, r.addr)
		if len(answers) == majority && pending > 0 {
			straggleC = time.After(straggle)
		}
	}
	return sortAnswers(answers)
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// sortAnswers makes the merge independent of arrival order.
func sortAnswers(a []answer) []answer {
	sort.Slice(a, func(i, j int) bool { return a[i].addr < a[j].addr })
	return a
}

// fixSelfAddr gives a myself line with no ip (a fresh node) the host we
// reached it at: that is, by definition, an address that works.
func fixSelfAddr(nodes []Node, asked string) {
	host, port, err := net.SplitHostPort(asked)
	if err != nil {
		return
	}
	for i := range nodes {
		n := &nodes[i]
		if n.Flags&Myself == 0 || n.IP != "" || n.Flags&NoAddr != 0 {
			continue
		}
		if n.Port == 0 {
			n.Port, _ = strconv.Atoi(port)
		}
		n.Addr = net.JoinHostPort(host, strconv.Itoa(n.Port))
	}
}
