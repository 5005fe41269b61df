package client

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/slotrouter/slotrouter/internal/redistest"
	"github.com/slotrouter/slotrouter/topology"
)

// switchSource names one master, switched by the test; Changed makes the
// router pick the switch up at once.
type switchSource struct {
	addr    atomic.Pointer[string]
	changed chan struct{}
}

func newSwitchSource(addr string) *switchSource {
	s := &switchSource{changed: make(chan struct{}, 1)}
	s.addr.Store(&addr)
	return s
}

func (s *switchSource) Discover(ctx context.Context, prev *topology.Snapshot, suspects func(string) bool) (*topology.Snapshot, error) {
	return staticSource{addr: *s.addr.Load()}.Discover(ctx, prev, suspects)
}

func (s *switchSource) Changed() <-chan struct{} { return s.changed }

func (s *switchSource) to(addr string) {
	s.addr.Store(&addr)
	select {
	case s.changed <- struct{}{}:
	default:
	}
}

// waitMaster waits until c's view names addr master.
func waitMaster(t *testing.T, c *Client, addr string) {
	t.Helper()
	waitFor(t, 5*time.Second, "the view on "+addr, func() error {
		if m := c.Topology().Shards()[0].Master.Addr; m != addr {
			return notYet("master %s", m)
		}
		return nil
	})
}

// waitOutstanding waits until n requests are written to addr and unanswered.
func waitOutstanding(t *testing.T, c *Client, addr string, n int64) {
	t.Helper()
	waitFor(t, 5*time.Second, "requests in flight on "+addr, func() error {
		if got := c.node(addr).outstanding(); got < n {
			return notYet("%d outstanding, want %d", got, n)
		}
		return nil
	})
}

// A node that leaves the view is drained, not cut: the replies owed to
// calls already sent on its connection are still read, and a READONLY among
// them re-routes its write to the new master. Here A, which the view names
// master, is really a replica and is busy (DEBUG SLEEP) when the view moves
// to B: the sleep's reply arrives, and the write queued behind it, refused
// READONLY, runs on B. Cutting A's connection would have failed both as
// "closed (command may have been sent)".
func TestDroppedNodeIsDrained(t *testing.T) {
	redistest.Require(t)
	b := redistest.StartServer(t, redistest.ServerOptions{})
	a := redistest.StartServer(t, redistest.ServerOptions{ReplicaOf: b.Addr, Config: []string{"enable-debug-command yes"}})
	redistest.WaitLinked(t, b.Addr, a)
	src := newSwitchSource(a.Addr)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := New(ctx, Options{Source: src})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()

	sleep := make(chan error, 1)
	go func() { sleep <- c.DoOn(ctx, a.Addr, "DEBUG", "SLEEP", "0.5").Err() }()
	waitOutstanding(t, c, a.Addr, 1)
	set := make(chan error, 1)
	start := time.Now()
	go func() {
		wctx, wcancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer wcancel()
		set <- c.Do(wctx, "SET", "drained", "b").Err()
	}()
	waitOutstanding(t, c, a.Addr, 2)

	src.to(b.Addr)
	waitMaster(t, c, b.Addr)
	if err := <-sleep; err != nil {
		t.Errorf("the call owed a reply on the dropped node failed: %v", err)
	}
	if err := <-set; err != nil {
		t.Fatalf("the write refused READONLY by the dropped node failed instead of moving to B: %v", err)
	}
	t.Logf("write re-routed after %v", time.Since(start).Round(time.Millisecond))
	if v := mustDoServer(t, b, "GET", "drained"); v != "b" {
		t.Fatalf("B holds %v, want the re-routed write", v)
	}
}

// The health rule still bounds a drained connection: a hung node (SIGSTOP)
// dropped from the view fails the call owed on it after HealthTimeout, and
// the client's Close does not wait for the drain.
func TestDrainedNodeHealthRule(t *testing.T) {
	redistest.Require(t)
	a := redistest.StartServer(t, redistest.ServerOptions{})
	b := redistest.StartServer(t, redistest.ServerOptions{})
	src := newSwitchSource(a.Addr)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	const health = 300 * time.Millisecond
	c, err := New(ctx, Options{Source: src, HealthTimeout: health})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Do(ctx, "SET", "k", "v").Err(); err != nil {
		t.Fatal(err)
	}
	a.Stop()
	defer a.Cont()
	got := make(chan error, 1)
	go func() { got <- c.DoOn(ctx, a.Addr, "GET", "k").Err() }()
	waitOutstanding(t, c, a.Addr, 1)
	start := time.Now()
	src.to(b.Addr)
	err = <-got
	took := time.Since(start)
	var ce *ConnError
	if !errors.As(err, &ce) || ce.Op != "health" {
		t.Fatalf("call on the hung, dropped node: %v, want a health *ConnError", err)
	}
	if took > health+time.Second {
		t.Fatalf("health rule fired %v after the drop, want about %v", took, health)
	}
	t.Logf("health rule fired %v after the drop", took.Round(time.Millisecond))

	// Close cuts a drain still in progress rather than wait for its health
	// rule (5 s here).
	src2 := newSwitchSource(b.Addr)
	c2, err := New(ctx, Options{Source: src2, HealthTimeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	src2.to(a.Addr)
	waitMaster(t, c2, a.Addr)
	// Dial a while it answers (a dial's handshake to a stopped node would
	// fail at DialTimeout, never reaching the pipe), then stop it again.
	a.Cont()
	if err := c2.DoOn(ctx, a.Addr, "PING").Err(); err != nil {
		t.Fatal(err)
	}
	a.Stop()
	go func() { got <- c2.DoOn(ctx, a.Addr, "GET", "k").Err() }()
	waitOutstanding(t, c2, a.Addr, 1)
	src2.to(b.Addr)
	waitMaster(t, c2, b.Addr)
	start = time.Now()
	c2.Close()
	select {
	case err := <-got:
		if err == nil {
			t.Fatal("a call to a stopped node succeeded")
		}
		t.Logf("Close ended the drain after %v: %v", time.Since(start).Round(time.Millisecond), err)
	case <-time.After(2 * time.Second):
		t.Fatal("Close left a call on a draining connection waiting for the health rule")
	}
}
