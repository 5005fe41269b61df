package client

import (
	"context"
	"errors"
	"net"
	"strconv"
	"testing"
	"time"

	"github.com/slotrouter/slotrouter/internal/dnstest"
	"github.com/slotrouter/slotrouter/internal/redistest"
	"github.com/slotrouter/slotrouter/internal/resolve"
)

// numsubOn is how many clients addr's server counts on ch.
func numsubOn(t *testing.T, s *redistest.Server, sharded bool, ch string) int64 {
	t.Helper()
	sub := "NUMSUB"
	if sharded {
		sub = "SHARDNUMSUB"
	}
	v, err := s.Do(context.Background(), "PUBSUB", sub, ch)
	if err != nil {
		t.Fatal(err)
	}
	arr, _ := v.([]any)
	if len(arr) != 2 {
		t.Fatalf("PUBSUB %s %s: %v", sub, ch, v)
	}
	n, _ := arr[1].(int64)
	return n
}

// deployLoads subscribes one classic and one sharded channel (each on its
// own Subscription) and publishes on both at 200/s.
func deployLoads(t *testing.T, c *Client) (classic, sharded *psLoad) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cs, err := c.Subscribe(ctx, "classic")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cs.Close() })
	ss, err := c.SSubscribe(ctx, "sharded")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ss.Close() })
	classic = startPSLoad(t, c, cs, false, []string{"classic"})
	sharded = startPSLoad(t, c, ss, true, []string{"sharded"})
	classic.waitRecv(t, "classic", time.Now(), 5*time.Second)
	sharded.waitRecv(t, "sharded", time.Now(), 5*time.Second)
	return classic, sharded
}

// Through Sentinel: kill -9 of the master; both subscriptions follow
// +switch-master to the new master within 1 s, report the interruption,
// and lose nothing outside it.
func TestPubSubSentinelFailover(t *testing.T) {
	redistest.Require(t)
	redistest.RequireSentinel(t)
	g := redistest.StartSentinelGroup(t, redistest.SentinelOptions{
		Replicas: 1, Sentinels: 3, DownAfter: 1500 * time.Millisecond, FailoverTimeout: 5 * time.Second,
	})
	old := g.Master()
	sw := watchSwitch(t, g.SentinelAddrs(), "")
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	c, err := New(ctx, Options{Sentinel: &SentinelOptions{MasterName: g.MasterName(), Addrs: g.SentinelAddrs()}})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	classic, sharded := deployLoads(t, c)

	killAt := time.Now()
	old.Kill()
	switchAt, newAddr := sw.wait(t, 60*time.Second)
	for _, l := range []*psLoad{classic, sharded} {
		for ch := range l.recv {
			resumed := l.waitRecv(t, ch, switchAt, 10*time.Second)
			l.waitRecv(t, ch, resumed.Add(500*time.Millisecond), 5*time.Second)
			l.halt()
			t.Logf("sentinel %s: kill -9 -> +switch-master %v; +switch-master -> first message %v",
				ch, switchAt.Sub(killAt).Round(time.Millisecond), resumed.Sub(switchAt).Round(time.Millisecond))
			if d := resumed.Sub(switchAt); d > time.Second {
				t.Errorf("%s: messages flowed again %v after +switch-master, want <= 1s", ch, d)
			}
			gaps := checkGaps(t, l, ch)
			if len(gaps) == 0 || gaps[0].From != old.Addr || gaps[0].To != newAddr {
				t.Errorf("%s: want one reported gap from %s to %s, got %d", ch, old.Addr, newAddr, len(gaps))
			}
		}
	}
}

// Through role probes, with the old master alive: a replica is promoted by
// hand and the old master made its replica. Nothing breaks a connection;
// the subscriptions move because the router's view names a new master.
func TestPubSubRoleProbeSwitch(t *testing.T) {
	redistest.Require(t)
	const interval = 200 * time.Millisecond
	a := redistest.StartServer(t, redistest.ServerOptions{})
	b := redistest.StartServer(t, redistest.ServerOptions{ReplicaOf: a.Addr})
	redistest.WaitLinked(t, a.Addr, b)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := New(ctx, Options{Addrs: []string{a.Addr, b.Addr}, RoleProbe: &RoleProbeOptions{Interval: interval}})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	classic, sharded := deployLoads(t, c)
	if numsubOn(t, a, false, "classic") != 1 || numsubOn(t, a, true, "sharded") != 1 {
		t.Fatalf("the subscriptions are not on the master %s", a.Addr)
	}

	promoteAt := time.Now()
	mustDoServer(t, b, "REPLICAOF", "NO", "ONE")
	mustDoServer(t, a, "REPLICAOF", b.Host, b.Port)
	waitFor(t, 5*time.Second, "the subscriptions to move to "+b.Addr, func() error {
		if numsubOn(t, b, false, "classic") != 1 || numsubOn(t, b, true, "sharded") != 1 {
			return notYet("not on %s yet", b.Addr)
		}
		return nil
	})
	movedAt := time.Now()
	for _, l := range []*psLoad{classic, sharded} {
		for ch := range l.recv {
			l.waitRecv(t, ch, movedAt.Add(500*time.Millisecond), 5*time.Second)
			l.halt()
			gaps := checkGaps(t, l, ch)
			if len(gaps) == 0 || gaps[0].From != a.Addr || gaps[0].To != b.Addr {
				t.Fatalf("%s: want a reported gap from %s to %s, got %d", ch, a.Addr, b.Addr, len(gaps))
			}
			t.Logf("role probe %s: REPLICAOF NO ONE -> subscription confirmed on the new master %v",
				ch, gaps[0].End.Sub(promoteAt).Round(time.Millisecond))
			if d := gaps[0].End.Sub(promoteAt); d > interval+time.Second {
				t.Errorf("%s: moved %v after the promotion, want <= probe interval + 1s", ch, d)
			}
		}
	}
	if numsubOn(t, a, false, "classic") != 0 || numsubOn(t, a, true, "sharded") != 0 {
		t.Errorf("the old master %s still has our subscriptions", a.Addr)
	}
}

// A DNS name re-pointed while its old server still serves: the TTL check
// notices, drains the subscription connections with the command ones, and
// the subscriptions dial the name afresh and land on the new address,
// reporting the gap.
func TestPubSubDNSRepoint(t *testing.T) {
	redistest.Require(t)
	dns := dnstest.Start(t, dnstest.Zone{"node1.pubsub.test": {"127.0.0.2"}})
	dns.SetTTL(dnsTTL)
	a := redistest.StartServer(t, redistest.ServerOptions{Host: "127.0.0.2"})
	spare := redistest.StartServer(t, redistest.ServerOptions{Host: "127.0.0.4"})
	sc := movePort(t, spare, a.Port)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	endpoint := net.JoinHostPort("node1.pubsub.test", strconv.Itoa(a.Port))
	c, err := New(ctx, Options{Addrs: []string{endpoint}, Resolver: resolve.NewNetResolver(dns.Addr), DNSTTL: dnsTTL})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	classic, sharded := deployLoads(t, c)

	repointAt := time.Now()
	if err := dns.Set("node1.pubsub.test", "127.0.0.4"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 5*time.Second, "the subscriptions to reach the new address", func() error {
		n1, err1 := sc.Do(ctx, "PUBSUB", "NUMSUB", "classic").Slice()
		n2, err2 := sc.Do(ctx, "PUBSUB", "SHARDNUMSUB", "sharded").Slice()
		if err := errors.Join(err1, err2); err != nil {
			return err
		}
		if n1[1] != int64(1) || n2[1] != int64(1) {
			return notYet("subscribers on the new address: %v %v", n1, n2)
		}
		return nil
	})
	for _, l := range []*psLoad{classic, sharded} {
		for ch := range l.recv {
			l.waitRecv(t, ch, time.Now().Add(300*time.Millisecond), 5*time.Second)
			l.halt()
			gaps := checkGaps(t, l, ch)
			if len(gaps) == 0 {
				t.Fatalf("%s: the move was not reported", ch)
			}
			d := gaps[0].End.Sub(repointAt)
			t.Logf("dns %s: re-pointed -> subscribed at the new address %v", ch, d.Round(time.Millisecond))
			if d > dnsTTL+time.Second {
				t.Errorf("%s: followed the name after %v, want <= %v", ch, d, dnsTTL+time.Second)
			}
		}
	}
	if numsubOn(t, a, false, "classic") != 0 || numsubOn(t, a, true, "sharded") != 0 {
		t.Errorf("the old address still has our subscriptions")
	}
}
