package proxy

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/slotrouter/slotrouter/client"
	"github.com/slotrouter/slotrouter/internal/redistest"
)

// One 3-master cluster serves every test that does not break it; tests
// that kill nodes start their own.
var shared struct {
	once sync.Once
	cl   *redistest.Cluster
	err  error
}

func TestMain(m *testing.M) {
	redistest.QuietGoRedis()
	code := m.Run()
	if shared.cl != nil {
		shared.cl.Close()
	}
	os.Exit(code)
}

func sharedCluster(t testing.TB) *redistest.Cluster {
	t.Helper()
	redistest.Require(t)
	shared.once.Do(func() {
		shared.cl, shared.err = redistest.Launch(redistest.ClusterOptions{Masters: 3})
	})
	if shared.err != nil {
		t.Fatal(shared.err)
	}
	return shared.cl
}

// newClient connects a client.Client to cl, closed at cleanup.
func newClient(t testing.TB, cl *redistest.Cluster, opts client.Options) *client.Client {
	t.Helper()
	opts.Addrs = cl.Addrs()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := client.New(ctx, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// newServer makes a proxy over a fresh client of the shared cluster.
func newServer(t testing.TB, opts Options) *Server {
	t.Helper()
	srv := New(newClient(t, sharedCluster(t), client.Options{}), opts)
	t.Cleanup(func() { srv.Close() })
	return srv
}

// listen serves srv on a loopback port and returns its address.
func listen(t *testing.T, srv *Server) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(l) }()
	t.Cleanup(func() {
		srv.Close()
		if err := <-done; !errors.Is(err, ErrServerClosed) {
			t.Errorf("Serve returned %v, want ErrServerClosed", err)
		}
	})
	return l.Addr().String()
}

// goRedis is a go-redis client whose connections are sessions of srv,
// through the in-process dialer: the README's three-line setup.
func goRedis(t *testing.T, srv *Server, protocol int) *redis.Client {
	t.Helper()
	rdb := redis.NewClient(&redis.Options{Dialer: srv.DialContext, Protocol: protocol})
	t.Cleanup(func() { rdb.Close() })
	return rdb
}

// rawConn is a hand-driven RESP connection, for exact bytes.
type rawConn struct {
	t  *testing.T
	c  net.Conn
	rd *bufio.Reader
}

func dialRaw(t *testing.T, addr string) *rawConn {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return &rawConn{t: t, c: c, rd: bufio.NewReader(c)}
}

func (r *rawConn) send(s string) {
	r.t.Helper()
	r.c.SetWriteDeadline(time.Now().Add(5 * time.Second))
	if _, err := r.c.Write([]byte(s)); err != nil {
		r.t.Fatal(err)
	}
}

// reply reads one whole reply and returns its bytes.
func (r *rawConn) reply() string {
	r.t.Helper()
	r.c.SetReadDeadline(time.Now().Add(10 * time.Second))
	var b strings.Builder
	if err := readReply(r.rd, &b); err != nil {
		r.t.Fatalf("reading reply: %v (so far %q)", err, b.String())
	}
	return b.String()
}

// do sends an inline command and returns the reply's bytes.
func (r *rawConn) do(cmd string) string {
	r.t.Helper()
	r.send(cmd + "\r\n")
	return r.reply()
}

// closed reports whether the server closed the connection within 5 s.
func (r *rawConn) closed() bool {
	r.c.SetReadDeadline(time.Now().Add(5 * time.Second))
	_, err := r.rd.ReadByte()
	return err != nil && !errors.Is(err, os.ErrDeadlineExceeded)
}

func readReply(rd *bufio.Reader, b *strings.Builder) error {
	line, err := rd.ReadString('\n')
	if err != nil {
		return err
	}
	b.WriteString(line)
	body := strings.TrimSuffix(line[1:], "\r\n")
	switch line[0] {
	case '$', '=':
		n, _ := strconv.Atoi(body)
		if n < 0 {
			return nil
		}
		buf := make([]byte, n+2)
		if _, err := io.ReadFull(rd, buf); err != nil {
			return err
		}
		b.Write(buf)
	case '*', '~', '>', '%':
		n, _ := strconv.Atoi(body)
		if line[0] == '%' {
			n *= 2
		}
		for range max(n, 0) {
			if err := readReply(rd, b); err != nil {
				return err
			}
		}
	}
	return nil
}

// encode is a request as RESP, the way clients send it.
func encode(args ...string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "*%d\r\n", len(args))
	for _, a := range args {
		fmt.Fprintf(&b, "$%d\r\n%s\r\n", len(a), a)
	}
	return b.String()
}
