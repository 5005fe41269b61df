package client

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/slotrouter/slotrouter/internal/fakeresp"
	"github.com/slotrouter/slotrouter/internal/redistest"
)

// fakeClient is a client whose one shard is the fake server at addr.
func fakeClient(t *testing.T, addr string) *Client {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := New(ctx, Options{Source: staticSource{addr: addr}, HealthTimeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// One reply too many: the server answers GET k1 twice (both in one write,
// the second a value of the right type). The stray reply must never reach
// the next caller: the connection is dropped when it goes idle with bytes
// nobody asked for, and GET k2 gets its own value on a fresh connection.
func TestDesyncReplyTooMany(t *testing.T) {
	srv := fakeresp.Start(t, func(_ int, args []string) []byte {
		switch strings.ToUpper(args[0]) {
		case "PING":
			return fakeresp.Simple("PONG")
		case "GET":
			out := fakeresp.Bulk("value-of-" + args[1])
			if args[1] == "k1" {
				out = append(out, fakeresp.Bulk("stray")...)
			}
			return out
		}
		return fakeresp.Err("ERR unknown")
	})
	c := fakeClient(t, srv.Addr)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if v, err := c.Do(ctx, "GET", "k1").Text(); err != nil || v != "value-of-k1" {
		t.Fatalf("GET k1 = %q, %v", v, err)
	}
	for i := 2; i < 42; i++ {
		k := fmt.Sprintf("k%d", i)
		v, err := c.Do(ctx, "GET", k).Text()
		if err != nil || v != "value-of-"+k {
			t.Fatalf("GET %s = %q, %v: another caller's reply", k, v, err)
		}
	}
	if srv.Conns() < 2 {
		t.Fatalf("the desynchronised connection was kept (%d connections)", srv.Conns())
	}
}

// One reply too few: the server swallows the reply to SET, so INCR's reply
// arrives first. An integer cannot answer SET: both calls fail as possibly
// run (ErrDesync, Sent), and neither gets the other's reply.
func TestDesyncReplyTooFew(t *testing.T) {
	srv := fakeresp.Start(t, func(_ int, args []string) []byte {
		switch strings.ToUpper(args[0]) {
		case "PING":
			return fakeresp.Simple("PONG")
		case "SET":
			return nil
		case "INCR":
			return fakeresp.Int(7)
		}
		return fakeresp.Err("ERR unknown")
	})
	c := fakeClient(t, srv.Addr)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	p := c.Pipeline()
	p.Do("SET", "a", "x")
	p.Do("INCR", "b")
	start := time.Now()
	res, _ := p.Exec(ctx)
	for i, r := range res {
		var ce *ConnError
		if err := r.Err(); !errors.Is(err, ErrDesync) || !errors.As(err, &ce) || !ce.Sent {
			t.Fatalf("command %d: %v (kind %v): want ErrDesync, may have run", i, err, r.Kind())
		}
	}
	if d := time.Since(start); d > time.Second {
		t.Fatalf("desync noticed after %v", d)
	}
}

// A reply type that cannot answer the command at the head of the queue is
// refused even when it arrives alone: +OK for GET.
func TestDesyncWrongReplyType(t *testing.T) {
	srv := fakeresp.Start(t, func(_ int, args []string) []byte {
		if strings.EqualFold(args[0], "PING") {
			return fakeresp.Simple("PONG")
		}
		return fakeresp.Simple("OK")
	})
	c := fakeClient(t, srv.Addr)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := c.Do(ctx, "INCR", "n").Err(); !errors.Is(err, ErrDesync) {
		t.Fatalf("INCR answered +OK: %v", err)
	}
	// Commands whose reply type is not certain take what comes.
	if v, err := c.Do(ctx, "EVAL", "return 1", 0).Text(); err != nil || v != "OK" {
		t.Fatalf("EVAL: %q %v", v, err)
	}
}

// CLIENT REPLY SKIP through Do made real Redis skip one reply and shifted
// every later reply onto the wrong caller. It is refused before it is sent,
// and 40 later GETs each get their own value.
func TestDesyncClientReplySkipRefused(t *testing.T) {
	cl := startCluster(t, redistest.ClusterOptions{Masters: 1})
	c := newTestClient(t, cl, Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, mode := range []string{"SKIP", "off", "Skip"} {
		if err := c.Do(ctx, "CLIENT", "REPLY", mode).Err(); !errors.Is(err, ErrReplyMode) {
			t.Fatalf("CLIENT REPLY %s: %v", mode, err)
		}
	}
	p := c.Pipeline()
	p.Do("CLIENT", "REPLY", "SKIP")
	if _, err := p.Exec(ctx); !errors.Is(err, ErrReplyMode) {
		t.Fatalf("pipelined CLIENT REPLY SKIP: %v", err)
	}
	// The whole CLIENT REPLY family is a connection-state command: even ON
	// is refused on the shared connections (a Client.Conn takes it).
	if err := c.Do(ctx, "CLIENT", "REPLY", "ON").Err(); !errors.Is(err, ErrConnState) {
		t.Fatalf("CLIENT REPLY ON: %v, want ErrConnState", err)
	}
	for i := range 40 {
		k := fmt.Sprintf("skip:%d", i)
		if err := c.Do(ctx, "SET", k, "v"+k).Err(); err != nil {
			t.Fatal(err)
		}
		if v, err := c.Do(ctx, "GET", k).Text(); err != nil || v != "v"+k {
			t.Fatalf("GET %s = %q, %v", k, v, err)
		}
	}
}
