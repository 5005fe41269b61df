package client

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/slotrouter/slotrouter/internal/redistest"
)

// A lone caller reads its own reply: no background reader is ever started,
// which is what saves the second wake-up per call.
func TestPipeLoneCallerReadsItself(t *testing.T) {
	srv := redistest.StartServer(t, redistest.ServerOptions{})
	n := testNode(t, srv.Addr, nil)
	for i := range 200 {
		if r := mustDo(t, n, "SET", "k", i); r.String() != `"OK"` {
			t.Fatalf("SET: %s", r)
		}
		// A ctx without a deadline, too: no read deadline at all.
		r, err := do(context.Background(), n, "GET", "k")
		if err != nil || r.String() != fmt.Sprintf("%q", fmt.Sprint(i)) {
			t.Fatalf("GET: %s %v", r, err)
		}
	}
	if b := n.pipes[0].Load().bgReaders.Load(); b != 0 {
		t.Errorf("%d background readers started for one sequential caller, want 0", b)
	}

	// Concurrent callers hand reading over to a background reader and
	// still get their own replies (the heavier version is
	// TestPipeConcurrentCallersGetTheirOwnReplies).
	var wg sync.WaitGroup
	for g := range 16 {
		wg.Go(func() {
			for i := range 200 {
				key := fmt.Sprint("c", g)
				r := mustDo(t, n, "INCR", key)
				if v, _ := r.Int64(); v != int64(i+1) {
					t.Errorf("goroutine %d: INCR gave %s, want %d", g, r, i+1)
					return
				}
			}
		})
	}
	wg.Wait()
}

// fakeServer accepts one connection and runs script on it.
func fakeServer(t *testing.T, script func(c net.Conn, r *bufio.Reader) error) (addr string, done <-chan error) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ln.Close() })
	ch := make(chan error, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			ch <- err
			return
		}
		defer c.Close()
		ch <- script(c, bufio.NewReader(c))
	}()
	return ln.Addr().String(), ch
}

// readRequest consumes one RESP array request and returns its arguments.
func readRequest(r *bufio.Reader) ([]string, error) {
	line, err := r.ReadString('\n')
	if err != nil {
		return nil, err
	}
	var n int
	if _, err := fmt.Sscanf(line, "*%d\r\n", &n); err != nil {
		return nil, fmt.Errorf("bad request header %q", line)
	}
	args := make([]string, 0, n)
	for range n {
		if _, err := r.ReadString('\n'); err != nil { // $len
			return nil, err
		}
		a, err := r.ReadString('\n')
		if err != nil {
			return nil, err
		}
		args = append(args, strings.TrimSuffix(a, "\r\n"))
	}
	return args, nil
}

// A caller reading its own reply leaves at its deadline even when half the
// reply has arrived; the half it parsed stays parsed, the background reader
// resumes the reply from there and throws it away, and the next call gets
// its own reply: the stream stays in step.
func TestPipeCallerLeavesMidReplyInStep(t *testing.T) {
	release := make(chan struct{})
	addr, done := fakeServer(t, func(c net.Conn, r *bufio.Reader) error {
		if _, err := readRequest(r); err != nil {
			return err
		}
		// Half of a 10-byte bulk, then nothing until the caller left.
		if _, err := io.WriteString(c, "$10\r\n01234"); err != nil {
			return err
		}
		<-release
		if _, err := io.WriteString(c, "56789\r\n"); err != nil {
			return err
		}
		args, err := readRequest(r)
		if err != nil {
			return err
		}
		_, err = io.WriteString(c, "$"+fmt.Sprint(len(args[1]))+"\r\n"+args[1]+"\r\n")
		return err
	})
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	p := newPipe(addr, conn, newRespReader(conn), &connConfig{HealthTimeout: 30 * time.Second}, nil)
	defer p.close()

	sc := startSchedClock()
	ctx, cancel := context.WithTimeout(context.Background(), 150*time.Millisecond)
	defer cancel()
	dl, _ := ctx.Deadline()
	cmd := mustCommand(t, "GET", "a")
	_, err = p.do(ctx, cmd, false)
	late := time.Since(dl)
	cmd.release()
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("want DeadlineExceeded, got %v", err)
	}
	checkOverrun(t, "the caller leaving mid-reply", late, sc)
	close(release)

	ctx2, cancel2 := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel2()
	cmd = mustCommand(t, "ECHO", "next")
	defer cmd.release()
	r, err := p.do(ctx2, cmd, false)
	if err != nil || r.String() != `"next"` {
		t.Fatalf("call after the abandoned one: %s %v (stream out of step?)", r, err)
	}
	if p.bgReaders.Load() == 0 {
		t.Error("no background reader took over the abandoned reply")
	}
	if err := <-done; err != nil {
		t.Fatalf("fake server: %v", err)
	}
}

// A caller reading under a cancellable ctx without a deadline notices the
// cancellation within a few polls, even though the server never answers.
func TestPipeCallerReaderSeesCancel(t *testing.T) {
	stop := make(chan struct{})
	addr, _ := fakeServer(t, func(c net.Conn, r *bufio.Reader) error {
		_, err := readRequest(r)
		<-stop
		return err
	})
	defer close(stop)
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	p := newPipe(addr, conn, newRespReader(conn), &connConfig{HealthTimeout: 30 * time.Second}, nil)
	defer p.close()
	ctx, cancel := context.WithCancel(context.Background())
	cancelled := make(chan time.Time, 1)
	time.AfterFunc(100*time.Millisecond, func() { cancelled <- time.Now(); cancel() })
	cmd := mustCommand(t, "GET", "a")
	defer cmd.release()
	_, err = p.do(ctx, cmd, false)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("want Canceled, got %v", err)
	}
	if late := time.Since(<-cancelled); late > 200*time.Millisecond {
		t.Errorf("returned %v after the cancellation", late)
	}
}

// deadlineOnce delivers data in two parts with a deadline error between.
type deadlineOnce struct {
	parts []string
	fired bool
}

func (d *deadlineOnce) Read(b []byte) (int, error) {
	if len(d.parts) == 0 {
		return 0, io.EOF
	}
	if len(d.parts) == 1 && !d.fired {
		d.fired = true
		return 0, os.ErrDeadlineExceeded
	}
	n := copy(b, d.parts[0])
	d.parts[0] = d.parts[0][n:]
	if d.parts[0] == "" {
		d.parts = d.parts[1:]
	}
	return n, nil
}

// flaky times out before every read of real data, the way a caller reading
// with a short deadline sees a slow reply: chunk bytes, then a timeout.
type flaky struct {
	data  []byte
	chunk int
	tick  bool
	reads int
}

func (f *flaky) Read(b []byte) (int, error) {
	f.reads++
	if f.tick = !f.tick; f.tick {
		return 0, os.ErrDeadlineExceeded
	}
	if len(f.data) == 0 {
		return 0, io.EOF
	}
	n := copy(b[:min(len(b), f.chunk)], f.data)
	f.data = f.data[n:]
	return n, nil
}

// readPast reads one reply from rd, reading again after each timeout a
// flaky reader injects, at most tries times; timeouts is how many it met.
func readPast(rd *respReader, tries int) (r Result, timeouts int, err error) {
	for range tries {
		if r, err = rd.readReply(); !errors.Is(err, os.ErrDeadlineExceeded) {
			return r, timeouts, err
		}
		timeouts++
	}
	return r, timeouts, err
}

// A reply cut by a timeout at any byte resumes where it stopped: the parse
// finishes whatever the deadlines, each byte is read once, and the reply is
// the same as without timeouts. (Before, the reader rewound to the reply's
// first byte on every timeout, so a reply whose prefix took longer than one
// deadline to re-parse never finished.)
func TestRespReaderResumesAfterTimeout(t *testing.T) {
	big := strings.Repeat("x", 12*readBufSize) // longer than the buffer: read straight into its string
	var sb strings.Builder
	const elems = 20000
	fmt.Fprintf(&sb, "*%d\r\n", elems+3)
	sb.WriteString("$3\r\nabc\r\n$" + fmt.Sprint(len(big)) + "\r\n" + big + "\r\n")
	sb.WriteString("*2\r\n:7\r\n%1\r\n+k\r\n$1\r\nv\r\n")
	for i := range elems {
		v := fmt.Sprint("value:", i)
		fmt.Fprintf(&sb, "$%d\r\n%s\r\n", len(v), v)
	}
	in := sb.String() + "+OK\r\n"
	for _, chunk := range []int{1, 7, 4096} {
		f := &flaky{data: []byte(in), chunk: chunk}
		rd := newRespReader(f)
		r, timeouts, err := readPast(rd, 4*len(in)+8)
		if err != nil {
			t.Fatalf("chunk %d: %v", chunk, err)
		}
		arr := r.arr
		if len(arr) != elems+3 || arr[0].str != "abc" || arr[1].str != big || arr[2].String() != `[(integer) 7, ["k", "v"]]` {
			t.Fatalf("chunk %d: reply wrong: %d elements", chunk, len(arr))
		}
		for i := range elems {
			if want := fmt.Sprint("value:", i); arr[3+i].str != want {
				t.Fatalf("chunk %d: element %d = %q, want %q", chunk, i, arr[3+i].str, want)
			}
		}
		r, _, err = readPast(rd, 4*len(in)+8)
		if err != nil || r.String() != `"OK"` {
			t.Fatalf("chunk %d: next reply: %s %v", chunk, r, err)
		}
		// Linear work: at most two reads (one timeout, one chunk) per
		// chunk of input, whatever the number of timeouts.
		if maxReads := 2*(len(in)/chunk+1) + 8; f.reads > maxReads || timeouts == 0 {
			t.Errorf("chunk %d: %d reads, %d timeouts for %d bytes (want <= %d reads)", chunk, f.reads, timeouts, len(in), maxReads)
		}
		if got := rd.progress.Load(); got != int64(len(in)) {
			t.Errorf("chunk %d: progress %d, want %d", chunk, got, len(in))
		}
	}
}

// A reply that would hold more than the cap fails with the typed error,
// whether its bytes are one bulk or many small elements (each element costs
// a Result, so a reply of tiny integers cannot amplify past the cap).
func TestRespReaderReplyCap(t *testing.T) {
	const limit = 1 << 20
	many := "*200000\r\n" + strings.Repeat(":1\r\n", 200000)
	for _, in := range []string{
		"$" + fmt.Sprint(limit+1) + "\r\n" + strings.Repeat("x", limit+1) + "\r\n",
		many,
		"*2\r\n$600000\r\n" + strings.Repeat("y", 600000) + "\r\n$600000\r\n" + strings.Repeat("y", 600000) + "\r\n",
	} {
		rd := newRespReader(strings.NewReader(in))
		rd.limit = limit
		_, err := rd.readReply()
		var te *ReplyTooLargeError
		if !errors.Is(err, ErrReplyTooLarge) || !errors.As(err, &te) || te.Limit != limit {
			t.Errorf("%.20q: want ErrReplyTooLarge, got %v", in, err)
		}
	}
	// Under the cap the same shapes read fine.
	rd := newRespReader(strings.NewReader(many))
	if r, err := rd.readReply(); err != nil || len(r.arr) != 200000 {
		t.Fatalf("default cap: %d elements, %v", len(r.arr), err)
	}
}

// A server that restarted while the pipe sat idle is noticed before the
// next request is written: the request fails as not sent and node.do
// retries it on a fresh connection, so even a write goes through.
func TestPipeIdlePeerCloseIsNotSent(t *testing.T) {
	srv := redistest.StartServer(t, redistest.ServerOptions{})
	n := testNode(t, srv.Addr, &connConfig{HealthTimeout: 30 * time.Second})
	mustDo(t, n, "PING") // under a deadline
	old := n.pipes[0].Load()
	// An idle, healthy pipe passes the check and is kept.
	time.Sleep(2 * probeAfter)
	mustDo(t, n, "PING")
	if n.pipes[0].Load() != old || old.broken.Load() {
		t.Fatal("a healthy idle pipe was closed by the idle check")
	}
	srv.Restart(t)
	time.Sleep(2 * probeAfter)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	r, err := do(ctx, n, "SET", "after", "restart")
	if err != nil || r.String() != `"OK"` {
		t.Fatalf("SET after the server restarted: %s %v", r, err)
	}
	if n.pipes[0].Load() == old {
		t.Error("the dead pipe was not replaced")
	}
}

// A caller waiting under a cancellable ctx for a slow reply is not woken
// before it (it used to be, by a first 2 ms cancellation poll), and a
// cancellation still interrupts the read at once. The pipe's next readers,
// with or without a deadline, are not hit by a read deadline the watch left
// behind.
func TestSlowReplyDoesNotWakeCaller(t *testing.T) {
	n, p := servedPipe(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	w0 := p.wakes.Load()
	r, err := do(ctx, n, busyArgs(300*time.Millisecond, "slow")...)
	if s, _ := r.Text(); err != nil || s != "slow" {
		t.Fatalf("300 ms script under a 10 s deadline: %v %v", r, err)
	}
	if w := p.wakes.Load() - w0; w != 0 {
		t.Errorf("a 300 ms reply woke its caller %d times before it came, want 0", w)
	}

	cctx, ccancel := context.WithCancel(context.Background())
	cancelled := make(chan time.Time, 1)
	time.AfterFunc(100*time.Millisecond, func() { cancelled <- time.Now(); ccancel() })
	_, err = do(cctx, n, busyArgs(500*time.Millisecond, "left")...)
	returned := time.Now()
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled during a 500 ms script: %v", err)
	}
	// Uninterrupted, it would have waited 400 ms more for the script.
	late := returned.Sub(<-cancelled)
	if late > 200*time.Millisecond {
		t.Errorf("returned %v after the cancellation", late)
	}
	t.Logf("returned %v after the cancellation", late)
	// The abandoned script's reply is read by the background reader; the
	// calls behind it, without a deadline and with one, get their own.
	r, err = do(context.Background(), n, busyArgs(50*time.Millisecond, "background")...)
	if s, _ := r.Text(); err != nil || s != "background" {
		t.Fatalf("Background call after a cancelled one: %v %v", r, err)
	}
	r, err = do(ctx, n, busyArgs(50*time.Millisecond, "deadline")...)
	if s, _ := r.Text(); err != nil || s != "deadline" {
		t.Fatalf("deadline call after a cancelled one: %v %v", r, err)
	}
	if p.broken.Load() || n.pipes[0].Load() != p {
		t.Error("the pipe was replaced: a stale read deadline failed it")
	}
}

// Callers that leave mid-reply (deadlines and cancellations of 1-30 ms
// against scripts of up to 8 ms, with the reader role changing hands all
// the while) never get another's reply, never see anything but their own
// ctx's error, and leave the pipe healthy: no cancellation watch ever cuts
// a read that is no longer its caller's.
func TestCancelWatchStorm(t *testing.T) {
	n, p := servedPipe(t)
	var wg sync.WaitGroup
	var ok, left atomic.Int32
	// Two callers: with more, a background reader never runs dry and
	// callers seldom hold the reader role, where the watch lives.
	for g := range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(g), 1))
			for i := range 120 {
				v := fmt.Sprintf("%d:%d", g, i)
				args := []any{"ECHO", v}
				if rng.IntN(2) == 0 {
					run := time.Duration(rng.IntN(8000)) * time.Microsecond
					args = busyArgs(run, v)
				}
				ctx, cancel := context.Background(), context.CancelFunc(func() {})
				wait := time.Duration(1+rng.IntN(30)) * time.Millisecond
				switch rng.IntN(3) {
				case 1:
					ctx, cancel = context.WithTimeout(ctx, wait)
				case 2:
					ctx, cancel = context.WithCancel(ctx)
					time.AfterFunc(wait, cancel)
				}
				r, err := do(ctx, n, args...)
				cancel()
				switch {
				case err == nil:
					if s, _ := r.Text(); s != v {
						t.Errorf("call %s got %v", v, r)
					}
					ok.Add(1)
				case errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded):
					left.Add(1)
				default:
					t.Errorf("call %s: %v", v, err)
				}
			}
		}()
	}
	wg.Wait()
	t.Logf("%d calls answered, %d left at their ctx's end, %d watches' wakes", ok.Load(), left.Load(), p.wakes.Load())
	if left.Load() == 0 {
		t.Error("no caller left mid-reply: the storm tested nothing")
	}
	if r := mustDo(t, n, "ECHO", "after"); r.String() != `"after"` {
		t.Errorf("after the storm: %v", r)
	}
	if p.broken.Load() || n.pipes[0].Load() != p {
		t.Error("the pipe was replaced during the storm")
	}
}

type ctxKey struct{}

// A caller that got its reply leaves no read deadline behind, and no
// registration on a ctx it used once: the owner's cancel, which follows
// most calls, would start the watch's goroutine for nothing. A ctx used
// for call after call keeps its registration, which then costs nothing;
// when it ends between calls, the idle pipe is left alone; when the pipe
// fails, the registration goes with it.
func TestCancelWatchRegistrations(t *testing.T) {
	n, p := servedPipe(t)
	echo := func(ctx context.Context, v string) {
		t.Helper()
		if r, err := do(ctx, n, "ECHO", v); err != nil || r.String() != strconv.Quote(v) {
			t.Fatalf("ECHO %s: %v %v", v, r, err)
		}
		// This goroutine held the reader role and gave it up: nobody else
		// has touched the pipe since.
		if p.stale {
			t.Fatalf("ECHO %s left a read deadline behind", v)
		}
	}
	for _, mk := range []func() (context.Context, context.CancelFunc){
		func() (context.Context, context.CancelFunc) {
			return context.WithTimeout(context.Background(), 10*time.Second)
		},
		func() (context.Context, context.CancelFunc) { return context.WithCancel(context.Background()) },
	} {
		ctx, cancel := mk()
		echo(ctx, "once")
		cancel()
		if p.ws.kept.Load() != nil {
			t.Error("a ctx used once is still registered after its call")
		}
	}

	long, cancelLong := context.WithCancel(context.Background())
	echo(long, "first")
	echo(long, "second")
	w := p.ws.kept.Load()
	if w == nil {
		t.Fatal("a ctx used twice in a row is not kept")
	}
	echo(context.WithValue(long, ctxKey{}, "v"), "third") // shares long's Done
	if p.ws.kept.Load() != w {
		t.Error("a ctx sharing the kept one's Done registered anew")
	}
	w0 := p.wakes.Load()
	cancelLong()
	deadline := time.Now().Add(5 * time.Second)
	for {
		w.mu.Lock()
		fired := w.fired
		w.mu.Unlock()
		if fired {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the kept watch did not fire when its ctx ended")
		}
		time.Sleep(time.Millisecond)
	}
	if _, err := do(long, n, "ECHO", "late"); !errors.Is(err, context.Canceled) {
		t.Errorf("a call under the ended ctx: %v", err)
	}
	echo(context.Background(), "after")
	if p.broken.Load() || n.pipes[0].Load() != p || p.wakes.Load() != w0 {
		t.Errorf("the idle pipe was touched by an ending ctx (broken %v, wakes %d)", p.broken.Load(), p.wakes.Load()-w0)
	}

	still, cancelStill := context.WithCancel(context.Background())
	defer cancelStill()
	echo(still, "a")
	echo(still, "b")
	if p.ws.kept.Load() == nil {
		t.Fatal("a ctx used twice in a row is not kept")
	}
	p.close()
	if p.ws.kept.Load() != nil {
		t.Error("a failed pipe keeps its registration: a long-lived ctx would keep the dead pipe")
	}
}

// servedPipe is a node on a fresh redis-server (HealthTimeout 30 s, out of
// the way) and its pipe, opened by a PING.
func servedPipe(t *testing.T) (*node, *pipe) {
	t.Helper()
	srv := redistest.StartServer(t, redistest.ServerOptions{})
	n := testNode(t, srv.Addr, &connConfig{HealthTimeout: 30 * time.Second})
	mustDo(t, n, "PING")
	return n, n.pipes[0].Load()
}

// deadlineCountingConn counts the read deadlines set on a connection. It
// embeds the *net.TCPConn, so everything else (the idle probe's raw
// socket included) is the real connection's.
type deadlineCountingConn struct {
	*net.TCPConn
	future, past atomic.Int32
}

func (c *deadlineCountingConn) SetReadDeadline(t time.Time) error {
	if t.After(time.Now()) {
		c.future.Add(1)
	} else if !t.IsZero() {
		c.past.Add(1)
	}
	return c.TCPConn.SetReadDeadline(t)
}

// A lone caller under a ctx that can end arms no timer of its own: a read
// deadline in the future would be a runtime timer due before every other,
// which wakes an idle thread on each call (it used to be set and cleared
// on every call). Its ctx's end still interrupts the read: the only
// deadlines set are the past ones that do so.
func TestCallUnderDeadlineArmsNoTimer(t *testing.T) {
	srv := redistest.StartServer(t, redistest.ServerOptions{})
	var conns []*deadlineCountingConn
	var mu sync.Mutex
	n := testNode(t, srv.Addr, &connConfig{HealthTimeout: 30 * time.Second,
		Dial: func(ctx context.Context, network, addr string) (net.Conn, error) {
			c, err := (&net.Dialer{}).DialContext(ctx, network, addr)
			if err != nil {
				return nil, err
			}
			cc := &deadlineCountingConn{TCPConn: c.(*net.TCPConn)}
			mu.Lock()
			conns = append(conns, cc)
			mu.Unlock()
			return cc, nil
		}})
	mustDo(t, n, "SET", "k", "v") // dials, and the handshake sets deadlines of its own
	mu.Lock()
	if len(conns) != 1 {
		t.Fatalf("%d connections dialed, want 1", len(conns))
	}
	conn := conns[0]
	mu.Unlock()
	f0, p0 := conn.future.Load(), conn.past.Load()
	for i := range 400 {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		if i%2 == 1 {
			cancel()
			ctx, cancel = context.WithCancel(context.Background())
		}
		r, err := do(ctx, n, "GET", "k")
		cancel()
		if err != nil || r.String() != `"v"` {
			t.Fatalf("GET %d: %v %v", i, r, err)
		}
	}
	cctx, ccancel := context.WithCancel(context.Background())
	time.AfterFunc(50*time.Millisecond, ccancel)
	if _, err := do(cctx, n, busyArgs(300*time.Millisecond, "left")...); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled during a 300 ms script: %v", err)
	}
	if n.pipes[0].Load().conn != net.Conn(conn) {
		t.Fatal("the connection was replaced")
	}
	if f, p := conn.future.Load()-f0, conn.past.Load()-p0; f != 0 || p != 1 {
		t.Errorf("400 calls and one cancellation set %d read deadlines in the future and %d in the past, want 0 and 1", f, p)
	}
}
