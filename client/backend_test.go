package client

import (
	"bytes"
	"context"
	"net"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/slotrouter/slotrouter/clustertest"
	"github.com/slotrouter/slotrouter/internal/redistest"
	"github.com/slotrouter/slotrouter/slots"
)

// backend is the part of a cluster the redirect, failover and migration
// tests drive, so the same test runs against clustertest (in process, always
// available) and real redis-server processes (the ground truth clustertest
// imitates). Nodes are named by address, as the client knows them. Every
// method fails the test on error and must be called from the test goroutine.
type backend interface {
	Addrs() []string
	// Masters lists the masters owning slots.
	Masters() []string
	MasterOf(s slots.Slot) string
	ReplicasOf(master string) []string
	// Kill is kill -9; Hang and Resume are SIGSTOP and SIGCONT.
	Kill(addr string)
	Hang(addr string)
	Resume(addr string)
	// WaitPromoted waits until a replica of old owns old's slots and
	// returns it with the moment the promotion was first observable.
	WaitPromoted(ctx context.Context, old string) (string, time.Time)
	// ManualFailover is CLUSTER FAILOVER on replica; it returns once the
	// replica is the master.
	ManualFailover(replica string)
	BeginMigration(s slots.Slot, from, to string)
	MoveKeys(s slots.Slot, from, to string) int
	FinishMigration(s slots.Slot, from, to string)
	// Restart brings a killed node back on its address.
	Restart(addr string)
	// WaitReplicaOf waits until addr replicates master and the cluster
	// agrees on it.
	WaitReplicaOf(ctx context.Context, addr, master string)
}

type backendCase struct {
	name  string
	start func(t *testing.T) backend
}

// backends lists the back ends every Backends test runs against. The redis
// one skips (or fails with REDIS_REQUIRED=1) on its own when redis-server
// is missing, so the clustertest one still runs.
func backends() []backendCase {
	return []backendCase{
		{"clustertest", newClustertestBackend},
		{"redis", newRedisBackend},
	}
}

// ---- clustertest ----

type ctBackend struct {
	t      *testing.T
	c      *clustertest.Cluster
	byAddr map[string]*clustertest.Node
}

func newClustertestBackend(t *testing.T) backend {
	c := clustertest.New(t, clustertest.Options{Masters: 3, Replicas: 1})
	b := &ctBackend{t: t, c: c, byAddr: map[string]*clustertest.Node{}}
	for _, n := range c.Nodes() {
		b.byAddr[n.Addr()] = n
	}
	return b
}

func (b *ctBackend) node(addr string) *clustertest.Node {
	b.t.Helper()
	n := b.byAddr[addr]
	if n == nil {
		b.t.Fatalf("clustertest backend: no node %s", addr)
	}
	return n
}

func (b *ctBackend) check(err error) {
	b.t.Helper()
	if err != nil {
		b.t.Fatal(err)
	}
}

func (b *ctBackend) Addrs() []string { return b.c.Addrs() }

func (b *ctBackend) Masters() []string {
	var out []string
	for _, n := range b.c.Masters() {
		out = append(out, n.Addr())
	}
	return out
}

func (b *ctBackend) MasterOf(s slots.Slot) string {
	b.t.Helper()
	n := b.c.MasterOf(s)
	if n == nil {
		b.t.Fatalf("clustertest backend: slot %d has no owner", s)
	}
	return n.Addr()
}

func (b *ctBackend) ReplicasOf(master string) []string {
	var out []string
	for _, n := range b.c.ReplicasOf(b.node(master)) {
		out = append(out, n.Addr())
	}
	return out
}

func (b *ctBackend) Kill(addr string)   { b.t.Helper(); b.check(b.c.Kill(b.node(addr))) }
func (b *ctBackend) Hang(addr string)   { b.t.Helper(); b.check(b.c.Hang(b.node(addr))) }
func (b *ctBackend) Resume(addr string) { b.t.Helper(); b.check(b.c.Resume(b.node(addr))) }

func (b *ctBackend) Restart(addr string) { b.t.Helper(); b.check(b.c.Restart(b.node(addr))) }

// WaitPromoted polls every millisecond, so the time it reports is within
// about a millisecond of the switch (the same order as redistest's 10 ms
// sampling of the promoted node).
func (b *ctBackend) WaitPromoted(ctx context.Context, old string) (string, time.Time) {
	b.t.Helper()
	o := b.node(old)
	shard := o.Shard()
	for {
		at := time.Now()
		for _, m := range b.c.Masters() {
			if m.Shard() == shard && m != o {
				return m.Addr(), at
			}
		}
		select {
		case <-ctx.Done():
			b.t.Fatalf("clustertest backend: no replica of %s promoted: %v", old, ctx.Err())
		case <-time.After(time.Millisecond):
		}
	}
}

func (b *ctBackend) ManualFailover(replica string) {
	b.t.Helper()
	b.check(b.c.ManualFailover(b.node(replica)))
}

func (b *ctBackend) BeginMigration(s slots.Slot, from, to string) {
	b.t.Helper()
	if got := b.MasterOf(s); got != from {
		b.t.Fatalf("clustertest backend: slot %d is owned by %s, not %s", s, got, from)
	}
	b.check(b.c.BeginMigration(s, b.node(to)))
}

func (b *ctBackend) MoveKeys(s slots.Slot, from, to string) int {
	b.t.Helper()
	total := 0
	for range 10000 {
		n, err := b.c.MoveKeys(s, 100)
		b.check(err)
		if n == 0 {
			return total
		}
		total += n
	}
	b.t.Fatalf("clustertest backend: slot %d keeps having keys to move", s)
	return total
}

func (b *ctBackend) FinishMigration(s slots.Slot, from, to string) {
	b.t.Helper()
	b.check(b.c.FinishMigration(s))
}

func (b *ctBackend) WaitReplicaOf(ctx context.Context, addr, master string) {
	b.t.Helper()
	n, m := b.node(addr), b.node(master)
	for {
		for _, r := range b.c.ReplicasOf(m) {
			if r == n {
				b.check(b.c.WaitReplicated(ctx))
				return
			}
		}
		select {
		case <-ctx.Done():
			b.t.Fatalf("clustertest backend: %s is not a replica of %s: %v", addr, master, ctx.Err())
		case <-time.After(5 * time.Millisecond):
		}
	}
}

// ---- real redis-server ----

type redisBackend struct {
	t      *testing.T
	c      *redistest.Cluster
	byAddr map[string]*redistest.Server
}

func newRedisBackend(t *testing.T) backend {
	c := redistest.StartCluster(t, redistest.ClusterOptions{Masters: 3, Replicas: 1, NodeTimeout: 2 * time.Second})
	b := &redisBackend{t: t, c: c, byAddr: map[string]*redistest.Server{}}
	for _, s := range c.Servers() {
		b.byAddr[s.Addr] = s
	}
	return b
}

func (b *redisBackend) srv(addr string) *redistest.Server {
	b.t.Helper()
	s := b.byAddr[addr]
	if s == nil {
		b.t.Fatalf("redis backend: no node %s", addr)
	}
	return s
}

func (b *redisBackend) Addrs() []string { return b.c.Addrs() }

func (b *redisBackend) Masters() []string {
	var out []string
	for _, s := range b.c.Masters() {
		out = append(out, s.Addr)
	}
	return out
}

func (b *redisBackend) MasterOf(s slots.Slot) string { return b.c.MasterOf(int(s)).Addr }

func (b *redisBackend) ReplicasOf(master string) []string {
	var out []string
	for _, s := range b.c.ReplicasOf(b.srv(master)) {
		out = append(out, s.Addr)
	}
	return out
}

func (b *redisBackend) Kill(addr string)    { b.srv(addr).Kill() }
func (b *redisBackend) Hang(addr string)    { b.srv(addr).Stop() }
func (b *redisBackend) Resume(addr string)  { b.srv(addr).Cont() }
func (b *redisBackend) Restart(addr string) { b.srv(addr).Restart(b.t) }

func (b *redisBackend) WaitPromoted(ctx context.Context, old string) (string, time.Time) {
	b.t.Helper()
	s, at := b.c.WaitPromoted(ctx, b.srv(old))
	return s.Addr, at
}

func (b *redisBackend) ManualFailover(replica string) { b.c.ManualFailover(b.srv(replica)) }

func (b *redisBackend) BeginMigration(s slots.Slot, from, to string) {
	b.c.BeginMigration(int(s), b.srv(from), b.srv(to))
}

func (b *redisBackend) MoveKeys(s slots.Slot, from, to string) int {
	return b.c.MoveKeys(int(s), b.srv(from), b.srv(to))
}

func (b *redisBackend) FinishMigration(s slots.Slot, from, to string) {
	b.c.FinishMigration(int(s), b.srv(from), b.srv(to))
}

func (b *redisBackend) WaitReplicaOf(ctx context.Context, addr, master string) {
	b.t.Helper()
	for {
		b.c.WaitOK(ctx)
		for _, r := range b.ReplicasOf(master) {
			if r == addr {
				return
			}
		}
		select {
		case <-ctx.Done():
			b.t.Fatalf("redis backend: %s is not a replica of %s: %v", addr, master, ctx.Err())
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// ---- client side: where did commands go? ----

// sentCounter counts, per node address, the commands of a few kinds the
// client wrote to its sockets. Counting on the client side works the same
// for both back ends and, unlike server statistics, is not blurred by the
// client's own discovery traffic or by replication.
type sentCounter struct {
	mu       sync.Mutex
	patterns map[string][]byte
	n        map[string]map[string]int
}

func newSentCounter(names ...string) *sentCounter {
	sc := &sentCounter{patterns: map[string][]byte{}, n: map[string]map[string]int{}}
	for _, name := range names {
		// "\n$3\r\nGET\r\n": an argument whose whole text is the name.
		// The tests never use a command name as a key or value.
		sc.patterns[name] = []byte("\n$" + strconv.Itoa(len(name)) + "\r\n" + name + "\r\n")
	}
	return sc
}

func (sc *sentCounter) dial(ctx context.Context, network, addr string) (net.Conn, error) {
	var d net.Dialer
	conn, err := d.DialContext(ctx, network, addr)
	if err != nil {
		return nil, err
	}
	return &countingConn{Conn: conn, sc: sc, addr: addr}, nil
}

// count returns how many name commands were written to addr.
func (sc *sentCounter) count(addr, name string) int {
	sc.mu.Lock()
	defer sc.mu.Unlock()
	return sc.n[addr][name]
}

// observe scans p, prefixed by the tail kept from the previous write on
// the same connection, so a command split across writes still counts once
// (the tail is shorter than any pattern, so no match lies wholly in it).
func (sc *sentCounter) observe(addr string, tail *[]byte, p []byte) {
	sc.mu.Lock()
	defer sc.mu.Unlock()
	buf := append(append([]byte(nil), *tail...), p...)
	longest := 0
	for name, pat := range sc.patterns {
		if k := bytes.Count(buf, pat); k > 0 {
			if sc.n[addr] == nil {
				sc.n[addr] = map[string]int{}
			}
			sc.n[addr][name] += k
		}
		longest = max(longest, len(pat))
	}
	keep := min(len(buf), longest-1)
	*tail = append((*tail)[:0], buf[len(buf)-keep:]...)
}

type countingConn struct {
	net.Conn
	sc   *sentCounter
	addr string
	tail []byte // guarded by sc.mu
}

func (c *countingConn) Write(p []byte) (int, error) {
	c.sc.observe(c.addr, &c.tail, p)
	return c.Conn.Write(p)
}

// newBackendClient connects a client to be through a sentCounter.
func newBackendClient(t *testing.T, be backend, o Options) (*Client, *sentCounter) {
	t.Helper()
	sc := newSentCounter("GET", "SET", "MGET", "MSET")
	o.Addrs = be.Addrs()
	o.Dialer = sc.dial
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := New(ctx, o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c, sc
}

// bkTag returns a hash tag whose slot is s.
func bkTag(t testing.TB, s slots.Slot) string {
	t.Helper()
	for i := range 1 << 22 {
		tag := "bk" + strconv.Itoa(i)
		if slots.Of(tag) == s {
			return tag
		}
	}
	t.Fatalf("no hash tag found for slot %d", s)
	return ""
}
