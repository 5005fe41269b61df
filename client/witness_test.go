package client

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/slotrouter/slotrouter/internal/fakeresp"
	"github.com/slotrouter/slotrouter/internal/redistest"
	"github.com/slotrouter/slotrouter/slots"
)

// hostileView rewrites an honest node's CLUSTER NODES text into a lying
// seed's: the honest masters lose their slots, a node with strangerID at
// strangerAddr owns all 16384 at config epoch 999, and the liar itself
// (selfID at selfAddr) poses as a replica.
func hostileView(honest, selfID, selfAddr, strangerID, strangerAddr string) string {
	var b strings.Builder
	var masterID string
	for _, line := range strings.Split(strings.TrimSpace(honest), "\n") {
		f := strings.Fields(line)
		if len(f) < 8 {
			continue
		}
		f[2] = strings.Replace(f[2], "myself,", "", 1)
		if strings.Contains(f[2], "master") {
			masterID = f[0]
			f = f[:8] // its slots are gone
		}
		b.WriteString(strings.Join(f, " ") + "\n")
	}
	host, port, _ := net.SplitHostPort(selfAddr)
	fmt.Fprintf(&b, "%s %s:%s@1 myself,slave %s 0 0 3 connected\n", selfID, host, port, masterID)
	host, port, _ = net.SplitHostPort(strangerAddr)
	fmt.Fprintf(&b, "%s %s:%s@1 master - 0 0 999 connected 0-16383\n", strangerID, host, port)
	return b.String()
}

// liar starts a fake seed that answers CLUSTER NODES with view(its addr).
func liar(t *testing.T, view func(self string) string) *fakeresp.Server {
	var addr string
	srv := fakeresp.Start(t, func(_ int, args []string) []byte {
		switch strings.ToUpper(args[0]) {
		case "PING":
			return fakeresp.Simple("PONG")
		case "CLUSTER":
			return fakeresp.Bulk(view(addr))
		}
		return fakeresp.Err("ERR the liar serves no data")
	})
	addr = srv.Addr
	return srv
}

// commandCalls is how often s ran cmd (INFO commandstats).
func commandCalls(t *testing.T, s *redistest.Server, cmd string) int {
	t.Helper()
	return infoStat(t, s, "commandstats", "cmdstat_"+cmd+":calls=")
}

// One hostile seed among three honest ones names a stranger as the owner of
// every slot with a higher epoch. The stranger is a real node of another
// cluster (so a command sent there would succeed): no GET or SET reaches it,
// every key is served by the honest owners, and the stranger is not in the
// view. Asking it to confirm (its own CLUSTER NODES) is the only contact.
func TestHostileSeedCannotTakeTheSlotMap(t *testing.T) {
	cl := startCluster(t, redistest.ClusterOptions{Masters: 3})
	other := startCluster(t, redistest.ClusterOptions{Masters: 1})
	stranger := other.Servers()[0]
	honest := cl.NodesText(cl.Masters()[0])
	h := liar(t, func(self string) string {
		return hostileView(honest, strings.Repeat("e", 40), self, stranger.ID, stranger.Addr)
	})
	probesBefore := commandCalls(t, stranger, "cluster|nodes")
	c := newTestClient(t, cl, Options{Addrs: append(cl.Addrs(), h.Addr)})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for i := range 300 {
		k := keyIn(slots.Slot(i*55%slots.Count), "hostile:"+strconv.Itoa(i))
		if err := c.Do(ctx, "SET", k, "v"+k).Err(); err != nil {
			t.Fatalf("SET %s: %v", k, err)
		}
		if v, err := c.Do(ctx, "GET", k).Text(); err != nil || v != "v"+k {
			t.Fatalf("GET %s = %q, %v", k, v, err)
		}
	}
	if err := c.router.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	snap := c.Topology()
	if n := snap.Node(stranger.Addr); n != nil {
		t.Fatalf("the stranger is in the view: %v", n)
	}
	if snap.Covered() != slots.Count {
		t.Fatalf("covered %d slots", snap.Covered())
	}
	gets, sets := commandCalls(t, stranger, "get"), commandCalls(t, stranger, "set")
	if gets+sets != 0 {
		t.Fatalf("the stranger ran %d GET and %d SET", gets, sets)
	}
	t.Logf("stranger %s: 0 GET/SET; %d CLUSTER NODES confirmation probes (refused: another cluster); liar got %d requests",
		stranger.Addr, commandCalls(t, stranger, "cluster|nodes")-probesBefore, h.Count(""))

	// The same lie naming an address where nothing listens.
	dead := freeAddr(t)
	h2 := liar(t, func(self string) string {
		return hostileView(honest, strings.Repeat("d", 40), self, strings.Repeat("f", 40), dead)
	})
	c2 := newTestClient(t, cl, Options{Addrs: append(cl.Addrs(), h2.Addr)})
	if err := c2.Do(ctx, "SET", "k", "v").Err(); err != nil {
		t.Fatal(err)
	}
	if n := c2.Topology().Node(dead); n != nil || c2.Topology().Covered() != slots.Count {
		t.Fatalf("dead address in the view: %v, covered %d", n, c2.Topology().Covered())
	}
}

// freeAddr is a loopback address nothing listens on.
func freeAddr(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	_ = ln.Close()
	return addr
}

// A node of another cluster among the seeds: New refuses with a typed error
// naming the seeds of each cluster, instead of mixing the two.
func TestForeignSeedFailsNew(t *testing.T) {
	cl := startCluster(t, redistest.ClusterOptions{Masters: 3})
	other := startCluster(t, redistest.ClusterOptions{Masters: 1})
	foreign := other.Servers()[0].Addr
	took, err := newWithin(t, Options{Addrs: append(cl.Addrs(), foreign)})
	var fe *ForeignSeedsError
	if !errors.Is(err, ErrForeignSeeds) || !errors.As(err, &fe) || len(fe.Groups) != 2 {
		t.Fatalf("New with a foreign seed: %v", err)
	}
	if !strings.Contains(err.Error(), foreign) {
		t.Fatalf("the error does not name the foreign seed: %v", err)
	}
	t.Logf("New failed after %v: %v", took, err)
}

// redirector is a fake node that owns every slot (through a static source)
// and answers GET k with the given redirect; other keys get their value.
func redirector(t *testing.T, redirect string) *fakeresp.Server {
	return fakeresp.Start(t, func(_ int, args []string) []byte {
		switch strings.ToUpper(args[0]) {
		case "PING":
			return fakeresp.Simple("PONG")
		case "GET":
			if args[1] == "k" {
				return fakeresp.Err(redirect)
			}
			return fakeresp.Bulk("value-of-" + args[1])
		}
		return fakeresp.Err("ERR unknown")
	})
}

// A MOVED for another slot than the command's is a protocol error of the
// node that sent it: not followed, not patched into the map.
func TestRedirectForAnotherSlotRefused(t *testing.T) {
	target := fakeresp.Start(t, func(int, []string) []byte { return fakeresp.Bulk("from the target") })
	f := redirector(t, "MOVED 3999 "+target.Addr) // "k" is in slot 7629
	c := fakeClient(t, f.Addr)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := c.Do(ctx, "GET", "k").Err(); !errors.Is(err, ErrBadRedirect) {
		t.Fatalf("GET k: %v", err)
	}
	k3999 := keyIn(3999, "x")
	if v, err := c.Do(ctx, "GET", k3999).Text(); err != nil || v != "value-of-"+k3999 {
		t.Fatalf("slot 3999 after the bad redirect: %q %v", v, err)
	}
	if n := target.Count(""); n != 0 {
		t.Fatalf("%d commands reached the redirect's target", n)
	}
}

// A MOVED to an address no node of the view mentions is not followed: the
// router rediscovers, and the view (here a fixed one) never vouches for it.
func TestRedirectToUnknownNodeNotFollowed(t *testing.T) {
	target := fakeresp.Start(t, func(int, []string) []byte { return fakeresp.Bulk("from the target") })
	f := redirector(t, "MOVED 7629 "+target.Addr)
	c := fakeClient(t, f.Addr)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err := c.Do(ctx, "GET", "k").Err()
	var re *RedirectError
	if !errors.As(err, &re) {
		t.Fatalf("GET k: %v", err)
	}
	if n := target.Count(""); n != 0 {
		t.Fatalf("%d commands reached the unknown target", n)
	}
	f2 := redirector(t, "ASK 7629 "+target.Addr)
	c2 := fakeClient(t, f2.Addr)
	if err := c2.Do(ctx, "GET", "k").Err(); !errors.As(err, &re) || target.Count("") != 0 {
		t.Fatalf("ASK to an unknown node: %v, %d commands there", err, target.Count(""))
	}
}
