package client

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/slotrouter/slotrouter/internal/redistest"
	"github.com/slotrouter/slotrouter/slots"
)

// WAIT through a session counts the session's own writes: 1 while the
// replica is running, 0 (after the timeout) while it is SIGSTOPped, where
// a WAIT on a connection with no writes of its own would say 1 at once.
func TestConnWaitCountsOwnWrites(t *testing.T) {
	cl := startCluster(t, redistest.ClusterOptions{Masters: 3, Replicas: 1})
	c := newTestClient(t, cl, Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	key := "wait:{session}"
	master := cl.MasterOf(int(slots.Of(key)))
	replica := cl.ReplicasOf(master)[0]

	s, err := c.Conn(ctx, key)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if s.Addr() != master.Addr {
		t.Fatalf("session on %s, want the master %s", s.Addr(), master.Addr)
	}
	if err := s.Do(ctx, "SET", key, "1").Err(); err != nil {
		t.Fatal(err)
	}
	if n, err := s.Do(ctx, "WAIT", 1, 5000).Int64(); err != nil || n != 1 {
		t.Fatalf("WAIT with the replica up: %d, %v; want 1", n, err)
	}

	replica.Stop()
	defer replica.Cont()
	if err := s.Do(ctx, "SET", key, "2").Err(); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	n, err := s.Do(ctx, "WAIT", 1, 300).Int64()
	if err != nil || n != 0 {
		t.Fatalf("WAIT with the replica stopped: %d, %v; want 0", n, err)
	}
	if el := time.Since(start); el < 250*time.Millisecond {
		t.Fatalf("WAIT returned after %v, before its timeout", el)
	}
	if err := c.Do(ctx, "WAIT", 1, 300).Err(); !errors.Is(err, ErrConnState) || !strings.Contains(err.Error(), "Client.Conn") {
		t.Fatalf("Do(WAIT): %v", err)
	}
	// Keys outside the session's slot are refused before sending.
	if err := s.Do(ctx, "GET", keyIn(slots.Of(key)+1, "x")).Err(); !errors.Is(err, ErrCrossSlot) {
		t.Fatalf("session GET of another slot: %v", err)
	}
	if err := s.Do(ctx, "SUBSCRIBE", "ch").Err(); !errors.Is(err, ErrConnState) {
		t.Fatalf("session SUBSCRIBE: %v", err)
	}
}

// A session may change its own connection (MONITOR, CLIENT SETNAME); such a
// connection is closed on Close, never handed to anyone else.
func TestConnStateStaysInTheSession(t *testing.T) {
	cl := startCluster(t, redistest.ClusterOptions{Masters: 3})
	c := newTestClient(t, cl, Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	key := "mon:{session}"

	s, err := c.Conn(ctx, key)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Do(ctx, "MONITOR").Err(); err != nil {
		t.Fatal(err)
	}
	if err := c.Do(ctx, "SET", key, "watched").Err(); err != nil {
		t.Fatal(err)
	}
	found := false
	for i := 0; i < 20 && !found; i++ {
		rctx, rcancel := context.WithTimeout(ctx, 5*time.Second)
		line, err := s.Receive(rctx).Text()
		rcancel()
		if err != nil {
			t.Fatal(err)
		}
		found = strings.Contains(line, `"watched"`)
	}
	if !found {
		t.Fatal("MONITOR did not show the SET")
	}
	s.Close()

	// A session renames its connection; later sessions (the pool hands
	// out the last connection returned first) never get it.
	s2, err := c.Conn(ctx, key)
	if err != nil {
		t.Fatal(err)
	}
	if err := s2.Do(ctx, "CLIENT", "SETNAME", "dirty").Err(); err != nil {
		t.Fatal(err)
	}
	s2.Close()
	for range 6 {
		s3, err := c.Conn(ctx, key)
		if err != nil {
			t.Fatal(err)
		}
		qctx, qcancel := context.WithTimeout(ctx, 2*time.Second)
		v, err := s3.Do(qctx, "GET", key).Text()
		name, _ := s3.Do(qctx, "CLIENT", "GETNAME").Text()
		qcancel()
		s3.Close()
		if err != nil || v != "watched" || name == "dirty" {
			t.Fatalf("a later session: %q, %v, name %q (a connection left in MONITOR or renamed was pooled)", v, err, name)
		}
	}
}

// Client-side caching in a RESP3 session: invalidation pushes never pose
// as replies, and Receive hands them out.
func TestConnTrackingPushes(t *testing.T) {
	cl := startCluster(t, redistest.ClusterOptions{Masters: 3})
	c := newTestClient(t, cl, Options{Protocol: 3})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	key := "cached:{track}"
	if err := c.Do(ctx, "SET", key, "v1").Err(); err != nil {
		t.Fatal(err)
	}
	s, err := c.Conn(ctx, key)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.Do(ctx, "CLIENT", "TRACKING", "ON").Err(); err != nil {
		t.Fatal(err)
	}
	if v, _ := s.Do(ctx, "GET", key).Text(); v != "v1" {
		t.Fatalf("GET %q", v)
	}
	if err := c.Do(ctx, "SET", key, "v2").Err(); err != nil {
		t.Fatal(err)
	}
	// The invalidation is on its way (or here) while the session asks.
	for i := range 20 {
		if v, err := s.Do(ctx, "ECHO", i).Int64(); err != nil || v != int64(i) {
			t.Fatalf("ECHO %d answered %v, %v", i, v, err)
		}
	}
	rctx, rcancel := context.WithTimeout(ctx, 5*time.Second)
	defer rcancel()
	r := s.Receive(rctx)
	vals, err := r.Slice()
	if r.Kind() != KindPush || err != nil || len(vals) != 2 || vals[0] != "invalidate" {
		t.Fatalf("Receive: %v (%s)", r, r.Kind())
	}
	if keys, _ := vals[1].([]any); len(keys) != 1 || keys[0] != key {
		t.Fatalf("invalidated %v, want [%s]", vals[1], key)
	}
}
