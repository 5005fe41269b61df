// Package clustertest runs an in-process Redis Cluster for tests, the way
// net/http/httptest runs an HTTP server.
//
// New starts N masters with M replicas each. Every node is a real TCP
// server on a free 127.0.0.1 port speaking RESP2, so any client (slotrouter,
// go-redis, redis-cli) can use it, and the cluster stops in t.Cleanup. No
// redis-server binary is needed, which is why the quickstart example and
// users' unit tests can run anywhere.
//
// What it models, with the wire texts of Redis 7.0.15:
//
//   - slot ownership split like redis-cli --cluster create; CLUSTER NODES,
//     SLOTS, SHARDS, INFO, KEYSLOT, MYID, COUNTKEYSINSLOT, GETKEYSINSLOT;
//   - the cluster check of getNodeByQuery in its exact order: CLUSTERDOWN
//     Hash slot not served, CROSSSLOT, CLUSTERDOWN The cluster is down,
//     ASK / TRYAGAIN while a slot migrates, ASKING on the target, READONLY
//     reads on replicas, MOVED;
//   - asynchronous replication (optionally lagging), so writes can be lost
//     on failover as on a real cluster;
//   - faults: Kill, Hang/Resume (SIGSTOP-like), Failover (fail? -> fail ->
//     CLUSTERDOWN window -> promotion with a bumped epoch), ManualFailover,
//     Restart (a failed-over master returns as a replica), step-by-step slot
//     migration, DelSlots/AddSlots, and per-node reply latency;
//   - strings, expiry, hashes, lists, sets, SCAN/KEYS, AUTH/HELLO, CLIENT,
//     INFO, ROLE, with Redis's reply bytes and error texts (checked against
//     redis-server by diff_test.go);
//   - MULTI/EXEC/DISCARD and WATCH/UNWATCH: queueing with the cluster
//     check per command, EXECABORT, EXEC's check over every queued key,
//     atomic execution under the node's lock (see multi.go).
//
// Defaults are tuned for fast tests, not for realism: failure detection
// takes NodeTimeout (200 ms) plus half of it, and promotion FailoverDelay
// (500 ms) more; see Options.
//
// Differences from redis-server, on purpose: RESP3 is not offered (HELLO 3
// answers NOPROTO, which clients treat as "use RESP2"); Lua, pub/sub and
// blocking commands are not implemented (unknown-command error); all nodes share one cluster view instead of gossiping, with the
// failure-detection delays played by timers; SCAN and KEYS walk keys in
// sorted order; COMMAND reports names, arity, flags and key positions only;
// a killed node keeps its data for Restart, as if persisted.
//
// Why not github.com/tidwall/resp's Server: its only entry point is
// ListenAndServe(addr), which binds and serves forever. There is no way to
// learn the port picked for ":0", to close the listener and its connections
// (Kill, Close, t.Cleanup), to stop answering without closing (Hang) or to
// delay replies (SetLatency), and each reply is written to the socket on its
// own. So each node runs its own net.Listener and uses resp.Reader to parse
// requests; replies are encoded directly into a per-connection buffer and
// flushed once the pipelined input is drained. No lock is held during
// network I/O; each node has one data lock, and the cluster view is an
// immutable snapshot swapped atomically.
package clustertest
