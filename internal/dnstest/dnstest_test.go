package dnstest_test

import (
	"context"
	"errors"
	"net"
	"slices"
	"testing"
	"time"

	"github.com/slotrouter/slotrouter/internal/dnstest"
)

func resolver(addr, network string) *net.Resolver {
	return &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, _, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, network, addr)
	}}
}

func TestServer(t *testing.T) {
	s := dnstest.Start(t, dnstest.Zone{"node1.cluster.test": {"127.0.0.1"}, "multi.cluster.test.": {"127.0.0.3", "127.0.0.2"}})
	networks := []string{"udp"}
	if s.TCP != "" {
		networks = append(networks, "tcp")
	} else {
		t.Log("TCP listener not available on the UDP port; TCP not tested")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, network := range networks {
		r := resolver(s.Addr, network)
		got, err := r.LookupHost(ctx, "NODE1.cluster.test")
		if err != nil || !slices.Equal(got, []string{"127.0.0.1"}) {
			t.Fatalf("%s: node1 = %v, %v", network, got, err)
		}
		got, err = r.LookupHost(ctx, "multi.cluster.test")
		slices.Sort(got)
		if err != nil || !slices.Equal(got, []string{"127.0.0.2", "127.0.0.3"}) {
			t.Fatalf("%s: multi = %v, %v", network, got, err)
		}
		_, err = r.LookupHost(ctx, "missing.cluster.test")
		var de *net.DNSError
		if !errors.As(err, &de) || !de.IsNotFound {
			t.Fatalf("%s: missing name = %v, want not found", network, err)
		}
	}
	if n := s.Queries("node1.cluster.test"); n != len(networks) {
		t.Fatalf("Queries(node1) = %d, want %d", n, len(networks))
	}

	if err := s.Set("node1.cluster.test", "127.0.0.9", "127.0.0.8"); err != nil {
		t.Fatal(err)
	}
	got, err := resolver(s.Addr, "udp").LookupHost(ctx, "node1.cluster.test")
	slices.Sort(got)
	if err != nil || !slices.Equal(got, []string{"127.0.0.8", "127.0.0.9"}) {
		t.Fatalf("after Set: %v, %v", got, err)
	}
	if err := s.Set("x.test", "::1"); !errors.Is(err, dnstest.ErrBadAddress) {
		t.Fatalf("Set with IPv6 = %v, want ErrBadAddress", err)
	}
	s.Delete("node1.cluster.test")
	if _, err := resolver(s.Addr, "udp").LookupHost(ctx, "node1.cluster.test"); err == nil {
		t.Fatal("deleted name still resolves")
	}
}
