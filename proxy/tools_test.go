package proxy

import (
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/slotrouter/slotrouter/internal/redistest"
)

func requireTool(t *testing.T, name string) string {
	t.Helper()
	path, err := exec.LookPath(name)
	if err != nil {
		if os.Getenv(redistest.RequiredEnv) == "1" {
			t.Fatalf("%s not on PATH", name)
		}
		t.Skipf("%s not on PATH", name)
	}
	return path
}

// TestRedisCLI: redis-cli, fed commands on stdin, talks to the proxy as to
// a server; its start-up COMMAND DOCS (sent in interactive mode) works too.
func TestRedisCLI(t *testing.T) {
	cli := requireTool(t, "redis-cli")
	srv := newServer(t, Options{})
	_, port, _ := net.SplitHostPort(listen(t, srv))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, cli, "-p", port)
	cmd.Stdin = strings.NewReader("SET cli:greeting \"hello world\"\nGET cli:greeting\nHSET cli:h f1 v1\nHGETALL cli:h\nCLUSTER INFO\nCOMMAND DOCS GET\nPING\n")
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, string(out))
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	require.GreaterOrEqual(t, len(lines), 8, string(out))
	require.Equal(t, []string{"OK", "hello world", "1", "f1", "v1"}, lines[:5])
	require.True(t, strings.HasPrefix(lines[5], "ERR CLUSTER is not supported"), lines[5])
	require.Equal(t, "get", lines[6])
	require.Equal(t, "PONG", lines[len(lines)-1])
}

// TestRedisBenchmark: redis-benchmark through the proxy at -P 1 and -P 16
// with no errors; the throughput against the same benchmark on the
// cluster directly (--cluster) is logged, not asserted: this machine's
// load decides it (the README quotes a measured run).
func TestRedisBenchmark(t *testing.T) {
	bench := requireTool(t, "redis-benchmark")
	cl := sharedCluster(t)
	srv := newServer(t, Options{})
	_, port, _ := net.SplitHostPort(listen(t, srv))
	run := func(args ...string) map[string]float64 {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		base := []string{"-t", "get,set", "-n", "20000", "-c", "20", "-r", "100000", "--csv"}
		out, err := exec.CommandContext(ctx, bench, append(base, args...)...).CombinedOutput()
		require.NoError(t, err, string(out))
		require.NotContains(t, strings.ToLower(string(out)), "error", string(out))
		rps := map[string]float64{}
		for _, line := range strings.Split(string(out), "\n") {
			f := strings.Split(line, ",")
			if len(f) > 1 && (f[0] == `"SET"` || f[0] == `"GET"`) {
				v, err := strconv.ParseFloat(strings.Trim(f[1], `"`), 64)
				require.NoError(t, err, line)
				rps[strings.Trim(f[0], `"`)] = v
			}
		}
		require.Len(t, rps, 2, string(out))
		return rps
	}
	p1 := run("-p", port, "-P", "1")
	p16 := run("-p", port, "-P", "16")
	_, cport, _ := net.SplitHostPort(cl.Addrs()[0])
	direct := run("-p", cport, "--cluster", "-P", "16")
	for _, op := range []string{"SET", "GET"} {
		t.Logf("%s: proxy -P 1 %.0f/s, -P 16 %.0f/s; cluster directly -P 16 %.0f/s; ratio %.2f",
			op, p1[op], p16[op], direct[op], p16[op]/direct[op])
	}
}

// TestThousandSessions: 1,000 sessions at once, each writing and reading
// its own keys, all answered; none is refused or mixed up.
func TestThousandSessions(t *testing.T) {
	srv := newServer(t, Options{})
	addr := listen(t, srv)
	const n = 1000
	conns := make([]net.Conn, n)
	for i := range conns {
		c, err := net.DialTimeout("tcp", addr, 5*time.Second)
		require.NoError(t, err)
		t.Cleanup(func() { c.Close() })
		conns[i] = c
	}
	require.Eventually(t, func() bool { return srv.Sessions() == n }, 10*time.Second, 10*time.Millisecond)
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i, c := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c.SetDeadline(time.Now().Add(60 * time.Second))
			var req, want strings.Builder
			for j := range 5 {
				key := fmt.Sprintf("many:%d:%d", i, j)
				req.WriteString(encode("SET", key, key))
				req.WriteString(encode("GET", key))
				fmt.Fprintf(&want, "+OK\r\n$%d\r\n%s\r\n", len(key), key)
			}
			if _, err := c.Write([]byte(req.String())); err != nil {
				errs <- err
				return
			}
			got := make([]byte, want.Len())
			if _, err := io.ReadFull(c, got); err != nil {
				errs <- fmt.Errorf("session %d: %v", i, err)
				return
			}
			if string(got) != want.String() {
				errs <- fmt.Errorf("session %d: got %q", i, got)
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	require.Equal(t, n, srv.Sessions())
}
