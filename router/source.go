package router

import (
	"context"
	"time"

	"github.com/slotrouter/slotrouter/topology"
)

// Source produces views of the deployment. Redis Cluster, Sentinel and
// role-checked endpoints are all sources; the router treats them alike, which
// is how every deployment shape gets the same failover guarantees.
type Source interface {
	// Discover returns the current view; prev is the last one installed
	// (nil at first). Suspects are nodes the client recently failed to
	// reach: a source should not wait on them.
	Discover(ctx context.Context, prev *topology.Snapshot, suspects func(addr string) bool) (*topology.Snapshot, error)
}

// Notifier is implemented by sources that learn of changes by themselves
// (a Sentinel's +switch-master): a receive means "discover now".
type Notifier interface {
	Changed() <-chan struct{}
}

// ClusterSource discovers a Redis Cluster by asking several nodes at once
// (see topology.Discover), so no single stale node decides the view.
type ClusterSource struct {
	Seeds    []string
	Fetch    topology.Fetcher
	Resolver topology.Resolver
	// Timeout bounds one discovery round (default 500ms). Nodes that do not
	// answer in time are left out of that round.
	Timeout time.Duration
	// Sample bounds how many nodes are asked in large clusters (0: topology's default).
	Sample int
}

// Discover implements Source.
func (s *ClusterSource) Discover(ctx context.Context, prev *topology.Snapshot, suspects func(string) bool) (*topology.Snapshot, error) {
	timeout := s.Timeout
	if timeout <= 0 {
		timeout = 500 * time.Millisecond
	}
	// A node the client saw fail, or that the last view flags failed, is
	// not asked: a hung one would only cost the round its straggle wait.
	// Seeds are filtered too, since a seed may be the dead node; if that
	// leaves nothing, everything is asked.
	skip := func(addr string) bool {
		if suspects != nil && suspects(addr) {
			return true
		}
		if prev != nil {
			if n := prev.Node(addr); n != nil && n.Failed() {
				return true
			}
		}
		return false
	}
	seeds := make([]string, 0, len(s.Seeds))
	for _, a := range s.Seeds {
		if !skip(a) {
			seeds = append(seeds, a)
		}
	}
	fetch := func(ctx context.Context, addr string) ([]byte, error) {
		if skip(addr) {
			return nil, errSuspect
		}
		return s.Fetch(ctx, addr)
	}
	if len(seeds) == 0 && !anyAskable(prev, skip) {
		// Everyone looks bad: asking them all beats learning nothing.
		seeds, fetch = s.Seeds, s.Fetch
	}
	snap, _, err := topology.Discover(ctx, topology.DiscoverOptions{
		Seeds:    seeds,
		Fetch:    fetch,
		Previous: prev,
		Sample:   s.Sample,
		Resolver: s.Resolver,
		Timeout:  timeout,
	})
	return snap, err
}

func anyAskable(prev *topology.Snapshot, skip func(string) bool) bool {
	if prev == nil {
		return false
	}
	for _, n := range prev.Nodes() {
		if n.Routable() && !skip(n.Addr) {
			return true
		}
	}
	return false
}
