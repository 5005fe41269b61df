package client

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"sync"
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
// reply has arrived; the half it parsed is undone, the background reader
// parses the whole reply later and throws it away, and the next call gets
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
	if late > 100*time.Millisecond {
		t.Errorf("returned %v after its deadline", late)
	}
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

// In keep mode a reply interrupted by a deadline is parsed again from its
// first byte; outside keep mode the reader cannot undo a started reply.
func TestRespReaderUnread(t *testing.T) {
	big := strings.Repeat("x", 3*readBufSize) // larger than the buffer
	in := "*3\r\n$3\r\nabc\r\n$" + fmt.Sprint(len(big)) + "\r\n" + big + "\r\n:7\r\n+OK\r\n"
	cut := len(in) - 20
	for _, keep := range []bool{true, false} {
		rd := newRespReader(&deadlineOnce{parts: []string{in[:cut], in[cut:]}})
		rd.keep = keep
		_, err := rd.readReply()
		if !errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatalf("keep=%v: want the deadline error, got %v", keep, err)
		}
		if ok := rd.unread(); ok != keep {
			t.Fatalf("keep=%v: unread = %v", keep, ok)
		}
		if !keep {
			continue
		}
		r, err := rd.readReply()
		if err != nil {
			t.Fatal(err)
		}
		if got, _ := r.Strings(); len(got) != 3 || got[0] != "abc" || got[1] != big || got[2] != "7" {
			t.Fatalf("re-parsed reply wrong: %d elements", len(got))
		}
		if r, err := rd.readReply(); err != nil || r.String() != `"OK"` {
			t.Fatalf("next reply: %s %v", r, err)
		}
		if len(rd.buf) > 4*readBufSize {
			t.Errorf("buffer kept at %d bytes after a big reply", len(rd.buf))
		}
	}
}

// A server that restarted while the pipe sat idle is noticed before the
// next request is written: the request fails as not sent and node.do
// retries it on a fresh connection, so even a write goes through.
func TestPipeIdlePeerCloseIsNotSent(t *testing.T) {
	srv := redistest.StartServer(t, redistest.ServerOptions{})
	n := testNode(t, srv.Addr, &connConfig{HealthTimeout: 30 * time.Second})
	mustDo(t, n, "PING") // a ctx with a deadline: leaves a read deadline behind
	old := n.pipes[0].Load()
	// An idle, healthy pipe (whose last read deadline has expired) passes
	// the check and is kept.
	time.Sleep(2 * max(probeAfter, cancelPoll))
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
