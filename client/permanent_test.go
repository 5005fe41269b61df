package client

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/slotrouter/slotrouter/internal/redistest"
)

// failFast is how long New may take to give up on a permanent failure. The
// promise is "at once, without retrying"; the cap leaves room for -race on a
// loaded 2-core machine (a retry loop would take the whole 10 s context).
const failFast = 2 * time.Second

func newWithin(t *testing.T, o Options) (time.Duration, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	start := time.Now()
	c, err := New(ctx, o)
	took := time.Since(start)
	if err == nil {
		_ = c.Close()
		t.Fatalf("New succeeded with %+v", o)
	}
	if took > failFast {
		t.Fatalf("New took %v to fail (retried?): %v", took, err)
	}
	return took, err
}

// A wrong password, no password and a user without the right to CLUSTER
// NODES: New fails in milliseconds with the matching sentinel instead of
// spinning until its context ends.
func TestAuthFailsFastAndTyped(t *testing.T) {
	cl := startCluster(t, redistest.ClusterOptions{Masters: 1, Password: "right"})
	took, err := newWithin(t, Options{Addrs: cl.Addrs(), Password: "wrong"})
	if !errors.Is(err, ErrWrongPass) {
		t.Fatalf("wrong password: %v", err)
	}
	t.Logf("wrong password: New failed after %v: %v", took, err)
	took, err = newWithin(t, Options{Addrs: cl.Addrs()})
	if !errors.Is(err, ErrNoAuth) {
		t.Fatalf("no password: %v", err)
	}
	t.Logf("no password: New failed after %v", took)

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, s := range cl.Servers() {
		if _, err := s.Do(ctx, "ACL", "SETUSER", "limited", "on", ">pw", "~*", "+get", "+ping"); err != nil {
			t.Fatal(err)
		}
	}
	took, err = newWithin(t, Options{Addrs: cl.Addrs(), Username: "limited", Password: "pw"})
	if !errors.Is(err, ErrNoPerm) {
		t.Fatalf("no permission for CLUSTER NODES: %v", err)
	}
	t.Logf("NOPERM: New failed after %v", took)

	// A password changed under a running client: the redial fails with
	// WRONGPASS and the call returns it at once.
	c := newTestClient(t, cl, Options{Password: "right"})
	if err := c.Do(ctx, "SET", "k", "v").Err(); err != nil {
		t.Fatal(err)
	}
	for _, s := range cl.Servers() {
		if _, err := s.Do(ctx, "CONFIG", "SET", "requirepass", "rotated"); err != nil {
			t.Fatal(err)
		}
	}
	c.dropNode(cl.Servers()[0].Addr)
	start := time.Now()
	err = c.Do(ctx, "GET", "k").Err()
	if !errors.Is(err, ErrWrongPass) || time.Since(start) > failFast {
		t.Fatalf("call after the password changed: %v after %v", err, time.Since(start))
	}
	t.Logf("call after a password change: %v after %v", err, time.Since(start))
	for _, s := range cl.Servers() {
		// Let the harness's own connections in again for cleanup.
		_, _ = s.Do(ctx, "CONFIG", "SET", "requirepass", "right")
	}
}

// Certificate errors are permanent: one handshake per seed, then New
// returns the x509 error, reachable with errors.As.
func TestTLSCertificateErrorsFailFast(t *testing.T) {
	srv := redistest.StartServer(t, redistest.ServerOptions{})
	port, roots, snis := tlsProxy(t, srv.Addr)
	addr := net.JoinHostPort("localhost", strconv.Itoa(port))

	took, err := newWithin(t, Options{Addrs: []string{addr}, TLS: &tls.Config{ServerName: "localhost", MinVersion: tls.VersionTLS12}})
	var cve *tls.CertificateVerificationError
	var ua x509.UnknownAuthorityError
	if !errors.As(err, &cve) || !errors.As(err, &ua) {
		t.Fatalf("unknown authority: %v", err)
	}
	handshakes := len(snis())
	if handshakes > 2 {
		t.Fatalf("%d handshakes for one seed: a retry storm", handshakes)
	}
	t.Logf("unknown authority: New failed after %v with %d handshake(s)", took, handshakes)

	took, err = newWithin(t, Options{Addrs: []string{addr},
		TLS: &tls.Config{RootCAs: roots, ServerName: "other.example", MinVersion: tls.VersionTLS12}})
	var he x509.HostnameError
	if !errors.As(err, &he) {
		t.Fatalf("wrong host name: %v", err)
	}
	t.Logf("host name mismatch: New failed after %v, %d handshakes in all", took, len(snis()))
}

// TLS to a plaintext port and plaintext to a TLS port: ErrProtocolMismatch
// at once, not a bare deadline.
func TestTLSProtocolMismatchFailsFast(t *testing.T) {
	srv := redistest.StartServer(t, redistest.ServerOptions{})
	took, err := newWithin(t, Options{Addrs: []string{srv.Addr}, TLS: &tls.Config{InsecureSkipVerify: true}}) //nolint:gosec // test
	if !errors.Is(err, ErrProtocolMismatch) {
		t.Fatalf("TLS to a plaintext port: %v", err)
	}
	t.Logf("TLS to plaintext: New failed after %v: %v", took, err)

	port, _, _ := tlsProxy(t, srv.Addr)
	took, err = newWithin(t, Options{Addrs: []string{net.JoinHostPort("127.0.0.1", strconv.Itoa(port))}})
	if !errors.Is(err, ErrProtocolMismatch) {
		t.Fatalf("plaintext to a TLS port: %v", err)
	}
	t.Logf("plaintext to TLS: New failed after %v: %v", took, err)
}

// A nil context is the caller's bug: an error in the caller's goroutine,
// never a panic in a background one.
func TestNilContextIsAnError(t *testing.T) {
	var nilCtx context.Context
	if _, err := New(nilCtx, Options{Addrs: []string{"127.0.0.1:1"}}); !errors.Is(err, ErrNilContext) {
		t.Fatalf("New(nil): %v", err)
	}
	srv := redistest.StartServer(t, redistest.ServerOptions{})
	c := newTestClient(t, nil, Options{Addrs: []string{srv.Addr}})
	if err := c.Do(nilCtx, "GET", "k").Err(); !errors.Is(err, ErrNilContext) {
		t.Fatalf("Do(nil): %v", err)
	}
	p := c.Pipeline()
	p.Do("GET", "k")
	if _, err := p.Exec(nilCtx); !errors.Is(err, ErrNilContext) {
		t.Fatalf("Exec(nil): %v", err)
	}
}

// A 400 MB argument under a 5 ms deadline returns promptly: encoding does
// not outlast the deadline by seconds.
func TestHugeArgumentHonoursDeadline(t *testing.T) {
	srv := redistest.StartServer(t, redistest.ServerOptions{})
	c := newTestClient(t, nil, Options{Addrs: []string{srv.Addr}})
	// Fresh zero pages: only what the encoder copies is ever touched.
	big := make([]byte, 400<<20)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Millisecond)
	defer cancel()
	start := time.Now()
	err := c.Do(ctx, "SET", "big", big).Err()
	took := time.Since(start)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("SET of 400 MB in 5 ms: %v", err)
	}
	t.Logf("400 MB SET with a 5 ms deadline returned after %v", took)
	if took > 500*time.Millisecond {
		t.Fatalf("returned %v after a 5 ms deadline", took)
	}
	// Chunked encoding under a deadline it meets still sends the value whole.
	ctx, cancel = context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	val := strings.Repeat("0123456789", 300_000) // 3 MB: three chunks
	if err := c.Do(ctx, "SET", "big", val).Err(); err != nil {
		t.Fatal(err)
	}
	if got, err := c.Do(ctx, "GET", "big").Text(); err != nil || got != val {
		t.Fatalf("GET of the 3 MB value: %d bytes, %v", len(got), err)
	}
}
