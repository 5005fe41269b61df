package client

import (
	"context"
	"errors"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/slotrouter/slotrouter/internal/redistest"
)

func TestNodeAuthAndSetup(t *testing.T) {
	srv := redistest.StartServer(t, redistest.ServerOptions{Password: "s3cret"})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	// Password only, plus a client name: both go in the setup round trip.
	n := testNode(t, srv.Addr, &connConfig{Password: "s3cret", ClientName: "slotrouter-test"})
	if r := mustDo(t, n, "CLIENT", "GETNAME"); r.String() != `"slotrouter-test"` {
		t.Errorf("CLIENT GETNAME = %s", r)
	}

	// An ACL user.
	if _, err := srv.Do(ctx, "ACL", "SETUSER", "app", "on", ">apppw", "~*", "+@all"); err != nil {
		t.Fatal(err)
	}
	n = testNode(t, srv.Addr, &connConfig{Username: "app", Password: "apppw"})
	if r := mustDo(t, n, "ACL", "WHOAMI"); r.String() != `"app"` {
		t.Errorf("ACL WHOAMI = %s", r)
	}

	// Wrong password: a typed setup error carrying the server's reply, and
	// nothing was sent.
	for _, cfg := range []*connConfig{{Password: "wrong"}, {Username: "app", Password: "wrong"}} {
		n = testNode(t, srv.Addr, cfg)
		_, err := do(ctx, n, "PING")
		var ce *ConnError
		var re *Error
		if !errors.As(err, &ce) || ce.Op != "setup" || ce.Sent || !errors.As(err, &re) || !errors.Is(err, ErrWrongPass) {
			t.Fatalf("wrong password: got %v", err)
		}
		if !strings.HasPrefix(re.Error(), "WRONGPASS") {
			t.Errorf("server text lost: %q", re.Error())
		}
	}

	// No credentials: commands get NOAUTH as a reply, not a transport error.
	n = testNode(t, srv.Addr, nil)
	if r := mustDo(t, n, "GET", "k"); !errors.Is(r.Err(), ErrNoAuth) {
		t.Errorf("no auth: %s", r)
	}

	// READONLY on a non-cluster server fails the setup with the server's error.
	n = testNode(t, srv.Addr, &connConfig{Password: "s3cret", ReadOnly: true})
	_, err := do(ctx, n, "PING")
	var re *Error
	if !errors.As(err, &re) || !strings.Contains(re.Error(), "cluster support disabled") {
		t.Errorf("READONLY on standalone: %v", err)
	}
}

// Callers waiting on another caller's dial leave on their own ctx (rueidis
// waiters do not), and a dial is shared, not repeated.
func TestNodeSharedDialHonoursEachCtx(t *testing.T) {
	srv := redistest.StartServer(t, redistest.ServerOptions{})
	var dials atomic.Int32
	release := make(chan struct{})
	cfg := &connConfig{Dial: func(ctx context.Context, network, addr string) (net.Conn, error) {
		dials.Add(1)
		select {
		case <-release:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		var d net.Dialer
		return d.DialContext(ctx, network, addr)
	}}
	n := testNode(t, srv.Addr, cfg)

	var wg sync.WaitGroup
	var worst atomic.Int64
	for range 20 {
		wg.Go(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
			defer cancel()
			_, err := do(ctx, n, "PING")
			dl, _ := ctx.Deadline()
			if over := int64(time.Since(dl)); over > worst.Load() {
				worst.Store(over)
			}
			if !errors.Is(err, context.DeadlineExceeded) {
				t.Errorf("waiter: %v", err)
			}
		})
	}
	// A patient caller keeps waiting on the same dial and gets the pipe.
	patient := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		r, err := do(ctx, n, "PING")
		if err == nil && r.String() != `"PONG"` {
			err = errors.New(r.String())
		}
		patient <- err
	}()
	wg.Wait()
	t.Logf("dial waiters: worst overrun %v", time.Duration(worst.Load()))
	if time.Duration(worst.Load()) > 100*time.Millisecond {
		t.Errorf("waiters stayed %v past their deadline", time.Duration(worst.Load()))
	}
	close(release)
	if err := <-patient; err != nil {
		t.Fatal(err)
	}
	if d := dials.Load(); d != 1 {
		t.Errorf("%d dials, want 1 shared", d)
	}
}

func TestNodeDialFailureBackoff(t *testing.T) {
	var dials atomic.Int32
	refused := errors.New("connection refused (test)")
	cfg := &connConfig{Dial: func(ctx context.Context, network, addr string) (net.Conn, error) {
		dials.Add(1)
		return nil, refused
	}}
	n := testNode(t, "127.0.0.1:1", cfg)
	ctx := context.Background()
	start := time.Now()
	for range 100 {
		_, err := do(ctx, n, "GET", "k")
		var ce *ConnError
		if !errors.As(err, &ce) || ce.Sent || ce.Op != "dial" || !errors.Is(err, refused) {
			t.Fatalf("want dial ConnError Sent=false, got %v", err)
		}
	}
	if d := dials.Load(); time.Since(start) < dialBackoff && d != 1 {
		t.Errorf("%d dials within the back-off window, want 1", d)
	}
	if n.lastError() == nil || n.lastErrorAt().IsZero() {
		t.Error("lastError not recorded")
	}
	time.Sleep(2 * dialBackoff)
	_, _ = do(ctx, n, "GET", "k")
	if dials.Load() < 2 {
		t.Error("no re-dial after the back-off window")
	}
}

func TestNodeDedicatedBlockingCommands(t *testing.T) {
	srv := redistest.StartServer(t, redistest.ServerOptions{})
	n := testNode(t, srv.Addr, nil)
	mustDo(t, n, "PING")

	// A BLPOP with a deadline returns at the deadline while the shared pipe
	// keeps serving other commands meanwhile.
	blpop, _ := newCommand([]any{"BLPOP", "queue", 0})
	defer blpop.release()
	type outcome struct {
		err  error
		over time.Duration
	}
	done := make(chan outcome, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_, err := n.doDedicated(ctx, blpop)
		dl, _ := ctx.Deadline()
		done <- outcome{err, time.Since(dl)}
	}()
	for range 20 {
		mustDo(t, n, "INCR", "other")
	}
	select {
	case <-done:
		t.Fatal("other commands waited for the BLPOP")
	default:
	}
	o := <-done
	if !errors.Is(o.err, context.DeadlineExceeded) {
		t.Fatalf("BLPOP: %v", o.err)
	}
	t.Logf("BLPOP overran its deadline by %v", o.over)
	if o.over > 100*time.Millisecond {
		t.Errorf("BLPOP overran by %v", o.over)
	}
	n.mu.Lock()
	idle := len(n.idle)
	n.mu.Unlock()
	if idle != 0 {
		t.Error("a connection that hit its deadline went back to the pool")
	}

	// A served BLPOP returns the value and its connection is reused.
	pushed := make(chan struct{})
	go func() {
		defer close(pushed)
		time.Sleep(50 * time.Millisecond)
		mustDo(t, n, "RPUSH", "queue", "job1")
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	r, err := n.doDedicated(ctx, blpop)
	if err != nil || r.String() != `["queue", "job1"]` {
		t.Fatalf("BLPOP served: %s %v", r, err)
	}
	<-pushed // its reply may come after the BLPOP's: the node must outlive it
	n.mu.Lock()
	idle = len(n.idle)
	n.mu.Unlock()
	if idle != 1 {
		t.Errorf("idle dedicated conns = %d, want 1", idle)
	}

	// MULTI/EXEC on a dedicated connection.
	var cmds []*command
	for _, args := range [][]any{{"MULTI"}, {"SET", "tx", "1"}, {"INCR", "tx"}, {"EXEC"}} {
		c, _ := newCommand(args)
		defer c.release()
		cmds = append(cmds, c)
	}
	out := make([]Result, len(cmds))
	if err := n.doDedicatedMulti(ctx, cmds, out); err != nil {
		t.Fatal(err)
	}
	if out[3].String() != `["OK", (integer) 2]` {
		t.Errorf("EXEC = %s", out[3])
	}
}

func TestNodeClose(t *testing.T) {
	srv := redistest.StartServer(t, redistest.ServerOptions{})
	n := newNode(srv.Addr, &connConfig{})
	mustDo(t, n, "PING")
	n.close()
	_, err := do(context.Background(), n, "PING")
	var ce *ConnError
	if !errors.As(err, &ce) || ce.Sent || !errors.Is(err, net.ErrClosed) {
		t.Fatalf("after close: %v", err)
	}
}

// The full path a client call takes: encode, send on the shared pipe, read,
// release. GET of a 16-byte value may allocate only the value itself.
func TestNodeAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts are meaningless under -race")
	}
	srv := redistest.StartServer(t, redistest.ServerOptions{})
	n := testNode(t, srv.Addr, nil)
	key, val := "alloc:key", "0123456789abcdef"
	mustDo(t, n, "SET", key, val)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	measure := func(args ...any) float64 {
		return testing.AllocsPerRun(2000, func() {
			cmd, err := newCommand(args)
			if err != nil {
				t.Fatal(err)
			}
			r, err := n.do(ctx, cmd, false)
			cmd.release()
			if err != nil || r.Err() != nil {
				t.Fatalf("%v: %s %v", args, r, err)
			}
		})
	}
	get := measure("GET", key)
	set := measure("SET", key, val)
	ping := measure("PING")
	t.Logf("allocs/op: GET %v, SET %v, PING %v", get, set, ping)
	if get > 1 {
		t.Errorf("GET allocs = %v, want <= 1", get)
	}
	if set > 0 || ping > 0 {
		t.Errorf("SET allocs = %v, PING allocs = %v, want 0", set, ping)
	}
}
