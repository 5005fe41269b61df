package client

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/slotrouter/slotrouter/internal/redistest"
)

// Options.DB is SELECTed on every connection, including those dialled after
// the server dropped every client.
func TestOptionsDBOnEveryConnection(t *testing.T) {
	redistest.Require(t)
	srv := redistest.StartServer(t, redistest.ServerOptions{})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	c, err := New(ctx, Options{Addrs: []string{srv.Addr}, DB: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	inDB2 := func(key string) string {
		t.Helper()
		v, err := srv.Do(ctx, "EVAL", "redis.call('SELECT', 2) return redis.call('GET', KEYS[1])", 1, key)
		if err != nil && !strings.Contains(err.Error(), "nil") {
			t.Fatal(err)
		}
		s, _ := v.(string)
		return s
	}
	if err := c.Do(ctx, "SET", "db:a", "x").Err(); err != nil {
		t.Fatal(err)
	}
	if got := inDB2("db:a"); got != "x" {
		t.Fatalf("db 2 has %q", got)
	}
	if v, err := srv.Do(ctx, "EXISTS", "db:a"); err != nil || v != int64(0) {
		t.Fatalf("db 0 has the key: %v, %v", v, err)
	}
	if _, err := srv.Do(ctx, "CLIENT", "KILL", "TYPE", "normal", "SKIPME", "yes"); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for c.Do(ctx, "SET", "db:b", "y").Err() != nil && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if got := inDB2("db:b"); got != "y" {
		t.Fatalf("after reconnecting, db 2 has %q", got)
	}
	s, err := c.Conn(ctx, "db:b")
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if v, _ := s.Do(ctx, "GET", "db:b").Text(); v != "y" {
		t.Fatalf("a session reads %q: not in db 2", v)
	}
}

// Options.DB on a Redis Cluster: every node refuses SELECT at connection
// setup, which no retry can change, so New fails at once with a typed error
// rather than waiting out its context.
func TestOptionsDBRefusedByClusterFailsFast(t *testing.T) {
	cl := startCluster(t, redistest.ClusterOptions{Masters: 3})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	start := time.Now()
	c, err := New(ctx, Options{Addrs: cl.Addrs(), DB: 1})
	took := time.Since(start)
	if err == nil {
		c.Close()
		t.Fatal("New with Options.DB on a cluster succeeded")
	}
	if !errors.Is(err, ErrSetupRefused) || !strings.Contains(err.Error(), "SELECT") {
		t.Fatalf("New: %v, want ErrSetupRefused naming SELECT", err)
	}
	if took > 2*time.Second {
		t.Fatalf("New took %v to refuse, want it at once (its context had 10 s)", took)
	}
	t.Logf("New refused Options.DB on a cluster in %v: %v", took.Round(time.Millisecond), err)
}

// Options.Protocol 3 makes every connection speak RESP3, sessions too.
func TestOptionsProtocol3(t *testing.T) {
	cl := startCluster(t, redistest.ClusterOptions{Masters: 3})
	c := newTestClient(t, cl, Options{Protocol: 3})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for i := range 20 {
		key := keyIn(slotOwnedBy(t, cl, cl.Masters()[i%3], i*300), "h")
		if err := c.Do(ctx, "HSET", key, "f", "v").Err(); err != nil {
			t.Fatal(err)
		}
		if r := c.Do(ctx, "HGETALL", key); r.Kind() != KindMap {
			t.Fatalf("HGETALL on %s: %s, want a RESP3 map", key, r.Kind())
		}
	}
	s, err := c.Conn(ctx, "{p3}")
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if r := s.Do(ctx, "HGETALL", "{p3}"); r.Kind() != KindMap {
		t.Fatalf("session HGETALL: %s", r.Kind())
	}
	if _, err := New(ctx, Options{Addrs: cl.Addrs(), Protocol: 4}); err == nil {
		t.Fatal("Protocol 4 accepted")
	}
}
