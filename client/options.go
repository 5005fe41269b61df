package client

import (
	"context"
	"crypto/tls"
	"log/slog"
	"net"
	"time"

	"github.com/slotrouter/slotrouter/router"
	"github.com/slotrouter/slotrouter/topology"
)

// ReadPolicy chooses the node for read-only commands; see router.ReadPolicy.
type ReadPolicy = router.ReadPolicy

// Read policies.
const (
	MasterOnly    = router.MasterOnly
	PreferReplica = router.PreferReplica
	ReplicaOnly   = router.ReplicaOnly
	Nearest       = router.Nearest
	Random        = router.Random
)

// Options configure a Client. The zero value of every field is usable; only
// Addrs (or Source) is required.
type Options struct {
	// Addrs are seed nodes, "host:port". Names are re-resolved on every
	// discovery round, so seeds may be DNS names that move.
	Addrs []string

	// Username and Password authenticate every connection (ACL when
	// Username is set, AUTH <password> otherwise).
	Username, Password string
	// TLS enables TLS. Its ServerName, when empty, is set per node to the
	// host the node is dialled by, so every node is verified by its own name.
	TLS *tls.Config
	// Dialer dials connections. Default: a net.Dialer.
	Dialer func(ctx context.Context, network, addr string) (net.Conn, error)
	// ClientName is sent with CLIENT SETNAME on every connection.
	ClientName string
	// Protocol is the RESP version every connection speaks: 2 (the
	// default) or 3 (HELLO 3 at dial time, so maps, sets, doubles and
	// booleans come back as such). Do("HELLO") is refused: it would switch
	// one shared connection only.
	Protocol int
	// DB is the database every connection SELECTs at dial time, for
	// Sentinel and other non-cluster deployments (Redis Cluster has only
	// database 0, and refuses SELECT). Default 0.
	DB int

	// ReadPolicy chooses nodes for read-only commands. Default MasterOnly.
	ReadPolicy ReadPolicy
	// MaxRedirects bounds MOVED/ASK hops per command. Default 16.
	MaxRedirects int
	// RetryBudget bounds retries of a call whose context has no deadline.
	// Default 15s. A call with a deadline retries until the deadline.
	RetryBudget time.Duration
	// DialTimeout bounds one connection attempt. Default 1s.
	DialTimeout time.Duration
	// HealthTimeout closes a connection whose oldest request has had no
	// reply for this long, so a hung node is detected even when callers
	// have no deadlines. Default 2s.
	HealthTimeout time.Duration
	// RefreshInterval is the cheap periodic topology check. Default: half
	// the cluster's cluster-node-timeout (read with CONFIG GET), within
	// 1s..10s, or 5s when it cannot be read.
	RefreshInterval time.Duration
	// ConnsPerNode is how many multiplexed connections each node gets.
	// Default 1: one pipelined connection serves any number of callers.
	ConnsPerNode int
	// MaxReplyBytes caps what one reply may hold in memory: its payload
	// bytes plus one Result (72 bytes) per element, so a reply of many tiny
	// elements is never counted for less than it may cost (an array of short
	// strings, kept packed, costs less). Over it the call fails with
	// ErrReplyTooLarge and the connection is closed. Default
	// DefaultMaxReplyBytes (512 MB, Redis's proto-max-bulk-len, so any
	// value the server can store can be read); negative means no cap.
	MaxReplyBytes int64
	// MaxInflight bounds the requests queued or awaiting their reply on one
	// node, and MaxInflightBytes their encoded size. A call over the bound
	// waits for room, at most until its ctx ends, and then was never sent:
	// a slow node is not fed work nobody waits for any more. Defaults
	// DefaultMaxInflight (10,000) and DefaultMaxInflightBytes (64 MB); a
	// single request larger than the bound waits for the node to be empty.
	MaxInflight      int
	MaxInflightBytes int64

	// RefuseCrossSlot makes a multi-key command whose keys hash to several
	// slots (MGET, MSET, DEL, UNLINK, EXISTS, TOUCH) fail with CROSSSLOT
	// (errors.Is(err, ErrCrossSlot)), as the server would, instead of being
	// split into one command per slot. Default false: split, which is not
	// atomic across slots.
	RefuseCrossSlot bool

	// Source replaces Redis Cluster discovery: Sentinel, role probes, or
	// your own. Addrs are then only used by your source.
	Source router.Source

	// Sentinel, when set, finds the master through Redis Sentinel; Addrs
	// is then ignored. See SentinelOptions.
	Sentinel *SentinelOptions
	// RoleProbe, when set, treats Addrs as one master and its replicas and
	// sends writes to whichever says it is master. Without it, Addrs that
	// turn out not to be cluster nodes are role-probed with the defaults.
	RoleProbe *RoleProbeOptions
	// Resolver looks up host names (Addrs, Sentinels, nodes they name,
	// cluster hostnames, MOVED targets) at dial time; every address a name
	// returns is tried, and Dialer then gets ip:port. Default
	// net.DefaultResolver.
	Resolver Resolver
	// DNSTTL bounds how long a name's answer is used before it is asked
	// again; connections to addresses the new answer lacks are drained.
	// Names are also re-resolved after every connection failure. Default 60s.
	DNSTTL time.Duration

	// PubSub configures subscriptions (Subscribe, PSubscribe, SSubscribe):
	// buffer, health pings, protocol. See PubSubOptions.
	PubSub PubSubOptions

	// Cache, when set, enables DoCache: client-side caching kept correct
	// by server-assisted invalidation (RESP3 CLIENT TRACKING on a separate
	// connection per node). Nil: no caching, and no cost.
	Cache *CacheOptions

	// OnTopologyChange is called with every change between views.
	OnTopologyChange func([]topology.Change)
	// Logger receives topology changes and failures. Default: discard.
	Logger *slog.Logger
}

func (o *Options) setDefaults() {
	if o.DialTimeout <= 0 {
		o.DialTimeout = time.Second
	}
	if o.HealthTimeout <= 0 {
		o.HealthTimeout = 2 * time.Second
	}
	if o.ConnsPerNode <= 0 {
		o.ConnsPerNode = 1
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
}

type idempotentKey struct{}

// Idempotent marks calls made with the returned context as safe to run
// twice, so they are retried even after a failure that leaves it unknown
// whether the server ran them (a timeout or a connection lost after the
// command was sent). Read-only commands are always retried; writes only
// when marked.
func Idempotent(ctx context.Context) context.Context {
	return context.WithValue(ctx, idempotentKey{}, true)
}

func isIdempotent(ctx context.Context) bool {
	v, _ := ctx.Value(idempotentKey{}).(bool)
	return v
}
