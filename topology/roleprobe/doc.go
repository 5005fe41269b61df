// Package roleprobe is the router's topology source for a plain list of nodes where whoever
// says it is master takes writes (the HAProxy "role:master" check pattern, without the proxy).
// It presents the one writable node and its replicas as a single shard owning all 16384 slots.
//
// Every Interval (default 1 s), and at once after Trigger (the client calls it after READONLY,
// a lost connection or a timeout), it sends ROLE to every node concurrently, falling back to
// INFO replication when ROLE is refused (renamed command, ACL, proxy). KeyDB's active-replica
// role counts as writable. Changed fires when the chosen master or replica set changes. During a
// dual-master window rounds run four times as often, so writes follow the replicas promptly.
//
// Two writable nodes at once happen: a manual promotion caught half-way (REPLICAOF NO ONE on
// the new master before REPLICAOF on the old one), an old master restarting with its old
// config, a network split. Writes must never go to both, so Decide picks at most one, by this
// rule (also on Decide):
//
//  1. candidates are the reachable nodes that say master (or active-replica);
//  2. lineage: Redis records who was promoted out of whom. A promoted replica takes a new
//     master_replid and keeps its old master's as master_replid2, so a candidate whose
//     master_replid2 is another's master_replid is the newer master and wins (RuleLineage).
//     The round asks INFO replication of the candidates for these IDs (ROLE lacks them);
//  3. otherwise the one most probed replicas follow (their master_host:master_port) wins;
//  4. still undecided: no master (RuleTie). Offsets never decide: the node being retired
//     keeps taking writes, so it has the higher offset;
//  5. a winner is refused (RuleOutvoted) when a listed node that did not answer has more
//     followers than it: the replicas follow a master we cannot see, so the one we see is
//     probably stale.
//
// The guarantee: once a round has seen the promotion, no write goes to the old master. Writes
// the old master accepted between the promotion and that round are lost when it is demoted
// (it resyncs from the new master); no probing client can avoid that, only bound it: at most
// Interval's worth of writes.
//
// With no master the snapshot has no shard, so requests wait or fail rather than risk the
// wrong node. Each dual-master window is logged at Warn when it starts and at Info when it
// ends, and Report().SplitBrain (*SplitBrainError, errors.Is ErrNoMaster when undecided)
// describes it with the time it began.
//
// Follower counting compares addresses as strings, so list the nodes in Options.Addrs the way
// replicas name their master (REPLICAOF host port).
package roleprobe
