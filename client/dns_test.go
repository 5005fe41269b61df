package client

import (
	"context"
	"errors"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/slotrouter/slotrouter/internal/dnstest"
	"github.com/slotrouter/slotrouter/internal/redistest"
	"github.com/slotrouter/slotrouter/internal/resolve"
	"github.com/slotrouter/slotrouter/slots"
	"github.com/slotrouter/slotrouter/topology"
)

const dnsTTL = time.Second

// movePort makes s listen on port instead of its own (CONFIG SET port, a
// runtime setting since 7.0), so two nodes on different 127.0.0.x addresses
// share a port, as the nodes behind one Redis Enterprise endpoint do. The
// harness's handle then points at the old port: use the returned client.
func movePort(t *testing.T, s *redistest.Server, port int) *redis.Client {
	t.Helper()
	mustDoServer(t, s, "CONFIG", "SET", "port", strconv.Itoa(port))
	cl := redis.NewClient(&redis.Options{Addr: net.JoinHostPort(s.Host, strconv.Itoa(port))})
	t.Cleanup(func() { _ = cl.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := cl.Ping(ctx).Err(); err != nil {
		t.Fatalf("%s on port %d: %v", s.Name, port, err)
	}
	return cl
}

// A name re-pointed after its node died is followed within TTL + 1 s, and
// a name re-pointed while its old node is alive is followed at the next TTL
// check, with the old connection drained.
func TestDNSFollowsRepointedName(t *testing.T) {
	redistest.Require(t)
	dns := dnstest.Start(t, dnstest.Zone{"node1.cluster.test": {"127.0.0.2"}})
	dns.SetTTL(dnsTTL)
	a := redistest.StartServer(t, redistest.ServerOptions{Host: "127.0.0.2"})
	b := redistest.StartServer(t, redistest.ServerOptions{Host: "127.0.0.3", ReplicaOf: a.Addr})
	spare := redistest.StartServer(t, redistest.ServerOptions{Host: "127.0.0.4"})
	idA, idB, idSpare := runID(t, a), runID(t, b), runID(t, spare)
	port := a.Port
	bc := movePort(t, b, port)
	sc := movePort(t, spare, port)

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	endpoint := net.JoinHostPort("node1.cluster.test", strconv.Itoa(port))
	c, err := New(ctx, Options{
		Addrs:      []string{endpoint},
		Resolver:   resolve.NewNetResolver(dns.Addr),
		DNSTTL:     dnsTTL,
		ClientName: "dns-test",
	})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	w := startWriter(t, c, 2)
	w.waitAck(t, idA, time.Time{}, 10*time.Second)

	// The node dies; its name is re-pointed at the promoted replica.
	a.Kill()
	if err := bc.Do(ctx, "REPLICAOF", "NO", "ONE").Err(); err != nil {
		t.Fatal(err)
	}
	tRepoint := time.Now()
	if err := dns.Set("node1.cluster.test", "127.0.0.3"); err != nil {
		t.Fatal(err)
	}
	first := w.waitAck(t, idB, tRepoint, 10*time.Second)
	followDead := first.Sub(tRepoint)
	if followDead > dnsTTL+time.Second {
		t.Errorf("followed the re-pointed name of a dead node after %v, want <= %v", followDead, dnsTTL+time.Second)
	}

	// Now re-point the name while its node still serves: only the TTL
	// check can notice.
	tRepoint2 := time.Now()
	if err := dns.Set("node1.cluster.test", "127.0.0.4"); err != nil {
		t.Fatal(err)
	}
	moved := w.waitAck(t, idSpare, tRepoint2, 10*time.Second)
	followLive := moved.Sub(tRepoint2)
	if followLive > dnsTTL+time.Second {
		t.Errorf("followed the re-pointed name of a live node after %v, want <= %v", followLive, dnsTTL+time.Second)
	}
	waitFor(t, 5*time.Second, "the old connection to be drained", func() error {
		list, err := bc.ClientList(ctx).Result()
		if err != nil {
			return err
		}
		if strings.Contains(list, "name=dns-test ") {
			return notYet("client still connected to the old address")
		}
		return nil
	})
	w.waitAck(t, idSpare, moved.Add(200*time.Millisecond), 5*time.Second)
	w.halt()
	acks := w.snapshot()
	for _, ak := range acks {
		if ak.err == nil && ak.runID == idB && ak.start.After(moved) {
			t.Errorf("write %s sent after the move still ran on the old address", ak.key)
		}
	}
	if _, err := sc.Ping(ctx).Result(); err != nil {
		t.Fatal(err)
	}
	ok, failed := stats(acks)
	t.Logf("dns: dead node's name re-pointed -> first write on the new address %v; live node's name re-pointed -> %v (TTL %v); %d writes acknowledged, %d failed",
		followDead.Round(time.Millisecond), followLive.Round(time.Millisecond), dnsTTL, ok, failed)
}

// fixedResolver is a pluggable Resolver answering from a table, in order.
type fixedResolver struct {
	mu      sync.Mutex
	answers map[string][]string
	asked   int
}

func (r *fixedResolver) LookupHost(_ context.Context, host string) ([]string, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.asked++
	if a, ok := r.answers[host]; ok {
		return slices.Clone(a), nil
	}
	return nil, &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}
}

// Every address a name returns is tried: the first one refuses, the second
// serves. A custom Resolver is used for all of it.
func TestDNSTriesEveryAddress(t *testing.T) {
	redistest.Require(t)
	srv := redistest.StartServer(t, redistest.ServerOptions{Host: "127.0.0.2"})
	res := &fixedResolver{answers: map[string][]string{"db.example.test": {"127.0.0.5", "127.0.0.2"}}}
	var mu sync.Mutex
	var dialled []string
	dialer := func(ctx context.Context, network, addr string) (net.Conn, error) {
		mu.Lock()
		dialled = append(dialled, addr)
		mu.Unlock()
		var d net.Dialer
		return d.DialContext(ctx, network, addr)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := New(ctx, Options{
		Addrs:    []string{net.JoinHostPort("db.example.test", strconv.Itoa(srv.Port))},
		Resolver: res, Dialer: dialer,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Do(ctx, "SET", "k", "v").Err(); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	got := slices.Clone(dialled)
	mu.Unlock()
	dead := net.JoinHostPort("127.0.0.5", strconv.Itoa(srv.Port))
	if !slices.Contains(got, dead) || !slices.Contains(got, srv.Addr) {
		t.Errorf("dialled %v, want both %s and %s", got, dead, srv.Addr)
	}

}

// A cluster announcing hostnames (cluster-preferred-endpoint-type
// hostname) is routed by those names, resolved by our resolver: in the
// view, in MOVED replies and for every connection.
func TestDNSClusterHostnames(t *testing.T) {
	redistest.Require(t)
	const n = 6
	zone := dnstest.Zone{}
	hosts := make([]string, n)
	names := make([]string, n)
	for i := range n {
		hosts[i] = "127.0.0." + strconv.Itoa(20+i)
		names[i] = "node" + strconv.Itoa(i) + ".cluster.test"
		zone[names[i]] = []string{hosts[i]}
	}
	dns := dnstest.Start(t, zone)
	dns.SetTTL(dnsTTL)
	cl := redistest.StartCluster(t, redistest.ClusterOptions{
		Masters: 3, Replicas: 1, Hosts: hosts, Hostnames: names, PreferredEndpoint: "hostname",
	})
	seed := net.JoinHostPort(names[0], strconv.Itoa(cl.Servers()[0].Port))
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	c, err := New(ctx, Options{Addrs: []string{seed}, Resolver: resolve.NewNetResolver(dns.Addr), DNSTTL: dnsTTL})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for _, sh := range c.Topology().Shards() {
		host, _, _ := net.SplitHostPort(sh.Master.Addr)
		if !strings.HasSuffix(host, ".cluster.test") {
			t.Errorf("master %s is not addressed by its hostname", sh.Master.Addr)
		}
	}
	for i := range 300 {
		if err := c.Do(ctx, "SET", "k"+strconv.Itoa(i), i).Err(); err != nil {
			t.Fatalf("SET k%d: %v", i, err)
		}
	}

	// Move a slot behind the client's back: the MOVED names a host.
	masters := cl.Masters()
	src, dst := masters[0], masters[1]
	key := ""
	for i := 0; key == ""; i++ {
		k := "moved" + strconv.Itoa(i)
		if m := cl.MasterOf(int(slots.Of(k))); m != nil && m.ID == src.ID {
			key = k
		}
	}
	slot := int(slots.Of(key))
	cl.MigrateSlot(slot, src, dst)
	movedBefore := infoOf(t, src, "errorstats")["errorstat_MOVED"]
	if err := c.Do(ctx, "SET", key, "after").Err(); err != nil {
		t.Fatalf("SET after the migration: %v", err)
	}
	movedAfter := infoOf(t, src, "errorstats")["errorstat_MOVED"]
	if movedAfter == movedBefore {
		t.Errorf("no MOVED was sent (errorstat %q), the test proves nothing", movedAfter)
	}
	v, err := dst.Do(ctx, "GET", key)
	if err != nil || v != "after" {
		t.Errorf("key on the new owner: %v, %v", v, err)
	}
	for _, name := range names[:3] {
		if dns.Queries(name) == 0 {
			t.Errorf("%s was never resolved through the resolver", name)
		}
	}
	t.Logf("dns: cluster by hostnames, MOVED %s -> %s followed; errorstat_MOVED %s", src.Name, dst.Name, movedAfter)
}

// fakeNode answers every command with one fixed RESP reply; enough to play
// a node that, after its name was re-pointed, is not the one we meant.
func fakeNode(t *testing.T, addr, reply string) net.Listener {
	t.Helper()
	ln, err := net.Listen("tcp4", addr)
	if err != nil {
		t.Skipf("cannot listen on %s: %v", addr, err)
	}
	t.Cleanup(func() { _ = ln.Close() })
	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer conn.Close()
				rd := newRespReader(conn)
				for {
					if _, err := rd.readReply(); err != nil {
						return
					}
					if _, err := conn.Write([]byte(reply)); err != nil {
						return
					}
				}
			}()
		}
	}()
	return ln
}

// staticSource is a one-shard view naming the master by addr.
type staticSource struct{ addr string }

func (s staticSource) Discover(context.Context, *topology.Snapshot, func(string) bool) (*topology.Snapshot, error) {
	m := &topology.Node{ID: "m", Addr: s.addr, Role: topology.RoleMaster, Flags: topology.Master, Connected: true}
	return topology.NewSnapshot([]topology.Shard{{Master: m, Ranges: []topology.Range{{Start: 0, End: slots.Count - 1}}}}), nil
}

// A MOVED naming the very name:port we are connected to means the name now
// points elsewhere: the client re-resolves and re-dials instead of looping,
// even though the cached answer is still young.
func TestDNSNameMovedRedials(t *testing.T) {
	old := fakeNode(t, "127.0.0.2:0", "")
	port := old.Addr().(*net.TCPAddr).Port
	name := net.JoinHostPort("db.example.test", strconv.Itoa(port))
	_ = old.Close()
	// 7629 is the slot of "k": a redirect for another slot is refused.
	fakeNode(t, net.JoinHostPort("127.0.0.2", strconv.Itoa(port)), "-MOVED 7629 "+name+"\r\n")
	fakeNode(t, net.JoinHostPort("127.0.0.3", strconv.Itoa(port)), "+OK\r\n")
	res := &fixedResolver{answers: map[string][]string{"db.example.test": {"127.0.0.2"}}}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := New(ctx, Options{Source: staticSource{addr: name}, Resolver: res})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	// Connect while the name still points at the old node.
	if err := c.DoOn(ctx, name, "PING").Err(); !errors.Is(err, ErrMoved) {
		t.Fatalf("old node: %v", err)
	}
	res.mu.Lock()
	res.answers["db.example.test"] = []string{"127.0.0.3"}
	res.mu.Unlock()
	if err := c.Do(ctx, "SET", "k", "v").Err(); err != nil {
		t.Fatalf("after the name moved: %v", err)
	}
}
