package clustertest

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/slotrouter/slotrouter/slots"
)

func TestUnservedSlots(t *testing.T) {
	c := New(t, Options{})
	m := c.Masters()[0]
	k := keyOn(t, c, m, "u")
	other := keyOn(t, c, c.Masters()[1], "o")
	r := dialRaw(t, m.Addr())
	if err := c.DelSlots(slots.Of(k)); err != nil {
		t.Fatal(err)
	}
	if got := r.do("GET", k); got != "-CLUSTERDOWN Hash slot not served\r\n" {
		t.Errorf("GET unowned = %q", got)
	}
	if got := r.do("GET", other); got != "-CLUSTERDOWN The cluster is down\r\n" {
		t.Errorf("GET elsewhere with partial coverage = %q", got)
	}
	if got := r.do("PING"); got != "+PONG\r\n" {
		t.Errorf("key-less command while down = %q", got)
	}
	if !strings.Contains(r.do("CLUSTER", "INFO"), "cluster_slots_assigned:16383\r\n") {
		t.Error("assigned count not updated")
	}
	if err := c.AddSlots(c.Masters()[1], slots.Of(k)); err != nil {
		t.Fatal(err)
	}
	if got := r.do("GET", k); got != "-MOVED "+strconv.Itoa(int(slots.Of(k)))+" "+c.Masters()[1].Addr()+"\r\n" {
		t.Errorf("GET after AddSlots = %q", got)
	}
	if err := c.AddSlots(m, slots.Of(k)); !errors.Is(err, ErrBadState) {
		t.Errorf("AddSlots of an owned slot: %v", err)
	}
}

// A hung master is failed over like a dead one; on Resume it rejoins as a
// replica and answers the requests that were waiting with MOVED.
func TestHangedMasterFailsOver(t *testing.T) {
	c := New(t, Options{NodeTimeout: 50 * time.Millisecond, FailoverDelay: 50 * time.Millisecond})
	m := c.Masters()[0]
	rep := c.ReplicasOf(m)[0]
	k := keyOn(t, c, m, "h")
	r := dialRaw(t, m.Addr())
	if err := c.Hang(m); err != nil {
		t.Fatal(err)
	}
	_, _ = r.nc.Write(encode("GET", k))
	pollUntil(t, 10*time.Second, "promotion", func() bool { return rep.Role() == RoleMaster })
	if err := c.Resume(m); err != nil {
		t.Fatal(err)
	}
	got, err := readRaw(r.br)
	if want := "-MOVED " + strconv.Itoa(int(slots.Of(k))) + " " + rep.Addr() + "\r\n"; err != nil || string(got) != want {
		t.Fatalf("pending GET after resume = %q, %v; want %q", got, err, want)
	}
	if m.Role() != RoleReplica {
		t.Errorf("resumed old master role = %s", m.Role())
	}
}

// Expiry follows Options.Now, so tests can move time without sleeping.
func TestFakeClockExpiry(t *testing.T) {
	var now atomic.Int64
	now.Store(time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC).UnixMilli())
	c := New(t, Options{Masters: 1, Replicas: -1, Now: func() time.Time { return time.UnixMilli(now.Load()) }})
	r := dialRaw(t, c.Addrs()[0])
	r.do("SET", "k", "v", "EX", "10")
	if got := r.do("TTL", "k"); got != ":10\r\n" {
		t.Fatalf("TTL = %q", got)
	}
	now.Add(9500)
	if got := r.do("PTTL", "k"); got != ":500\r\n" {
		t.Fatalf("PTTL = %q", got)
	}
	now.Add(500)
	if got := r.do("GET", "k"); got != "$-1\r\n" {
		t.Fatalf("GET after expiry = %q", got)
	}
	if got := r.do("DBSIZE"); got != ":0\r\n" {
		t.Fatalf("DBSIZE = %q", got)
	}
}

func TestStartCloseAndOptions(t *testing.T) {
	c, err := Start(Options{Masters: 2, Replicas: 2})
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Nodes()) != 6 || len(c.Masters()) != 2 || len(c.ReplicasOf(c.Masters()[1])) != 2 {
		t.Fatalf("layout: %d nodes", len(c.Nodes()))
	}
	if c.MasterOf(8191) != c.Masters()[0] || c.MasterOf(8192) != c.Masters()[1] {
		t.Error("two masters must split at 8191/8192 like redis-cli")
	}
	addr := c.Addrs()[0]
	c.Close()
	c.Close()
	if _, err := dialErr(addr); err == nil {
		t.Error("node still accepting after Close")
	}
	if err := c.Kill(c.Nodes()[0]); !errors.Is(err, ErrClosed) {
		t.Errorf("Kill after Close: %v", err)
	}
	if _, err := c.Failover(context.Background(), 9); !errors.Is(err, ErrInvalidShard) {
		t.Errorf("Failover(9): %v", err)
	}
	if _, err := Start(Options{Masters: 600, Replicas: 1}); !errors.Is(err, ErrTooMany) {
		t.Errorf("huge cluster: %v", err)
	}
}

// MoveKeys with a negative count moves every key, as moveKeys does; it used
// to move none and report 0, which reads as "nothing left to move".
func TestMoveKeysNegativeMovesAll(t *testing.T) {
	c := New(t, Options{Replicas: -1})
	src, dst := c.Masters()[0], c.Masters()[1]
	slot := slots.Slot(100)
	if c.MasterOf(slot) != src {
		t.Fatalf("slot %d not on the first master", slot)
	}
	r := dialRaw(t, src.Addr())
	const n = 5
	tag := ""
	for i := 0; tag == ""; i++ {
		if s := "t" + strconv.Itoa(i); slots.Of(s) == slot {
			tag = s
		}
	}
	for i := range n {
		r.do("SET", "{"+tag+"}"+strconv.Itoa(i), "v")
	}
	if err := c.BeginMigration(slot, dst); err != nil {
		t.Fatal(err)
	}
	if moved, err := c.MoveKeys(slot, -1); err != nil || moved != n {
		t.Fatalf("MoveKeys(-1) = %d, %v; want %d", moved, err, n)
	}
	if moved, err := c.MoveKeys(slot, -1); err != nil || moved != 0 {
		t.Fatalf("second MoveKeys(-1) = %d, %v; want 0", moved, err)
	}
	if src.Keys() != 0 || dst.Keys() != n {
		t.Errorf("keys: source %d, target %d; want 0, %d", src.Keys(), dst.Keys(), n)
	}
}
