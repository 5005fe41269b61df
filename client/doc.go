// Package client is slotrouter's public face: one Client per deployment,
// commands with Do, batches with Pipeline.
//
//	c, err := client.New(ctx, client.Options{Addrs: []string{"10.0.0.1:7000"}})
//	defer c.Close()
//	err = c.Do(ctx, "SET", "user:{42}:name", "ada").Err()
//	name, err := c.Do(ctx, "GET", "user:{42}:name").Text()
//
// The package carries bytes: it keeps one implicitly pipelined connection
// per node (concurrent callers' commands are coalesced into shared writes and
// one reader matches replies in order), encodes arguments straight into
// pooled buffers, and hands every reply or failure to package router, which
// decides what happens next. Blocking commands (BLPOP, XREAD BLOCK, WAIT)
// get dedicated connections so they never stall others, and so do
// subscriptions (Subscribe, PSubscribe, SSubscribe), which follow their
// channels' nodes through failovers and migrations and report each
// interruption as a Gap.
//
// Every call is bounded by its context: Do returns by the deadline even when
// a node hangs. Failures follow package router's policy: MOVED, ASK,
// TRYAGAIN, CLUSTERDOWN, LOADING, MASTERDOWN and refused dials mean the
// command did not run, so it is retried whatever it is; a connection lost
// after the command was written is retried only for read-only commands and
// calls made with Idempotent(ctx). Such a retry-safe call waiting on a node
// that stopped answering (a hung master) is given up and resent as soon as
// the cluster promotes a new owner, rather than at its deadline. Replies are Results: Err, Text, Int64, Bytes, Slice and
// friends convert them, and IsNil (or errors.Is(err, ErrNil)) tells a nil
// reply from an empty string. Error replies match their kind:
// errors.Is(err, ErrClusterDown), errors.As(err, &*Error). An array of short
// strings (LRANGE, MGET, HGETALL, KEYS) is kept packed, its elements' bytes
// in one buffer (packed.go): Strings slices it, Len and All read it without
// allocating, and Results builds a []Result on each call.
//
// Commands without one slot go where the server's command tips say
// (fanout.go): DBSIZE, KEYS, FLUSHALL, SCRIPT EXISTS and the like run on
// every master, CONFIG SET and SCRIPT LOAD on every node, and the replies
// are merged (summed, ANDed, concatenated, or kept node by node, see
// Result.Nodes); MGET, MSET, DEL, UNLINK, EXISTS and TOUCH across slots are
// split into one command per slot, not atomically (multikey.go). Scan walks
// every master's keyspace through failovers and migrations (scan.go).
package client
