// Package live is the "write at a steady rate, print a line a second" loop
// that the single-shard examples (role-probe, sentinel, dns-failover) share,
// so each example's main.go keeps only what is specific to its deployment
// shape: the flags and client.Options that pick it, and what its status line
// says about the master in use. The cluster example (failover) counts per
// shard and shares only Stamp, PrintChanges and Context.
package live
