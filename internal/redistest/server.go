package redistest

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/redis/go-redis/v9/maintnotifications"
)

const (
	// readyTimeout bounds how long one process start may take until PING
	// answers. Generous because -race CI machines can be slow to fork.
	readyTimeout = 15 * time.Second
	// exitTimeout bounds the wait for a killed process to be reaped.
	exitTimeout = 10 * time.Second
	// bindRetries is how often a start is retried on another port when the
	// chosen port was taken by someone else between check and bind.
	bindRetries  = 5
	logTailLines = 40
)

// errBind reports that a server could not bind its port (or bus port).
var errBind = errors.New("redistest: server could not bind its port")

// ServerOptions configures a standalone server. The zero value is a
// password-less master on 127.0.0.1.
type ServerOptions struct {
	// Password sets requirepass and masterauth.
	Password string
	// ReplicaOf is the "host:port" of a master to replicate; empty = master.
	ReplicaOf string
	// Config lines are appended after the harness defaults, so they win.
	Config []string
	// Host is the address to bind, 127.0.0.x only; default 127.0.0.1.
	Host string
}

// Server is one redis-server (or redis-sentinel) process owned by a test.
// Addr, Host and Port stay the same across Restart.
type Server struct {
	Addr string // host:port
	Host string
	Port int
	Dir  string // private working directory (nodes.conf, logs)
	ID   string // cluster node id; empty for standalone servers and sentinels
	Name string // short label used in logs, e.g. "node3" or "sentinel1"

	t        testing.TB
	bin      string
	password string
	confPath string
	logPath  string
	render   func(port int) string // config file text for a port

	mu      sync.Mutex
	proc    *process
	stopped bool
	client  *redis.Client
}

type process struct {
	cmd  *exec.Cmd
	done chan struct{} // closed once the process has been reaped
}

// StartServer starts a standalone redis-server and waits until it answers
// PING (and, for a replica, until its replication link is up).
func StartServer(t testing.TB, o ServerOptions) *Server {
	t.Helper()
	bin := Require(t)
	host, err := checkHost(o.Host)
	if err != nil {
		t.Fatal(err)
	}
	s := newServer(t, bin, "server", host, t.TempDir(), o.Password)
	s.render = func(port int) string {
		lines := baseConfig(s, port)
		if o.ReplicaOf != "" {
			h, p, err := net.SplitHostPort(o.ReplicaOf)
			if err != nil {
				t.Fatalf("redistest: bad ReplicaOf %q: %v", o.ReplicaOf, err)
			}
			lines = append(lines, "replicaof "+h+" "+p)
		}
		return joinConfig(lines, o.Config)
	}
	if err := s.start(nil); err != nil {
		t.Fatal(err)
	}
	if o.ReplicaOf != "" {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := s.waitLinkUp(ctx); err != nil {
			t.Fatal(err)
		}
	}
	return s
}

// checkHost accepts only loopback 127.0.0.x addresses: tests never listen on
// anything reachable from outside.
func checkHost(h string) (string, error) {
	if h == "" {
		return "127.0.0.1", nil
	}
	ip := net.ParseIP(h).To4()
	if ip == nil || ip[0] != 127 || ip[1] != 0 || ip[2] != 0 {
		return "", fmt.Errorf("redistest: host %q is not a 127.0.0.x address", h)
	}
	return ip.String(), nil
}

func newServer(t testing.TB, bin, name, host, dir, password string) *Server {
	s := &Server{
		Host: host, Dir: dir, Name: name,
		t: t, bin: bin, password: password,
		confPath: filepath.Join(dir, "redis.conf"),
		logPath:  filepath.Join(dir, "redis.log"),
	}
	// Registered before the process exists so that a failure half-way
	// through startup still stops it. It runs before t.TempDir's removal
	// because cleanups run last-registered-first.
	t.Cleanup(s.cleanup)
	return s
}

// baseConfig holds the settings every data node gets; see the package doc.
func baseConfig(s *Server, port int) []string {
	lines := []string{
		"port " + strconv.Itoa(port),
		"bind " + s.Host,
		"bind-source-addr " + s.Host,
		"replica-announce-ip " + s.Host,
		"protected-mode no",
		"daemonize no",
		"dir " + quote(s.Dir),
		"logfile " + quote(s.logPath),
		"save \"\"",
		"appendonly no",
		"repl-diskless-sync yes",
		"repl-diskless-sync-delay 0",
	}
	if s.password != "" {
		lines = append(lines, "requirepass "+quote(s.password), "masterauth "+quote(s.password))
	}
	return lines
}

func joinConfig(base, extra []string) string {
	var b strings.Builder
	for _, l := range base {
		b.WriteString(l)
		b.WriteByte('\n')
	}
	for _, l := range extra {
		b.WriteString(l)
		b.WriteByte('\n')
	}
	return b.String()
}

func quote(s string) string { return strconv.Quote(s) }

// start launches the process on a port from pick (default: any free pair),
// picking again when another process took the port before we bound it.
func (s *Server) start(pick func() (int, error)) error {
	if pick == nil {
		pick = func() (int, error) { return freePort(s.Host, nil) }
	}
	var last error
	for range bindRetries {
		port, err := pick()
		if err != nil {
			return err
		}
		s.Port = port
		s.Addr = net.JoinHostPort(s.Host, strconv.Itoa(port))
		if err := os.WriteFile(s.confPath, []byte(s.render(port)), 0o600); err != nil {
			return fmt.Errorf("redistest: write config: %w", err)
		}
		last = s.launch()
		if last == nil || !errors.Is(last, errBind) {
			return last
		}
	}
	return last
}

// launch runs the binary with the existing config file and waits for PING.
func (s *Server) launch() error {
	out, err := os.OpenFile(filepath.Join(s.Dir, "stdio.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return fmt.Errorf("redistest: %w", err)
	}
	defer out.Close()
	cmd := exec.Command(s.bin, s.confPath)
	cmd.Dir = s.Dir
	cmd.Stdout, cmd.Stderr = out, out
	// Pdeathsig: a test binary killed by -timeout must not leak servers.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("redistest: start %s: %w", s.bin, err)
	}
	p := &process{cmd: cmd, done: make(chan struct{})}
	go func() {
		_ = cmd.Wait()
		close(p.done)
	}()
	s.mu.Lock()
	s.proc, s.stopped = p, false
	s.mu.Unlock()

	deadline := time.Now().Add(readyTimeout)
	for attempt := 0; ; attempt++ {
		if err := s.ping(200 * time.Millisecond); err == nil {
			return nil
		}
		select {
		case <-p.done:
			s.mu.Lock()
			if s.proc == p {
				s.proc = nil
			}
			s.mu.Unlock()
			tail := s.LogTail(logTailLines)
			if strings.Contains(tail, "in use") || strings.Contains(tail, "Could not create server TCP listening socket") {
				return fmt.Errorf("%w: %s %s", errBind, s.Name, s.Addr)
			}
			return fmt.Errorf("redistest: %s (%s) exited during startup:\n%s", s.Name, s.Addr, tail)
		case <-time.After(pollDelay(attempt)):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("redistest: %s (%s) not answering PING after %v:\n%s", s.Name, s.Addr, readyTimeout, s.LogTail(logTailLines))
		}
	}
}

// pollDelay backs off from 2 ms to 20 ms so fast starts are seen quickly
// without spinning on slow machines.
func pollDelay(attempt int) time.Duration {
	d := time.Duration(2+2*attempt) * time.Millisecond
	return min(d, 20*time.Millisecond)
}

// ping sends AUTH (if needed) and PING over a fresh raw connection, so that
// readiness checks do not depend on a client's pool or retry policy.
func (s *Server) ping(timeout time.Duration) error {
	c, err := net.DialTimeout("tcp", s.Addr, timeout)
	if err != nil {
		return err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(timeout))
	req := "*1\r\n$4\r\nPING\r\n"
	if s.password != "" {
		req = fmt.Sprintf("*2\r\n$4\r\nAUTH\r\n$%d\r\n%s\r\n", len(s.password), s.password) + req
	}
	if _, err := c.Write([]byte(req)); err != nil {
		return err
	}
	buf := make([]byte, 0, 128)
	tmp := make([]byte, 128)
	want := "+PONG\r\n"
	if s.password != "" {
		want = "+OK\r\n+PONG\r\n"
	}
	for len(buf) < len(want) {
		n, err := c.Read(tmp)
		if err != nil {
			return err
		}
		buf = append(buf, tmp[:n]...)
	}
	if !strings.HasPrefix(string(buf), want) {
		return fmt.Errorf("redistest: PING %s: %q", s.Addr, buf)
	}
	return nil
}

// Client returns a go-redis client for this server, created on first use
// and closed at cleanup. It speaks RESP2 (plain []any / string / int64
// replies) and never retries, so tests see each failure.
func (s *Server) Client() *redis.Client {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.client == nil {
		s.client = redis.NewClient(&redis.Options{
			Addr:                  s.Addr,
			Password:              s.password,
			Protocol:              2,
			DisableIdentity:       true,
			MaxRetries:            -1,
			DialTimeout:           2 * time.Second,
			ReadTimeout:           5 * time.Second,
			WriteTimeout:          5 * time.Second,
			ContextTimeoutEnabled: true,
			PoolSize:              4,
			MaintNotificationsConfig: &maintnotifications.Config{
				Mode: maintnotifications.ModeDisabled,
			},
		})
	}
	return s.client
}

// Do sends one command. A nil reply is returned as (nil, nil).
func (s *Server) Do(ctx context.Context, args ...any) (any, error) {
	v, err := s.Client().Do(ctx, args...).Result()
	if errors.Is(err, redis.Nil) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("%s %v: %w", s.Name, args, err)
	}
	return v, nil
}

// doString runs a command whose reply is a (bulk or status) string.
func (s *Server) doString(ctx context.Context, args ...any) (string, error) {
	v, err := s.Do(ctx, args...)
	if err != nil {
		return "", err
	}
	str, ok := v.(string)
	if !ok {
		return "", fmt.Errorf("redistest: %s %v: unexpected reply %T", s.Name, args, v)
	}
	return str, nil
}

// info returns one INFO section as field -> value.
func (s *Server) info(ctx context.Context, section string) (map[string]string, error) {
	return s.fields(ctx, "INFO", section)
}

// fields runs a command answering "key:value" lines (INFO, CLUSTER INFO).
func (s *Server) fields(ctx context.Context, args ...any) (map[string]string, error) {
	text, err := s.doString(ctx, args...)
	if err != nil {
		return nil, err
	}
	m := make(map[string]string)
	for _, line := range strings.Split(text, "\n") {
		k, v, ok := strings.Cut(strings.TrimSpace(line), ":")
		if ok {
			m[k] = v
		}
	}
	return m, nil
}

// waitLinkUp waits until this replica reports master_link_status:up.
func (s *Server) waitLinkUp(ctx context.Context) error {
	return poll(ctx, 10*time.Millisecond, func() error {
		m, err := s.info(ctx, "replication")
		if err != nil {
			return err
		}
		if m["role"] != "slave" || m["master_link_status"] != "up" {
			return fmt.Errorf("%s: role=%s master_link_status=%s", s.Name, m["role"], m["master_link_status"])
		}
		return nil
	})
}

// LogTail returns the last n lines of the server log (and of its captured
// stdout/stderr, where early startup errors land).
func (s *Server) LogTail(n int) string {
	var b strings.Builder
	for _, path := range []string{filepath.Join(s.Dir, "stdio.log"), s.logPath} {
		data, err := os.ReadFile(path)
		if err != nil || len(data) == 0 {
			continue
		}
		lines := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
		if len(lines) > n {
			lines = lines[len(lines)-n:]
		}
		b.WriteString(strings.Join(lines, "\n"))
		b.WriteByte('\n')
	}
	return b.String()
}

func (s *Server) cleanup() {
	if s.t.Failed() && s.Addr != "" {
		s.t.Logf("redistest: %s (%s) log tail:\n%s", s.Name, s.Addr, s.LogTail(logTailLines))
	}
	s.mu.Lock()
	c := s.client
	s.client = nil
	s.mu.Unlock()
	if c != nil {
		_ = c.Close()
	}
	s.Kill()
}

// poll calls f every interval until it returns nil or ctx ends; the error
// then includes f's last complaint, which is what a failing test needs.
func poll(ctx context.Context, interval time.Duration, f func() error) error {
	tick := time.NewTicker(interval)
	defer tick.Stop()
	var last error
	for {
		err := f()
		if err == nil {
			return nil
		}
		// An attempt cut short by the deadline says less than the one
		// before it about why we are still waiting.
		if ctx.Err() == nil || last == nil {
			last = err
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("redistest: gave up waiting (%w): %v", ctx.Err(), last)
		case <-tick.C:
		}
	}
}
