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
	fetch := s.Fetch
	if suspects != nil {
		fetch = func(ctx context.Context, addr string) ([]byte, error) {
			if suspects(addr) {
				return nil, errSuspect
			}
			return s.Fetch(ctx, addr)
		}
	}
	snap, _, err := topology.Discover(ctx, topology.DiscoverOptions{
		Seeds:    s.Seeds,
		Fetch:    fetch,
		Previous: prev,
		Sample:   s.Sample,
		Resolver: s.Resolver,
		Timeout:  timeout,
	})
	return snap, err
}
