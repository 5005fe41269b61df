// Package topology knows which node serves which hash slot.
//
// It parses the three ways a Redis Cluster describes itself (CLUSTER NODES
// text from Redis 3.x to 7.4 and Valkey 8, CLUSTER SLOTS and CLUSTER SHARDS
// reply trees in RESP2 or RESP3) into Nodes and Shards, and freezes them
// into an immutable Snapshot whose slot -> shard lookup is one array load,
// so the router's hot path needs no lock and no map.
//
// Why not just ask one node, as most clients do: a node that has just
// restarted, is loading, or sits on the wrong side of a partition answers
// with a stale or partial view, and the first reply wins. Discover instead
// asks several nodes at once and merges their CLUSTER NODES answers with the
// cluster's own rules: a slot belongs to the claimant with the highest config
// epoch (so a restarted ex-master's stale claim loses to its promoted
// replica), a node is failed when the answering nodes say so by majority,
// fail? alone is one node's opinion, uncovered slots keep their previous
// owner, and disagreement is counted in a Report instead of being hidden.
//
// Diff turns two snapshots into typed changes (failovers, slot moves, nodes
// failing and recovering) for logs and metrics.
//
// The endpoint rules (NULL, "" and "?" endpoints, noaddr nodes, hostnames)
// follow what real servers send rather than what the docs say (SHARDS health
// is "fail", unknown-endpoint is NULL in SLOTS but "" in SHARDS, a noaddr
// replica is still listed); testdata/topology holds replies captured from
// real 7.0.15 clusters at each stage of a failover, and testdata/README.md
// says how each was made.
package topology
