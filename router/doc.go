// Package router decides where every Redis command goes and what to do with
// every reply or failure; it never touches a socket.
//
// The split mirrors net/http: router is the policy (like http.Client),
// package client carries the bytes (like http.Transport), and a Source is
// the seam through which views of the deployment arrive (Redis Cluster
// discovery, Sentinel, role probes). The current view lives behind an atomic
// pointer as a 16384-entry array, so routing a command is one index and no
// lock; refreshes are single-flighted, rate-limited and run in the
// background, polling fast while a node is suspect or a slot has no routable
// owner, so a promoted replica is used within about one DegradedInterval of
// the survivors announcing it. Discovery never waits on a suspect node or on
// one the last view flags failed, and a master flagged fail is never a
// target. A retry that is backing off goes at once when a view that differs
// from the last one is installed (Wait), and the client abandons retry-safe
// calls stuck on a suspect node as soon as the slot has another owner
// (Changed, Serves).
//
// The policy for replies and failures:
//
//	MOVED slot addr          patch the slot at once, follow, refresh in the background
//	ASK slot addr            ASKING + the command on the target; the map is unchanged
//	TRYAGAIN, CLUSTERDOWN,   back off (jittered, growing) and retry, refreshing;
//	LOADING, MASTERDOWN      bounded by the caller's context
//	READONLY                 mark the node suspect, refresh, re-route, retry
//	refused/reset/timeout    mark the node suspect, refresh from the other nodes,
//	                         retry on the new owner (if the command was surely not
//	                         executed, or is read-only or idempotent)
//	no owner for the slot    refresh and wait for a new view, bounded by the context
//	redirect loops           at most MaxRedirects hops; the error names the chain
package router
