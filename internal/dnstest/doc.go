// Package dnstest is a tiny authoritative DNS server for tests of DNS-named nodes: it serves
// A records on 127.0.0.1 (UDP, and TCP on the same port when it can be bound) with a short TTL
// (1 s by default), lets a test re-point a name while clients run (Set), and counts the A
// queries per name so that tests can check caching. It exists because re-resolution logic
// cannot be tested against the system resolver without touching /etc/hosts or a real zone.
//
// Use it with resolve.NewNetResolver(server.Addr). There is no runnable Example: Start needs
// the test's testing.TB for cleanup.
package dnstest
