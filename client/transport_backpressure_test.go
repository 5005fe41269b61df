package client

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/slotrouter/slotrouter/internal/redistest"
)

// Callers that time out while a node is slow used to leave their requests
// queued: they were written and run later, and the backlog kept fresh calls
// failing long after the node recovered. With the in-flight bound, callers
// over it wait without queuing anything; those that leave were never sent,
// so the node runs only what was in flight and the next call is served as
// soon as the node is free.
func TestAbandonedRequestsAreNotRun(t *testing.T) {
	srv := redistest.StartServer(t, redistest.ServerOptions{})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	const bound = 8
	c := standaloneClient(t, srv, Options{MaxInflight: bound})
	if err := c.Do(ctx, "SET", "ab:n", 0).Err(); err != nil {
		t.Fatal(err)
	}
	// The script goes first on the client's own connection, so every call
	// after it queues behind it whenever the server starts running it.
	const busy = 800 * time.Millisecond
	scriptDone := make(chan error, 1)
	go func() {
		bctx, bcancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer bcancel()
		scriptDone <- c.Do(bctx, busyArgs(busy, "x")...).Err()
	}()
	p := c.node(srv.Addr).pipes[0].Load()
	if !pollUntil(5*time.Second, func() bool { return p.slowOut.Load() == 1 && p.sent.Load() > p.done.Load() }) {
		t.Fatal("the script was never sent")
	}
	const callers = 100
	const dl = 150 * time.Millisecond
	sc := startSchedClock()
	var wg sync.WaitGroup
	errs := make([]error, callers)
	overs := make([]time.Duration, callers)
	for i := range callers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			cctx, ccancel := context.WithTimeout(context.Background(), dl)
			defer ccancel()
			deadline, _ := cctx.Deadline()
			errs[i] = c.Do(Idempotent(cctx), "INCR", "ab:n").Err()
			overs[i] = time.Since(deadline)
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("caller %d: want its deadline while the node is busy, got %v", i, err)
		}
		checkOverrun(t, fmt.Sprint("caller ", i), overs[i], sc)
	}
	if err := <-scriptDone; err != nil {
		t.Fatalf("script: %v", err)
	}
	start := time.Now()
	got, err := c.Do(ctx, "GET", "ab:n").Int64()
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%d callers timed out; %d of their INCRs ran (bound %d, the script took one); next GET took %v", callers, got, bound, time.Since(start))
	if got > bound-1 {
		t.Fatalf("%d INCRs ran although only %d may be in flight: abandoned requests were sent", got, bound-1)
	}
}

// gatedProxy forwards TCP between a client and target, with small socket
// buffers towards the client and a gate: while closed, nothing the client
// sends is read, so its writes back up after a few tens of KB (a node too
// busy to read, without the megabytes a kernel buffers for a stopped one).
func gatedProxy(t *testing.T, target string) (addr string, gate *sync.Mutex) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	gate = new(sync.Mutex)
	var conns sync.WaitGroup
	t.Cleanup(func() { _ = ln.Close(); conns.Wait() })
	go func() {
		for {
			in, err := ln.Accept()
			if err != nil {
				return
			}
			_ = in.(*net.TCPConn).SetReadBuffer(16 << 10)
			out, err := net.Dial("tcp", target)
			if err != nil {
				_ = in.Close()
				continue
			}
			conns.Add(2)
			go func() { defer conns.Done(); _, _ = io.Copy(in, out); _ = in.Close() }()
			go func() {
				defer conns.Done()
				defer out.Close()
				buf := make([]byte, 16<<10)
				for {
					gate.Lock()
					gate.Unlock() //nolint:staticcheck // a gate, not a critical section
					n, err := in.Read(buf)
					if n > 0 {
						if _, werr := out.Write(buf[:n]); werr != nil {
							return
						}
					}
					if err != nil {
						return
					}
				}
			}()
			t.Cleanup(func() { _ = in.Close(); _ = out.Close() })
		}
	}()
	return ln.Addr().String(), gate
}

// A request still in the write buffer when its caller leaves is cut out
// before it goes out. The node stops reading, so the socket fills up and the
// requests behind pile up in the buffer; once it reads again, only what had
// reached the socket runs.
func TestAbandonedRequestsDroppedFromWriteBuffer(t *testing.T) {
	n, gate := gatedNode(t)
	val := strings.Repeat("v", bigRequest-100) // under bigRequest: copied into the buffer
	const calls = 200                          // ~3 MB, far more than the sockets hold
	gate.Lock()
	sc := startSchedClock()
	var mu sync.Mutex
	var worst time.Duration
	var failed []error
	timedSets(n, "wb", val, calls, func(err error, over time.Duration) {
		mu.Lock()
		worst = max(worst, over)
		// One read in progress as the gate closed may forward a SET.
		if err != nil && !errors.Is(err, context.DeadlineExceeded) && len(failed) < 5 {
			failed = append(failed, err)
		}
		mu.Unlock()
	})()
	gate.Unlock()
	if len(failed) > 0 {
		t.Fatalf("want each SET to time out (or succeed) while the node reads nothing: %v", failed)
	}
	checkOverrun(t, "the latest SET", worst, sc)
	// Wait until the pipe has written and read everything it kept.
	p := n.pipes[0].Load()
	ran, dropped := drainedCounts(t, n, p)
	t.Logf("%d SETs timed out: %d ran (their bytes had left), %d were cut from the write buffer", calls, ran, dropped)
	if dropped == 0 || ran+dropped != calls {
		t.Fatalf("ran %d + dropped %d, want %d with some dropped", ran, dropped, calls)
	}
}

// The same when every request is queued before the first Write: one Write
// used to take them all, so a request far behind what the socket could
// hold still went out, after its caller had left. A Write now takes at
// most maxWriteChunk of small requests, and what stays behind is cut.
func TestAbandonedRequestsDroppedWhenQueuedAtOnce(t *testing.T) {
	n, gate := gatedNode(t)
	p := n.pipes[0].Load()
	val := strings.Repeat("v", bigRequest-100)
	const calls = 200
	gate.Lock()
	// Hold the flushing role, so every caller only queues.
	p.mu.Lock()
	p.flushing = true
	p.mu.Unlock()
	wait := timedSets(n, "once", val, calls, func(error, time.Duration) {})
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(time.Millisecond) {
		p.mu.Lock()
		queued := p.unflushed
		p.mu.Unlock()
		if queued == calls {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d requests queued", queued, calls)
		}
	}
	go p.flush(time.Time{}) // the role's holder writes, as a caller would
	wait()                  // every caller has left
	gate.Unlock()
	ran, dropped := drainedCounts(t, n, p)
	t.Logf("%d SETs queued at once, all timed out: %d ran, %d were cut from the write buffer", calls, ran, dropped)
	// What one Write takes plus what the sockets and the gate's one read
	// in progress hold (under 256 KB with these buffer sizes): far from
	// all 200.
	if limit := int64((maxWriteChunk+256<<10)/len(val)) + 1; ran > limit || ran+dropped != calls {
		t.Fatalf("ran %d + dropped %d, want %d with at most %d run", ran, dropped, calls, limit)
	}
}

// drainedCounts waits until p has written and read everything it kept, then
// says how many requests ran on the node (its DBSIZE) and how many p cut
// from its write buffer.
func drainedCounts(t *testing.T, n *node, p *pipe) (ran, dropped int64) {
	t.Helper()
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		p.mu.Lock()
		idle := len(p.queue) == 0 && !p.flushing
		p.mu.Unlock()
		if idle && p.sent.Load() == p.done.Load() {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the pipe never drained")
		}
	}
	return mustDo(t, n, "DBSIZE").num, p.dropped.Load()
}

// gatedNode is a node behind gatedProxy whose socket holds little (16 KB
// send buffer), so a closed gate soon leaves requests in the write buffer.
func gatedNode(t *testing.T) (*node, *sync.Mutex) {
	t.Helper()
	srv := redistest.StartServer(t, redistest.ServerOptions{})
	addr, gate := gatedProxy(t, srv.Addr)
	dial := func(ctx context.Context, network, addr string) (net.Conn, error) {
		conn, err := (&net.Dialer{}).DialContext(ctx, network, addr)
		if err == nil {
			err = conn.(*net.TCPConn).SetWriteBuffer(16 << 10)
		}
		return conn, err
	}
	n := testNode(t, addr, &connConfig{HealthTimeout: 30 * time.Second, Dial: dial})
	mustDo(t, n, "PING")
	return n, gate
}

// timedSets starts calls SETs of val (keys prefix:i), each on its own
// goroutine under a 300 ms deadline, and reports each one's error and how
// long after its deadline it returned. wait blocks until all have.
func timedSets(n *node, prefix, val string, calls int, report func(err error, over time.Duration)) (wait func()) {
	var wg sync.WaitGroup
	for i := range calls {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
			defer cancel()
			deadline, _ := ctx.Deadline()
			_, err := do(ctx, n, "SET", fmt.Sprintf("%s:%d", prefix, i), val)
			report(err, time.Since(deadline))
		}()
	}
	return wg.Wait
}
