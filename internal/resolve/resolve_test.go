package resolve_test

import (
	"context"
	"errors"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/slotrouter/slotrouter/internal/dnstest"
	"github.com/slotrouter/slotrouter/internal/resolve"
)

type changes struct {
	mu  sync.Mutex
	all []resolve.Change
}

func (c *changes) add(ch resolve.Change) {
	c.mu.Lock()
	c.all = append(c.all, ch)
	c.mu.Unlock()
}

func (c *changes) list() []resolve.Change {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.all)
}

func TestFollowsRepointedName(t *testing.T) {
	const name = "node1.cluster.test"
	srv := dnstest.Start(t, dnstest.Zone{name: {"127.0.0.1"}})
	srv.SetTTL(time.Second)
	var seen changes
	const ttl = time.Second
	c := resolve.New(resolve.Options{Resolver: resolve.NewNetResolver(srv.Addr), TTL: ttl, OnChange: seen.add})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()

	got, err := c.LookupHost(ctx, name)
	if err != nil || !slices.Equal(got, []string{"127.0.0.1"}) {
		t.Fatalf("first lookup = %v, %v", got, err)
	}
	for range 20 {
		if _, err := c.LookupHost(ctx, name); err != nil {
			t.Fatal(err)
		}
	}
	if n := srv.Queries(name); n != 1 {
		t.Fatalf("%d queries for 21 lookups within the TTL, want 1", n)
	}

	if err := srv.Set(name, "127.0.0.2"); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	const margin = 250 * time.Millisecond
	for {
		got, err = c.LookupHost(ctx, name)
		if err != nil {
			t.Fatal(err)
		}
		if slices.Equal(got, []string{"127.0.0.2"}) {
			break
		}
		if time.Since(start) > ttl+margin {
			t.Fatalf("still %v %v after re-pointing; want the new address within TTL+%v", got, time.Since(start), margin)
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Logf("re-pointed name followed after %v (TTL %v)", time.Since(start), ttl)
	ch := seen.list()
	if len(ch) != 1 || ch[0].Host != name || !slices.Equal(ch[0].Added, []string{"127.0.0.2"}) ||
		!slices.Equal(ch[0].Removed, []string{"127.0.0.1"}) {
		t.Fatalf("changes reported: %+v", ch)
	}
}

func TestEveryAddressOfMultiA(t *testing.T) {
	const name = "multi.cluster.test"
	ips := []string{"127.0.0.1", "127.0.0.2", "127.0.0.3", "127.0.0.4"}
	srv := dnstest.Start(t, dnstest.Zone{name: ips})
	c := resolve.New(resolve.Options{Resolver: resolve.NewNetResolver(srv.Addr)})
	got, err := c.LookupHost(context.Background(), name)
	slices.Sort(got)
	if err != nil || !slices.Equal(got, ips) {
		t.Fatalf("LookupHost = %v, %v; want all of %v", got, err, ips)
	}
}

func TestRefreshAfterFailure(t *testing.T) {
	const name = "node1.cluster.test"
	srv := dnstest.Start(t, dnstest.Zone{name: {"127.0.0.1"}})
	var seen changes
	c := resolve.New(resolve.Options{Resolver: resolve.NewNetResolver(srv.Addr), TTL: time.Hour,
		MinRefresh: 200 * time.Millisecond, OnChange: seen.add})
	ctx := context.Background()
	if _, err := c.LookupHost(ctx, name); err != nil {
		t.Fatal(err)
	}
	if err := srv.Set(name, "127.0.0.5"); err != nil {
		t.Fatal(err)
	}
	if got, _ := c.LookupHost(ctx, name); !slices.Equal(got, []string{"127.0.0.1"}) {
		t.Fatalf("within TTL got %v, want the cached answer", got)
	}
	// Right after the first resolution a burst of refreshes is absorbed by MinRefresh...
	if got, _ := c.Refresh(ctx, name); !slices.Equal(got, []string{"127.0.0.1"}) {
		t.Fatalf("Refresh within MinRefresh = %v", got)
	}
	time.Sleep(250 * time.Millisecond)
	// ...after it, a refresh asks DNS again.
	got, err := c.Refresh(ctx, name)
	if err != nil || !slices.Equal(got, []string{"127.0.0.5"}) {
		t.Fatalf("Refresh = %v, %v; want the new address", got, err)
	}
	if n := srv.Queries(name); n != 2 {
		t.Fatalf("queries = %d, want 2", n)
	}
	if len(seen.list()) != 1 {
		t.Fatalf("changes %+v, want one", seen.list())
	}
}

type fakeResolver struct {
	calls atomic.Int32
	fn    func(host string) ([]string, error)
}

func (f *fakeResolver) LookupHost(ctx context.Context, host string) ([]string, error) {
	f.calls.Add(1)
	return f.fn(host)
}

func TestStaleOnFailureAndErrors(t *testing.T) {
	var fail atomic.Bool
	dnsDown := errors.New("dns down")
	f := &fakeResolver{fn: func(string) ([]string, error) {
		if fail.Load() {
			return nil, dnsDown
		}
		return []string{"10.0.0.1"}, nil
	}}
	c := resolve.New(resolve.Options{Resolver: f, TTL: time.Millisecond, RetryAfter: time.Hour})
	ctx := context.Background()
	if _, err := c.LookupHost(ctx, "a.test"); err != nil {
		t.Fatal(err)
	}
	fail.Store(true)
	time.Sleep(5 * time.Millisecond)
	got, err := c.LookupHost(ctx, "a.test")
	if err != nil || !slices.Equal(got, []string{"10.0.0.1"}) {
		t.Fatalf("DNS down with a cached answer = %v, %v; want the stale answer", got, err)
	}
	c.LookupHost(ctx, "a.test") // within RetryAfter: no new query
	if n := f.calls.Load(); n != 2 {
		t.Fatalf("resolver calls = %d, want 2", n)
	}
	_, err = c.LookupHost(ctx, "b.test")
	var le *resolve.LookupError
	if !errors.As(err, &le) || !errors.Is(err, dnsDown) || le.Host != "b.test" {
		t.Fatalf("never-resolved name with DNS down = %v, want *LookupError", err)
	}
	if _, err := c.LookupHost(ctx, ""); !errors.Is(err, resolve.ErrEmptyHost) {
		t.Fatalf("empty host = %v", err)
	}
	fail.Store(false)
	f.fn = nil // must not be called for literals
	for _, lit := range []string{"127.0.0.1", "::1"} {
		if got, err := c.LookupHost(ctx, lit); err != nil || !slices.Equal(got, []string{lit}) {
			t.Fatalf("literal %s = %v, %v", lit, got, err)
		}
	}
}

func TestConcurrentLookupsShareOneQuery(t *testing.T) {
	release := make(chan struct{})
	f := &fakeResolver{fn: func(string) ([]string, error) {
		<-release
		return []string{"10.0.0.1", "10.0.0.2"}, nil
	}}
	c := resolve.New(resolve.Options{Resolver: f})
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	for range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			got, err := c.LookupHost(context.Background(), "a.test")
			if err == nil && len(got) != 2 {
				err = errors.New("short answer")
			}
			if err != nil {
				errs <- err
			}
		}()
	}
	time.Sleep(50 * time.Millisecond)
	close(release)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if n := f.calls.Load(); n != 1 {
		t.Fatalf("resolver calls = %d, want 1", n)
	}
	// A caller that has given up gets its context's error, not a stale or fresh answer.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	c.Forget("a.test")
	if _, err := c.LookupHost(ctx, "a.test"); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled lookup = %v", err)
	}
}
