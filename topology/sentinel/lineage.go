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
// converted. ROLE goes to every listed replica; INFO replication only when one claims master.
func (s *Source) successor(ctx context.Context, master string, replicas []instance, timeout time.Duration) string {
	claims := make([]bool, len(replicas))
	var wg sync.WaitGroup
	for i, r := range replicas {
		wg.Add(1)
		go func() {
			defer wg.Done()
			cctx, cancel := context.WithTimeout(ctx, timeout)
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
	id, _ := s.replIDs(ctx, master, timeout)
	if id == "" {
		return ""
	}
	for _, c := range claimants {
		if _, id2 := s.replIDs(ctx, c, timeout); id2 == id {
			return c
		}
	}
	return ""
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
