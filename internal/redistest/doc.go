// Package redistest starts real redis-server / redis-sentinel processes for
// tests: standalone servers, replicated pairs, Redis Clusters of N masters
// with R replicas each, and Sentinel groups.
//
// Why real servers: slotrouter's job is to follow what Redis actually does
// during failovers and resharding (MOVED/ASK timing, CLUSTER NODES contents
// mid-failover, Sentinel events). Fakes drift from reality; the harness keeps
// the tests honest while staying fast enough to run on every `go test`.
//
// Design choices (all documented so failures are explainable):
//
//   - Ports: random p in [10000, 22000) such that both p and p+10000 (the
//     cluster bus) are free on the bind address. The range stays below the
//     Linux ephemeral range (32768+) so outgoing connections of this or other
//     processes never occupy a port we are about to bind. Two test processes
//     may still race for the same port; startup detects the bind failure in
//     the server log and retries on another port.
//   - Cluster creation skips `redis-cli --cluster create`: slots are assigned
//     with CLUSTER ADDSLOTSRANGE, every node gets a distinct config epoch with
//     CLUSTER SET-CONFIG-EPOCH (no epoch-collision dance), nodes are joined
//     with CLUSTER MEET, then replicas are attached with CLUSTER REPLICATE.
//     StartCluster returns only once every node reports cluster_state:ok,
//     every node agrees on the slot owners and the replica links are up.
//   - Persistence is off (`save ""`, `appendonly no`) and replication uses
//     diskless sync without delay (`repl-diskless-sync-delay 0`), otherwise a
//     replica waits 5 s for its first full sync.
//   - cluster-node-timeout defaults to 2000 ms: short enough that a failover
//     completes in ~3-5 s, long enough that a loaded 2-core CI machine running
//     tests with -race does not produce spurious PFAIL/FAIL flags.
//     cluster-replica-validity-factor keeps its default (10): with no load the
//     replica's link was active until the kill, so it is always eligible.
//   - Every process is killed in t.Cleanup, also when the test fails
//     (stopped processes get SIGCONT first), and started with a parent-death
//     signal so a crashed test binary leaves no servers behind. On failure the
//     tail of every server log is written with t.Logf.
//   - Waiting is always polling with deadlines, never fixed sleeps.
//
// Typical use:
//
//	c := redistest.StartCluster(t, redistest.ClusterOptions{Masters: 3, Replicas: 1})
//	old := c.MasterOf(0)
//	old.Kill()
//	m, at := c.WaitPromoted(ctx, old) // at: when the promotion became visible
//	old.Restart(t)                    // rejoins as a replica of m
//	c.WaitOK(ctx)
//
// Methods that take no error return (StartCluster, WaitOK, WaitPromoted, ...)
// report problems with t.Fatalf and therefore must be called from the test
// goroutine. Server.Do returns errors and may be called from any goroutine.
package redistest
