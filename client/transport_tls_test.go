package client

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"io"
	"math/big"
	"net"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/slotrouter/slotrouter/internal/redistest"
)

// tlsProxy terminates TLS in front of a plain redis-server (the installed
// one may be built without TLS) and records the SNI each client sent.
func tlsProxy(t *testing.T, backend string) (port int, roots *x509.CertPool, snis func() []string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "localhost"},
		DNSNames:     []string{"localhost"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	roots = x509.NewCertPool()
	roots.AddCert(cert)
	var mu sync.Mutex
	var seen []string
	cfg := &tls.Config{
		Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}},
		GetConfigForClient: func(h *tls.ClientHelloInfo) (*tls.Config, error) {
			mu.Lock()
			seen = append(seen, h.ServerName)
			mu.Unlock()
			return nil, nil
		},
	}
	ln, err := tls.Listen("tcp", "127.0.0.1:0", cfg)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	t.Cleanup(func() { _ = ln.Close(); wg.Wait() })
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			b, err := net.Dial("tcp", backend)
			if err != nil {
				_ = c.Close()
				continue
			}
			wg.Go(func() { _, _ = io.Copy(b, c); _ = b.Close() })
			wg.Go(func() { _, _ = io.Copy(c, b); _ = c.Close() })
		}
	})
	return ln.Addr().(*net.TCPAddr).Port, roots, func() []string {
		mu.Lock()
		defer mu.Unlock()
		return append([]string(nil), seen...)
	}
}

func TestNodeTLSPerNodeSNI(t *testing.T) {
	srv := redistest.StartServer(t, redistest.ServerOptions{})
	port, roots, snis := tlsProxy(t, srv.Addr)
	shared := &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12}
	n := testNode(t, net.JoinHostPort("localhost", strconv.Itoa(port)), &connConfig{TLS: shared})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 100 {
				r, err := do(ctx, n, "ECHO", strconv.Itoa(g*1000+i))
				if s, _ := r.Text(); err != nil || s != strconv.Itoa(g*1000+i) {
					t.Errorf("over TLS: %s %v", r, err)
					return
				}
			}
		})
	}
	wg.Wait()
	if r, err := n.doDedicated(ctx, mustCommand(t, "BLPOP", "nolist", 0.01)); err != nil || !r.IsNil() {
		t.Errorf("dedicated over TLS: %s %v", r, err)
	}
	if got := snis(); len(got) == 0 || got[0] != "localhost" {
		t.Errorf("SNI sent: %q, want localhost", got)
	}
	if shared.ServerName != "" {
		t.Error("the caller's tls.Config was modified")
	}
}

func mustCommand(t *testing.T, args ...any) *command {
	t.Helper()
	c, err := newCommand(args)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.release)
	return c
}
