// Package proxy serves the Redis protocol (RESP2 and RESP3) to any client
// and carries every command through a client.Client, so an application
// that knows one Redis address (redis-cli, a non-cluster client in any
// language, go-redis's typed API) gets slotrouter's routing and failover
// handling for a Redis Cluster, a Sentinel-managed master, role-checked
// endpoints or DNS-named nodes. Its clients see one ordinary server that
// never fails over.
//
// Two ways in: Serve accepts connections on a listener (the binary in
// examples/proxy), and Server.DialContext is a dialer for go-redis
// (redis.Options.Dialer) that connects in memory, with no socket:
//
//	srv := proxy.New(c, proxy.Options{})
//	rdb := redis.NewClient(&redis.Options{Dialer: srv.DialContext})
//	err := rdb.HSet(ctx, "user:42", map[string]any{"name": "ada"}).Err()
//
// Each connection is a session, run by one goroutine: requests a client
// pipelines are read as one batch, the ordinary commands of a batch go to
// the client as one client.Pipeline (one round per node), and the replies
// are written in order. Connection state lives in the session, never on a
// backend connection: HELLO, AUTH (the proxy's own credentials), SELECT 0,
// CLIENT SETNAME/GETNAME/ID, PING, ECHO, QUIT and RESET are answered
// locally; CLUSTER, READONLY, READWRITE and ASKING are refused, since
// the session's client must not need them.
//
// MULTI/EXEC/WATCH and SUBSCRIBE sessions keep their protocol here and
// run on the client's transactions and subscriptions through two small
// seams (txBackend in tx.go, subBackend in pubsub.go; the adapters are
// tx_client.go and pubsub_client.go). A WATCH holds a client.Watch for the
// session until EXEC; when the watch is lost before EXEC (its slot moved,
// its master failed), EXEC answers a null reply, as for a changed key, so
// the client's retry loop runs again. A subscription's interruption
// reports (client.Gap) have no RESP form: they are logged and skipped.
//
// Limits follow redis-server's: its request size limits and protocol
// errors (a malformed request is answered and the connection closed), its
// maxclients reply, and a client that does not read its replies is
// disconnected after Options.WriteTimeout. None of these touch another
// session.
package proxy
