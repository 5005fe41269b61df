package client

import (
	"context"
	"errors"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/slotrouter/slotrouter/internal/redistest"
)

// switchWatch records the first +switch-master any Sentinel publishes.
type switchWatch struct {
	mu      sync.Mutex
	at      time.Time
	payload string
}

func (s *switchWatch) get() (time.Time, string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.at, s.payload
}

func watchSwitch(t *testing.T, addrs []string, password string) *switchWatch {
	t.Helper()
	sw := &switchWatch{}
	for _, addr := range addrs {
		cl := redis.NewClient(&redis.Options{Addr: addr, Password: password})
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		ps := cl.Subscribe(ctx, "+switch-master")
		_, err := ps.Receive(ctx) // the subscription is in place
		cancel()
		if err != nil {
			t.Fatalf("subscribe to %s: %v", addr, err)
		}
		ch := ps.Channel()
		go func() {
			for m := range ch {
				sw.mu.Lock()
				if sw.at.IsZero() {
					sw.at, sw.payload = time.Now(), m.Payload
				}
				sw.mu.Unlock()
			}
		}()
		t.Cleanup(func() { _ = ps.Close(); _ = cl.Close() })
	}
	return sw
}

// wait waits for the first +switch-master and returns when it came and
// the new master's address.
func (s *switchWatch) wait(t *testing.T, within time.Duration) (time.Time, string) {
	t.Helper()
	waitFor(t, within, "+switch-master", func() error {
		if at, _ := s.get(); at.IsZero() {
			return notYet("no +switch-master yet")
		}
		return nil
	})
	at, payload := s.get()
	f := strings.Fields(payload)
	if len(f) != 5 {
		t.Fatalf("+switch-master payload %q", payload)
	}
	return at, net.JoinHostPort(f[3], f[4])
}

// Sentinel with passwords of its own, separate from the data nodes': the
// master is killed (-9) and writes resume within 1 s of +switch-master; the
// old master, restarted, runs as master until Sentinel demotes it and gets
// no write meanwhile or afterwards.
func TestSentinelFailover(t *testing.T) {
	redistest.Require(t)
	redistest.RequireSentinel(t)
	const dataPW, sentPW = "data-pw", "sentinel-pw"
	g := redistest.StartSentinelGroup(t, redistest.SentinelOptions{
		Replicas: 2, Sentinels: 3, Password: dataPW,
		// Long enough that a loaded machine does not see false s_down,
		// short enough that the failover takes a few seconds.
		DownAfter: 1500 * time.Millisecond, FailoverTimeout: 5 * time.Second,
	})
	old := g.Master()
	replicas := g.Replicas()
	ids := map[string]string{}
	for _, s := range g.Servers() {
		ids[s.Addr] = runID(t, s)
	}
	// Sentinels require their own password from here on: peers learn it
	// first (sentinel-pass), then it is required.
	for _, s := range g.Sentinels() {
		mustDoServer(t, s, "SENTINEL", "CONFIG", "SET", "sentinel-pass", sentPW)
	}
	for _, s := range g.Sentinels() {
		mustDoServer(t, s, "ACL", "SETUSER", "default", "resetpass", ">"+sentPW)
	}
	{
		cl := redis.NewClient(&redis.Options{Addr: g.SentinelAddrs()[0]})
		err := cl.Ping(context.Background()).Err()
		_ = cl.Close()
		if err == nil || !strings.Contains(err.Error(), "NOAUTH") {
			t.Fatalf("a Sentinel answers without its password: %v", err)
		}
	}
	sw := watchSwitch(t, g.SentinelAddrs(), sentPW)

	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	sopts := &SentinelOptions{MasterName: g.MasterName(), Addrs: g.SentinelAddrs()[:1], Password: sentPW}
	c, err := New(ctx, Options{Sentinel: sopts, Password: dataPW})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	sh := c.Topology().Shards()
	if len(sh) != 1 || sh[0].Master.Addr != old.Addr || len(sh[0].Replicas) != 2 {
		t.Fatalf("first view %v, want master %s and 2 replicas", c.Topology(), old.Addr)
	}
	// Only one Sentinel was configured: the others are learnt.
	waitFor(t, 10*time.Second, "the other Sentinels to be learnt", func() error {
		if n := len(c.SentinelAddrs()); n != 3 {
			return notYet("%d sentinels known", n)
		}
		return nil
	})

	w := startWriter(t, c, 2)
	w.waitAck(t, ids[old.Addr], time.Time{}, 10*time.Second)

	tKill := time.Now()
	old.Kill()
	switchAt, newAddr := sw.wait(t, 60*time.Second)
	newID := ids[newAddr]
	if newID == "" || newAddr == old.Addr {
		t.Fatalf("+switch-master names %s, not one of the replicas %v", newAddr, replicas)
	}
	first := w.waitAck(t, newID, time.Time{}, 10*time.Second)
	resumed := first.Sub(switchAt)
	t.Logf("sentinel: kill -9 -> +switch-master %v; +switch-master -> first write acknowledged by the new master %v",
		switchAt.Sub(tKill).Round(time.Millisecond), resumed.Round(time.Millisecond))
	if resumed > time.Second {
		t.Errorf("writes resumed %v after +switch-master, want <= 1s", resumed)
	}

	// The old master comes back with its old configuration: master, empty.
	old.Restart(t)
	tRestart := time.Now()
	restartedID := runID(t, old)
	waitFor(t, 60*time.Second, "Sentinel to demote the restarted master", func() error {
		in, err := infoErr(old, "replication")
		if err != nil {
			return err
		}
		if in["role"] != "slave" || net.JoinHostPort(in["master_host"], in["master_port"]) != newAddr {
			return notYet("role %s, master %s:%s", in["role"], in["master_host"], in["master_port"])
		}
		return nil
	})
	t.Logf("sentinel: restarted old master demoted %v after its restart", time.Since(tRestart).Round(time.Millisecond))
	w.waitAck(t, newID, time.Now(), 10*time.Second)
	w.halt()
	acks := w.snapshot()

	for _, a := range acks {
		if a.err != nil {
			continue
		}
		switch {
		case a.runID == restartedID:
			t.Errorf("write %s landed on the restarted old master", a.key)
		case a.start.After(tKill) && a.runID != newID:
			t.Errorf("write %s sent after the kill ran on %s, not on the new master", a.key, a.runID)
		case a.runID != newID && a.runID != ids[old.Addr]:
			t.Errorf("write %s ran on replica %s", a.key, a.runID)
		}
	}
	stored := checkStoredOn(t, serverAt(g, newAddr), newID, acks, time.Time{})
	ok, failed := stats(acks)
	t.Logf("sentinel: %d writes acknowledged (%d of them by the new master, all stored there), %d failed during the failover",
		ok, stored, failed)
}

func serverAt(g *redistest.SentinelGroup, addr string) *redistest.Server {
	for _, s := range g.Servers() {
		if s.Addr == addr {
			return s
		}
	}
	return nil
}

// A master name no Sentinel monitors fails New with ErrUnknownMaster; a
// wrong Sentinel password fails it with the server's WRONGPASS.
func TestSentinelBadConfig(t *testing.T) {
	redistest.Require(t)
	redistest.RequireSentinel(t)
	g := redistest.StartSentinelGroup(t, redistest.SentinelOptions{Replicas: 1, Sentinels: 1})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	_, err := New(ctx, Options{Sentinel: &SentinelOptions{MasterName: "nope", Addrs: g.SentinelAddrs()}})
	if !errors.Is(err, ErrUnknownMaster) {
		t.Errorf("unknown master name: %v", err)
	}
	mustDoServer(t, g.Sentinels()[0], "ACL", "SETUSER", "default", "resetpass", ">right")
	ctx, cancel = context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	_, err = New(ctx, Options{Sentinel: &SentinelOptions{MasterName: g.MasterName(), Addrs: g.SentinelAddrs(), Password: "wrong"}})
	if !errors.Is(err, ErrWrongPass) {
		t.Errorf("wrong sentinel password: %v", err)
	}
}
