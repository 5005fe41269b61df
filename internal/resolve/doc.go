// Package resolve is the client's DNS handling for nodes named by host name (Redis
// Enterprise style endpoints, Kubernetes services, cluster nodes announcing hostnames).
//
// Names behind such endpoints are re-pointed on failover, so addresses must not be pinned:
// Cache serves every address of a name for a TTL (default 60 s, as the Go resolver does not
// expose record TTLs), re-resolves on demand after a connection failure (Refresh, rate-limited
// by MinRefresh), keeps the last good answer when DNS fails, and reports a name whose address
// set changed (OnChange) so the client can drain connections to addresses that left.
// Concurrent lookups of one name share one query.
//
// NewNetResolver builds a pure-Go net.Resolver that asks one given DNS server, used by tests
// with internal/dnstest.
package resolve
