package client

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/slotrouter/slotrouter/internal/redistest"
	"github.com/slotrouter/slotrouter/router"
	"github.com/slotrouter/slotrouter/slots"
)

// cacheWrite is one acknowledged write of value i, and when an invalidation
// it caused is known to have been applied by the cached client: a DoCache
// miss on the same slot sent after the acknowledgement has returned (Redis
// queues the invalidation on the tracking connection before it answers the
// writer, and the pipe applies pushes before any later reply).
type cacheWrite struct {
	i         int
	acked     time.Time
	delivered time.Time // zero: no barrier got through (failover)
}

type cacheRead struct {
	start time.Time
	v     int
}

// TestCacheNeverStale: a writer on one client, cached readers on another;
// a read started after a write's invalidation was delivered must not
// return an older value, through steady state, a slot migration and a
// kill -9 of a master. Every stale read is counted and reported.
func TestCacheNeverStale(t *testing.T) {
	cl := startCluster(t, redistest.ClusterOptions{Masters: 3, Replicas: 1})
	w := newTestClient(t, cl, Options{})
	c := newTestClient(t, cl, Options{Cache: &CacheOptions{}})
	masters := cl.Masters()
	killed, migrated := masters[0], masters[1]
	killSlot := slotOwnedBy(t, cl, killed, 0)
	moveSlot := slotOwnedBy(t, cl, migrated, 0)
	keys := []string{keyIn(killSlot, "k"), keyIn(moveSlot, "k")}
	ctx := context.Background()
	for _, k := range keys {
		if err := w.Do(ctx, "SET", k, 0).Err(); err != nil {
			t.Fatal(err)
		}
	}

	stop := make(chan struct{})
	var wg sync.WaitGroup
	writes := make([][]cacheWrite, len(keys))
	reads := make([][]cacheRead, len(keys)*3)
	var mu sync.Mutex
	for ki, k := range keys {
		wg.Add(1)
		go func() { // the writer of k, with a delivery barrier per write
			defer wg.Done()
			for i := 1; i < 100000; i++ {
				select {
				case <-stop:
					return
				default:
				}
				wctx, cancel := context.WithTimeout(ctx, 2*time.Second)
				err := w.Do(wctx, "SET", k, i).Err()
				cancel()
				if err != nil {
					continue // not acknowledged: not a promise
				}
				wr := cacheWrite{i: i, acked: time.Now()}
				bctx, cancel := context.WithTimeout(ctx, 2*time.Second)
				probe := k[:len(k)-1] + "probe" + strconv.Itoa(i)
				if r := c.DoCache(bctx, 0, "GET", probe); r.Kind() == KindNil {
					wr.delivered = time.Now()
				}
				cancel()
				mu.Lock()
				writes[ki] = append(writes[ki], wr)
				mu.Unlock()
				time.Sleep(time.Millisecond)
			}
		}()
		for r := range 3 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				out := &reads[ki*3+r]
				for n := 0; n < 200000; n++ {
					select {
					case <-stop:
						return
					default:
					}
					start := time.Now()
					rctx, cancel := context.WithTimeout(ctx, 2*time.Second)
					v, err := c.DoCache(rctx, 0, "GET", k).Int64()
					cancel()
					if err == nil {
						*out = append(*out, cacheRead{start, int(v)})
					}
				}
			}()
		}
	}

	learnt := map[string]time.Time{}
	waitLearnt := func(name string, slot slots.Slot, old string) {
		dl := time.Now().Add(30 * time.Second)
		for c.Router().Serves(&router.Attempt{Slot: slot, HasSlot: true}, old) && time.Now().Before(dl) {
			time.Sleep(5 * time.Millisecond)
		}
		learnt[name] = time.Now()
	}
	time.Sleep(time.Second)
	cl.MigrateSlot(int(moveSlot), migrated, masters[2])
	waitLearnt("migration", moveSlot, migrated.Addr)
	time.Sleep(time.Second)
	killed.Kill()
	pctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	cl.WaitPromoted(pctx, killed)
	cancel()
	waitLearnt("kill -9", killSlot, killed.Addr)
	time.Sleep(1500 * time.Millisecond)
	close(stop)
	wg.Wait()

	stale, staleAfterLearnt, inWindow, total := 0, 0, 0, 0
	for ki := range keys {
		acked := writes[ki]
		var ws []cacheWrite // acknowledged and delivered, in order
		for _, wr := range acked {
			if !wr.delivered.IsZero() {
				ws = append(ws, wr)
			}
		}
		if len(ws) < 20 {
			t.Fatalf("key %d: only %d acknowledged and delivered writes", ki, len(ws))
		}
		for r := range 3 {
			for _, rd := range reads[ki*3+r] {
				total++
				// The newest write whose invalidation was delivered before
				// the read started.
				// Older than a write acknowledged before the read started,
				// whose invalidation may still have been on its way: allowed,
				// but counted.
				if a := sort.Search(len(acked), func(j int) bool { return !acked[j].acked.Before(rd.start) }); a > 0 && rd.v < acked[a-1].i {
					inWindow++
				}
				j := sort.Search(len(ws), func(j int) bool {
					return !ws[j].delivered.Before(rd.start)
				})
				if j > 0 && rd.v < ws[j-1].i {
					stale++
					for _, at := range learnt {
						if rd.start.After(at) {
							staleAfterLearnt++
							break
						}
					}
					if stale <= 5 {
						t.Errorf("stale read on key %d: started %s, got %d after write %d was delivered at %s", ki,
							rd.start.Format("15:04:05.000000"), rd.v, ws[j-1].i, ws[j-1].delivered.Format("15:04:05.000000"))
					}
				}
			}
		}
	}
	st := c.CacheStats()
	t.Logf("cached reads %d (hits %d, misses %d, invalidations %d), writes %d+%d; older than an acknowledged write: %d, of them after its invalidation was delivered: %d (after the client learnt of a move: %d)",
		total, st.Hits, st.Misses, st.Invalidations, len(writes[0]), len(writes[1]), inWindow, stale, staleAfterLearnt)
	if st.Hits == 0 || st.Invalidations == 0 {
		t.Errorf("the cache was not exercised: %+v", st)
	}
}

// TestCacheBasics: refusals, hits, invalidation by another client, the
// memory bound.
func TestCacheBasics(t *testing.T) {
	cl := startCluster(t, redistest.ClusterOptions{Masters: 3})
	ctx := context.Background()
	plain := newTestClient(t, cl, Options{})
	if err := plain.DoCache(ctx, 0, "GET", "x").Err(); !errors.Is(err, ErrNotCacheable) {
		t.Fatalf("DoCache without Options.Cache: %v, want ErrNotCacheable", err)
	}
	c := newTestClient(t, cl, Options{Cache: &CacheOptions{MaxBytes: 64 << 10}})
	for _, args := range [][]any{{"SET", "x", 1}, {"MGET", "{t}a", "{t}b"}, {"PING"}} {
		if err := c.DoCache(ctx, 0, args...).Err(); !errors.Is(err, ErrNotCacheable) {
			t.Errorf("DoCache %v: %v, want ErrNotCacheable", args, err)
		}
	}
	if err := plain.Do(ctx, "SET", "x", "v1").Err(); err != nil {
		t.Fatal(err)
	}
	for range 3 {
		if v, err := c.DoCache(ctx, 0, "GET", "x").Text(); err != nil || v != "v1" {
			t.Fatalf("DoCache GET x = %q, %v", v, err)
		}
	}
	if st := c.CacheStats(); st.Hits != 2 || st.Misses != 1 {
		t.Fatalf("after 3 reads: %+v, want 2 hits, 1 miss", st)
	}
	if err := plain.Do(ctx, "SET", "x", "v2").Err(); err != nil {
		t.Fatal(err)
	}
	dl := time.Now().Add(5 * time.Second)
	for c.CacheStats().Invalidations == 0 && time.Now().Before(dl) {
		time.Sleep(time.Millisecond)
	}
	if v, err := c.DoCache(ctx, 0, "GET", "x").Text(); err != nil || v != "v2" {
		t.Fatalf("after the invalidation: %q, %v; want v2", v, err)
	}
	// Ordinary Do keeps RESP2 shapes: the tracking connections are separate.
	if err := plain.Do(ctx, "HSET", "h", "f", "1").Err(); err != nil {
		t.Fatal(err)
	}
	if r := c.Do(ctx, "HGETALL", "h"); r.Kind() != KindArray {
		t.Errorf("Do HGETALL kind %v, want array", r.Kind())
	}
	// The memory bound: 1000 values of 1 KiB into 64 KiB.
	val := string(make([]byte, 1024))
	for i := range 1000 {
		k := fmt.Sprintf("big%d", i)
		if err := plain.Do(ctx, "SET", k, val).Err(); err != nil {
			t.Fatal(err)
		}
		if err := c.DoCache(ctx, 0, "GET", k).Err(); err != nil {
			t.Fatal(err)
		}
	}
	st := c.CacheStats()
	if st.Bytes > 64<<10 || st.Evictions == 0 {
		t.Errorf("memory bound: %+v, want Bytes <= 65536 and evictions", st)
	}
	// TTL: an entry older than its ttl is read again.
	before := c.CacheStats().Misses
	_ = c.DoCache(ctx, 20*time.Millisecond, "GET", "ttl")
	time.Sleep(40 * time.Millisecond)
	_ = c.DoCache(ctx, 20*time.Millisecond, "GET", "ttl")
	if got := c.CacheStats().Misses - before; got != 2 {
		t.Errorf("ttl: %d misses, want 2", got)
	}
}

// TestCacheRoleProbeSwitch: with role-probed nodes, a value cached from the
// old master is never served once the client's view names the new one,
// though the old master's tracking connection stays up.
func TestCacheRoleProbeSwitch(t *testing.T) {
	redistest.Require(t)
	a := redistest.StartServer(t, redistest.ServerOptions{})
	b := redistest.StartServer(t, redistest.ServerOptions{ReplicaOf: a.Addr})
	redistest.WaitLinked(t, a.Addr, b)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	c, err := New(ctx, Options{
		Addrs:     []string{a.Addr, b.Addr},
		RoleProbe: &RoleProbeOptions{Interval: 100 * time.Millisecond},
		Cache:     &CacheOptions{},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	mustDoServer(t, a, "SET", "k", "old")
	for range 2 {
		if v, err := c.DoCache(ctx, 0, "GET", "k").Text(); err != nil || v != "old" {
			t.Fatalf("GET k = %q, %v", v, err)
		}
	}
	if st := c.CacheStats(); st.Hits != 1 {
		t.Fatalf("%+v, want one hit", st)
	}
	mustDoServer(t, b, "REPLICAOF", "NO", "ONE")
	waitFor(t, 10*time.Second, "the view names b master", func() error {
		if sh := c.Topology().Shards(); len(sh) != 1 || sh[0].Master.Addr != b.Addr {
			return notYet("view %v", sh)
		}
		return nil
	})
	mustDoServer(t, b, "SET", "k", "new")
	// a still answers "old" (it is a master of nothing now, not yet a
	// replica): only the view tells the cache its entry is void.
	if v, err := c.DoCache(ctx, 0, "GET", "k").Text(); err != nil || v != "new" {
		t.Fatalf("after the switch: GET k = %q, %v; want new (stale)", v, err)
	}
	if v, err := a.Do(ctx, "GET", "k"); err != nil || v != "old" {
		t.Fatalf("a says %v, %v: the test needs it to still hold the old value", v, err)
	}
}

// BenchmarkDoCacheHit: the hit path (one hot key, every goroutine).
func BenchmarkDoCacheHit(b *testing.B) {
	s := redistest.StartServer(b, redistest.ServerOptions{})
	ctx := context.Background()
	c, err := New(ctx, Options{Addrs: []string{s.Addr}, Cache: &CacheOptions{}})
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	c.Do(ctx, "SET", "hot:1", "v")
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if err := c.DoCache(ctx, time.Minute, "GET", "hot:1").Err(); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// TestCacheSentinelFailover: through a Sentinel failover (kill -9 of the
// master), a value cached from the old master is never served once the
// client's view names the new one.
func TestCacheSentinelFailover(t *testing.T) {
	redistest.Require(t)
	redistest.RequireSentinel(t)
	g := redistest.StartSentinelGroup(t, redistest.SentinelOptions{
		Replicas: 1, Sentinels: 3,
		DownAfter: 1500 * time.Millisecond, FailoverTimeout: 5 * time.Second,
	})
	old := g.Master()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	c, err := New(ctx, Options{
		Sentinel: &SentinelOptions{MasterName: g.MasterName(), Addrs: g.SentinelAddrs()},
		Cache:    &CacheOptions{},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Do(ctx, "SET", "k", "old").Err(); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if v, err := c.DoCache(ctx, 0, "GET", "k").Text(); err != nil || v != "old" {
			t.Fatalf("GET k = %q, %v", v, err)
		}
	}
	old.Kill()
	waitFor(t, 45*time.Second, "the view names a new master", func() error {
		if sh := c.Topology().Shards(); len(sh) != 1 || sh[0].Master.Addr == old.Addr {
			return notYet("view %v", sh)
		}
		return nil
	})
	waitFor(t, 10*time.Second, "a write on the new master", func() error {
		wctx, cancel := context.WithTimeout(ctx, time.Second)
		defer cancel()
		return c.Do(wctx, "SET", "k", "new").Err()
	})
	stale := 0
	for range 1000 {
		if v, err := c.DoCache(ctx, 0, "GET", "k").Text(); err != nil {
			t.Fatal(err)
		} else if v != "new" {
			stale++
		}
	}
	t.Logf("stale reads after the client learnt of the new master and wrote to it: %d of 1000", stale)
	if stale != 0 {
		t.Errorf("%d stale reads", stale)
	}
}

// TestCacheBroadcast: with Broadcast and a prefix, the tracking connection
// runs in BCAST mode and a change of a key under the prefix invalidates it.
func TestCacheBroadcast(t *testing.T) {
	redistest.Require(t)
	s := redistest.StartServer(t, redistest.ServerOptions{})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	c, err := New(ctx, Options{Addrs: []string{s.Addr}, Cache: &CacheOptions{Broadcast: true, Prefixes: []string{"b:"}}})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	mustDoServer(t, s, "SET", "b:x", "1")
	if v, err := c.DoCache(ctx, 0, "GET", "b:x").Text(); err != nil || v != "1" {
		t.Fatalf("GET b:x = %q, %v", v, err)
	}
	mustDoServer(t, s, "SET", "b:x", "2")
	waitFor(t, 5*time.Second, "the broadcast invalidation", func() error {
		if c.CacheStats().Invalidations == 0 {
			return notYet("no invalidation yet")
		}
		return nil
	})
	if v, err := c.DoCache(ctx, 0, "GET", "b:x").Text(); err != nil || v != "2" {
		t.Fatalf("after the invalidation: %q, %v; want 2", v, err)
	}
	// The server confirms BCAST tracking on the tracking connection (CLIENT
	// LIST flags: t = tracking, B = broadcast).
	list, err := s.Do(ctx, "CLIENT", "LIST")
	if err != nil {
		t.Fatal(err)
	}
	bcast := false
	for _, line := range strings.Split(fmt.Sprint(list), "\n") {
		for _, f := range strings.Fields(line) {
			if v, ok := strings.CutPrefix(f, "flags="); ok && strings.Contains(v, "t") && strings.Contains(v, "B") {
				bcast = true
			}
		}
	}
	if !bcast {
		t.Errorf("CLIENT LIST shows no broadcast-tracking connection:\n%v", list)
	}
}
