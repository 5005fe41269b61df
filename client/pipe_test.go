package client

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/slotrouter/slotrouter/internal/redistest"
)

func testNode(t testing.TB, addr string, cfg *connConfig) *node {
	t.Helper()
	if cfg == nil {
		cfg = &connConfig{}
	}
	n := newNode(addr, cfg)
	t.Cleanup(n.close)
	return n
}

// do builds, sends and releases one command.
func do(ctx context.Context, n *node, args ...any) (Result, error) {
	cmd, err := newCommand(args)
	if err != nil {
		return errResult(err), err
	}
	defer cmd.release()
	return n.do(ctx, cmd, false)
}

func mustDo(t testing.TB, n *node, args ...any) Result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	r, err := do(ctx, n, args...)
	if err != nil {
		t.Fatalf("%v: %v", args, err)
	}
	return r
}

func TestPipeReplyTypes(t *testing.T) {
	srv := redistest.StartServer(t, redistest.ServerOptions{})
	n := testNode(t, srv.Addr, nil)
	cases := []struct {
		args []any
		want string
	}{
		{[]any{"SET", "k", "v\r\nx"}, `"OK"`},
		{[]any{"GET", "k"}, `"v\r\nx"`},
		{[]any{"GET", "missing"}, "(nil)"},
		{[]any{"INCRBY", "n", -5}, "(integer) -5"},
		{[]any{"RPUSH", "l", "a", "", 3}, "(integer) 3"},
		{[]any{"LRANGE", "l", 0, -1}, `["a", "", "3"]`},
		{[]any{"LRANGE", "nolist", 0, -1}, "[]"},
		{[]any{"INCRBYFLOAT", "f", 1.5}, `"1.5"`},
		{[]any{"GET", "l"}, "(error) WRONGTYPE Operation against a key holding the wrong kind of value"},
		{[]any{"BLPOP", "nolist", 0.01}, "(nil)"},
		{[]any{"MGET", "k", "missing", "l"}, `["v\r\nx", (nil), (nil)]`},
		{[]any{"EVAL", "return {1, {2, 'x'}, redis.error_reply('ERR inner')}", 0}, `[(integer) 1, [(integer) 2, "x"], (error) ERR inner]`},
		{[]any{"PING"}, `"PONG"`},
	}
	for _, c := range cases {
		r := mustDo(t, n, c.args...)
		if r.String() != c.want {
			t.Errorf("%v: got %s, want %s", c.args, r, c.want)
		}
	}
	r := mustDo(t, n, "GET", "l")
	if !errors.Is(r.Err(), ErrWrongType) {
		t.Errorf("WRONGTYPE kind: %v", r.Err())
	}
}

func TestPipeConcurrentCallersGetTheirOwnReplies(t *testing.T) {
	srv := redistest.StartServer(t, redistest.ServerOptions{})
	n := testNode(t, srv.Addr, nil)
	const goroutines, ops = 64, 1000
	var wg sync.WaitGroup
	errs := make(chan error, goroutines)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	for g := range goroutines {
		wg.Go(func() {
			key := fmt.Sprintf("ctr:%d", g)
			for i := range ops {
				var r Result
				var err error
				if i%10 == 9 {
					r, err = do(ctx, n, "GET", key)
				} else {
					r, err = do(ctx, n, "INCR", key)
				}
				if err != nil {
					errs <- err
					return
				}
				v, err := r.Int64()
				if err != nil || v != int64(i+1-(i+1)/10) {
					errs <- fmt.Errorf("goroutine %d op %d: got %s, want %d", g, i, r, i+1-(i+1)/10)
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
}

func TestPipeDoMultiOrderAndAsking(t *testing.T) {
	srv := redistest.StartServer(t, redistest.ServerOptions{})
	n := testNode(t, srv.Addr, nil)
	var cmds []*command
	var asking []bool
	for i := range 200 {
		var args []any
		switch i % 4 {
		case 0:
			args = []any{"SET", fmt.Sprint("m", i), i}
		case 1:
			args = []any{"GET", fmt.Sprint("m", i-1)}
		case 2:
			args = []any{"INCR", "multi:ctr"}
		default:
			args = []any{"NOSUCHCMD", i}
		}
		cmd, err := newCommand(args)
		if err != nil {
			t.Fatal(err)
		}
		defer cmd.release()
		cmds = append(cmds, cmd)
		asking = append(asking, i%3 == 0) // standalone refuses ASKING: the ack must still be consumed
	}
	out := make([]Result, len(cmds))
	if err := n.doMulti(context.Background(), cmds, out, asking); err != nil {
		t.Fatal(err)
	}
	for i, r := range out {
		var ok bool
		switch i % 4 {
		case 0:
			ok = r.String() == `"OK"`
		case 1:
			ok = r.String() == fmt.Sprintf("%q", fmt.Sprint(i-1))
		case 2:
			ok = r.String() == fmt.Sprintf("(integer) %d", i/4+1)
		default:
			ok = r.Kind() == KindError && strings.Contains(r.Err().Error(), "unknown command")
		}
		if !ok {
			t.Fatalf("result %d = %s", i, r)
		}
	}
	// Single calls with ASKING interleaved with plain ones stay matched.
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 200 {
				cmd, _ := newCommand([]any{"ECHO", fmt.Sprint(g, ":", i)})
				r, err := n.do(context.Background(), cmd, i%2 == 0)
				cmd.release()
				if s, _ := r.Text(); err != nil || s != fmt.Sprint(g, ":", i) {
					t.Errorf("g%d i%d: %s %v", g, i, r, err)
					return
				}
			}
		})
	}
	wg.Wait()
}

// overrun runs calls concurrent calls with the given deadline and returns
// how much later than its deadline the slowest returned, minus the same for
// as many goroutines that only wait for the deadline at the same time: what
// the transport adds on top of scheduling latency (which on a loaded 2-core
// CI box alone can exceed 10 ms). Commands are built first: only the
// transport is timed. Every call must fail with DeadlineExceeded.
func overrun(t *testing.T, n *node, calls int, timeout time.Duration, args func(i int) []any) time.Duration {
	t.Helper()
	cmds := make([]*command, calls)
	for i := range cmds {
		var err error
		if cmds[i], err = newCommand(args(i)); err != nil {
			t.Fatal(err)
		}
		defer cmds[i].release()
	}
	var worst, control atomic.Int64
	record := func(w *atomic.Int64, dl time.Time) {
		over := int64(time.Since(dl))
		for {
			old := w.Load()
			if over <= old || w.CompareAndSwap(old, over) {
				return
			}
		}
	}
	errs := make([]error, calls)
	var wg sync.WaitGroup
	for i := range calls {
		wg.Go(func() {
			ctx, cancel := context.WithTimeout(context.Background(), timeout)
			defer cancel()
			dl, _ := ctx.Deadline()
			_, errs[i] = n.do(ctx, cmds[i], false)
			record(&worst, dl)
		})
		wg.Go(func() {
			ctx, cancel := context.WithTimeout(context.Background(), timeout)
			defer cancel()
			dl, _ := ctx.Deadline()
			<-ctx.Done()
			record(&control, dl)
		})
	}
	wg.Wait()
	for _, err := range errs {
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("want DeadlineExceeded, got %v", err)
		}
	}
	t.Logf("%d calls, %v deadline: worst overrun %v, control %v", calls, timeout, time.Duration(worst.Load()), time.Duration(control.Load()))
	return time.Duration(worst.Load() - control.Load())
}

// bestOf repeats a timing measurement: a transport that really blocks past
// deadlines fails every round, while a scheduler hiccup only spoils one.
func bestOf(rounds int, measure func() time.Duration) time.Duration {
	best := time.Duration(1<<63 - 1)
	for range rounds {
		if d := measure(); d < best {
			best = d
		}
		if best < 10*time.Millisecond {
			break
		}
	}
	return best
}

func TestPipeDeadlineWhileServerStopped(t *testing.T) {
	srv := redistest.StartServer(t, redistest.ServerOptions{})
	n := testNode(t, srv.Addr, &connConfig{HealthTimeout: 30 * time.Second})
	mustDo(t, n, "PING")
	srv.Stop()
	stopped := true
	defer func() {
		if stopped {
			srv.Cont()
		}
	}()

	extra := bestOf(3, func() time.Duration {
		return overrun(t, n, 200, 100*time.Millisecond, func(i int) []any { return []any{"GET", fmt.Sprint("k", i)} })
	})
	if extra > 10*time.Millisecond {
		t.Errorf("server stopped: calls overran their deadline by %v more than idle waiters", extra)
	}

	// Now make writes block too: 64 MiB of requests overflow the socket
	// buffers of a stopped server. Callers must still leave on time.
	p := n.pipes[0].Load()
	big := strings.Repeat("x", 1<<20)
	extra = bestOf(3, func() time.Duration {
		return overrun(t, n, 64, 150*time.Millisecond, func(i int) []any { return []any{"SET", fmt.Sprint("big", i), big} })
	})
	if extra > 10*time.Millisecond {
		t.Errorf("blocked writes: calls overran their deadline by %v more than idle waiters", extra)
	}
	if p.handovers.Load() == 0 {
		t.Error("writes never blocked: the test did not exercise the blocked-write path")
	}

	srv.Cont()
	stopped = false
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	r, err := do(ctx, n, "SET", "after", "cont")
	if err != nil || r.String() != `"OK"` {
		t.Fatalf("after SIGCONT: %s %v", r, err)
	}
	if n.pipes[0].Load() != p {
		t.Fatal("pipe was replaced: the abandoned requests were not delivered")
	}
	// Abandoned requests that had started out were written whole (the
	// in-flight bound kept the rest from being queued at all).
	written := 0
	for i := range 64 {
		r := mustDo(t, n, "STRLEN", fmt.Sprint("big", i))
		switch r.num {
		case 1 << 20:
			written++
		case 0:
		default:
			t.Errorf("abandoned write big%d delivered torn: %s", i, r)
		}
	}
	if written == 0 {
		t.Error("no abandoned write was delivered: the blocked-write path was not exercised")
	}
}

func TestPipeHealthTimeoutClosesHungPipe(t *testing.T) {
	srv := redistest.StartServer(t, redistest.ServerOptions{})
	const health = 300 * time.Millisecond
	n := testNode(t, srv.Addr, &connConfig{HealthTimeout: health})
	mustDo(t, n, "PING")
	srv.Stop()
	start := time.Now()
	_, err := do(context.Background(), n, "GET", "k") // no deadline: only health can end it
	took := time.Since(start)
	srv.Cont()
	var ce *ConnError
	if !errors.As(err, &ce) || ce.Op != "health" || !ce.Sent || !ce.Timeout() {
		t.Fatalf("want health ConnError with Sent, got %#v", err)
	}
	t.Logf("hung pipe closed after %v (health timeout %v)", took, health)
	// Detection granularity is health/8; the upper bound is loose because
	// timers fire late on a loaded 2-core CI box.
	if took < health || took > health+3*time.Second {
		t.Errorf("closed after %v, want within [%v, %v]", took, health, health+3*time.Second)
	}
	if n.lastError() == nil {
		t.Error("lastError not recorded")
	}
	if r := mustDo(t, n, "PING"); r.String() != `"PONG"` {
		t.Errorf("replacement pipe: %s", r)
	}
	if e := n.lastError(); e != nil {
		t.Errorf("lastError not cleared after redial: %v", e)
	}
}

func TestPipeKilledServerSentBits(t *testing.T) {
	srv := redistest.StartServer(t, redistest.ServerOptions{})
	n := testNode(t, srv.Addr, &connConfig{HealthTimeout: 20 * time.Second})
	mustDo(t, n, "PING")
	inflight := make(chan error, 1)
	go func() {
		// Blocks server-side, so it is surely outstanding when we kill.
		_, err := do(context.Background(), n, "BLPOP", "nolist", 10)
		inflight <- err
	}()
	deadline := time.Now().Add(5 * time.Second)
	for n.outstanding() == 0 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	srv.Kill()
	var ce *ConnError
	select {
	case err := <-inflight:
		if !errors.As(err, &ce) || !ce.Sent || ce.Op != "read" {
			t.Fatalf("in-flight call: want read ConnError Sent=true, got %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("in-flight call did not fail after the server died")
	}
	// The next calls re-dial: refused, so definitely not sent.
	_, err := do(context.Background(), n, "SET", "k", "v")
	if !errors.As(err, &ce) || ce.Sent || ce.Op != "dial" {
		t.Fatalf("after kill: want dial ConnError Sent=false, got %v", err)
	}
}

func TestPipeCallsAfterCloseAreNotSent(t *testing.T) {
	srv := redistest.StartServer(t, redistest.ServerOptions{})
	n := testNode(t, srv.Addr, nil)
	mustDo(t, n, "PING")
	p := n.pipes[0].Load()
	p.fail("read", errors.New("injected"))
	cmd, _ := newCommand([]any{"SET", "x", "1"})
	defer cmd.release()
	_, err := p.do(context.Background(), cmd, false)
	var ce *ConnError
	if !errors.As(err, &ce) || ce.Sent {
		t.Fatalf("want Sent=false on a closed pipe, got %v", err)
	}
	// The node replaces the broken pipe transparently.
	if r := mustDo(t, n, "SET", "x", "2"); r.String() != `"OK"` {
		t.Fatalf("node after broken pipe: %s", r)
	}
}
