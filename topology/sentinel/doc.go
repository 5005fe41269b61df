// Package sentinel is the router's topology source for a master/replica set managed by Redis
// Sentinel: it turns what the Sentinels say into a topology.Snapshot with one shard that owns
// all 16384 slots (the master plus its healthy replicas).
//
// Why not simply trust get-master-addr-by-name: mid-failover a Sentinel may name a node that is
// dead or still a replica, and after a failover the restarted old master runs as master for
// about 10 s until Sentinel reconfigures it. So Discover
//
//   - asks the Sentinels in order, starting with the last one that gave a verified answer;
//   - reads SENTINEL get-master-addr-by-name (the port is a bulk string; a null reply means the
//     name is unknown: *UnknownMasterError when every answering Sentinel says so);
//   - checks the named node with ROLE through NodeExec and uses it only if it says master;
//     otherwise it tries the next Sentinel, makes Attempts passes, and returns *UnverifiedError.
//     A node is master only when a Sentinel names it AND it says so itself: role:master from a
//     node no Sentinel names is never trusted;
//   - refuses a named master that one of its listed replicas supersedes: that replica says
//     master too and its master_replid2 is the named one's master_replid (it was promoted out
//     of the named one's history, and the Sentinels are behind). When no Sentinel names a
//     master that passes, Discover returns a view with no master, so writes wait rather than
//     go to a node about to be converted and resynced (*SupersededError is logged);
//   - lists replicas with SENTINEL replicas, dropping s_down, o_down and disconnected ones
//     (Sentinel reports a stale master-link-status ok for dead replicas);
//   - learns other Sentinels from SENTINEL sentinels and follows them too.
//
// Events: with Options.Subscribe set, one goroutine per known Sentinel subscribes to
// +switch-master, +sdown/-sdown, +odown/-odown, +slave, +sentinel and +reboot, re-subscribing
// with back-off, and signals Changed for events about the monitored master. Every Reconcile
// (default 1 s) a Sentinel is asked again and Changed is signalled if its answer differs from
// the last Discover result, which covers a missed event and a Discover that failed mid-failover.
// Close stops all of it.
//
// Credentials: the Sentinels and the data nodes usually have different passwords, so the
// client passes two functions: Exec (Sentinels) and NodeExec (data nodes, ROLE). Both do their
// own authentication; this package never opens a socket.
package sentinel
