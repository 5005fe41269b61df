package sentinel

import (
	"context"
	"sync"
	"time"

	"github.com/slotrouter/slotrouter/internal/replyconv"
)

// successor returns a node promoted out of master's history, or "": one of the replicas
// Sentinel listed for master that says master itself and whose master_replid2 is master's
// master_replid (REPLICAOF NO ONE keeps the old master's ID there). Mid-failover the
// Sentinels still name the old master, which is still writable, while the promoted replica
// already takes its own history forward: writes to the old one would be discarded when it is
// converted. ROLE goes to every listed replica (Timeout each, SuspectTimeout for suspects: a
// hung replica costs Discover that much); INFO replication only when one claims master. A
// replica that does not answer in time is taken as no claimant.
func (s *Source) successor(ctx context.Context, master string, replicas []instance, suspects func(string) bool) string {
	claims := make([]bool, len(replicas))
	var wg sync.WaitGroup
	for i, r := range replicas {
		wg.Add(1)
		go func() {
			defer wg.Done()
			cctx, cancel := context.WithTimeout(ctx, s.timeout(r.Addr, suspects))
			defer cancel()
			if v, err := s.o.NodeExec(cctx, r.Addr, "ROLE"); err == nil {
				role, _, err := parseRole(v)
				claims[i] = err == nil && role == "master"
			}
		}()
	}
	wg.Wait()
	var claimants []string
	for i, c := range claims {
		if c {
			claimants = append(claimants, replicas[i].Addr)
		}
	}
	if len(claimants) == 0 {
		return ""
	}
	id, _ := s.replIDs(ctx, master, s.timeout(master, suspects))
	if id == "" {
		return ""
	}
	for _, c := range claimants {
		if _, id2 := s.replIDs(ctx, c, s.timeout(c, suspects)); id2 == id {
			return c
		}
	}
	return ""
}

// timeout is the bound for one data-node command: SuspectTimeout for suspects.
func (s *Source) timeout(addr string, suspects func(string) bool) time.Duration {
	if suspects != nil && suspects(addr) {
		return s.o.SuspectTimeout
	}
	return s.o.Timeout
}

// replIDs asks addr for its master_replid and master_replid2 ("" when unknown).
func (s *Source) replIDs(ctx context.Context, addr string, timeout time.Duration) (id, id2 string) {
	cctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	v, err := s.o.NodeExec(cctx, addr, "INFO", "replication")
	if err != nil {
		return "", ""
	}
	f, ok := replyconv.Info(v)
	if !ok {
		return "", ""
	}
	return replyconv.ReplIDs(f)
}
