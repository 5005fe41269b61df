package proxy

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/redis/go-redis/v9/maintnotifications"

	"github.com/slotrouter/slotrouter/client"
	"github.com/slotrouter/slotrouter/internal/redistest"
	"github.com/slotrouter/slotrouter/slots"
)

// TestFailoverThroughProxy: a go-redis client writing through the
// in-process dialer, 5 s per call as its only deadline, keeps writing
// through kill -9 of a master: no call fails, and the first write on the
// dead master's slots lands within 150 ms of the promotion (the promise
// client.Client keeps in client/integration_failover_test.go). Writes are
// SETs, marked retryable with Options.Idempotent as that test marks them.
func TestFailoverThroughProxy(t *testing.T) {
	cl := redistest.StartCluster(t, redistest.ClusterOptions{Masters: 3, Replicas: 1})
	c := newClient(t, cl, client.Options{})
	srv := New(c, Options{Idempotent: true})
	t.Cleanup(func() { srv.Close() })
	rdb := redis.NewClient(&redis.Options{
		Dialer:                   srv.DialContext,
		MaxRetries:               -1, // what is measured is the proxy's riding out, not go-redis retrying
		ReadTimeout:              5 * time.Second,
		WriteTimeout:             5 * time.Second,
		ContextTimeoutEnabled:    true,
		PoolSize:                 64,
		MaintNotificationsConfig: &maintnotifications.Config{Mode: maintnotifications.ModeDisabled},
	})
	t.Cleanup(func() { rdb.Close() })

	masters := cl.Masters()
	victim := masters[1]
	shardOf := func(key string) int {
		m := cl.MasterOf(int(slots.Of(key)))
		for i, x := range masters {
			if x == m {
				return i
			}
		}
		t.Fatalf("key %s: owner not a master", key)
		return -1
	}
	// Four writers per shard, each on its own key of that shard.
	type writer struct {
		key   string
		shard int
	}
	var writers []writer
	perShard := make([]int, len(masters))
	for i := 0; len(writers) < 4*len(masters); i++ {
		k := fmt.Sprintf("fo:%d", i)
		if s := shardOf(k); perShard[s] < 4 {
			perShard[s]++
			writers = append(writers, writer{k, s})
		}
	}

	type op struct {
		shard      int
		start, end time.Time
		err        error
	}
	var mu sync.Mutex
	var ops []op
	var stop atomic.Bool
	var wg sync.WaitGroup
	for _, w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for n := 0; !stop.Load(); n++ {
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				start := time.Now()
				err := rdb.Set(ctx, w.key, n, 0).Err()
				cancel()
				mu.Lock()
				ops = append(ops, op{w.shard, start, time.Now(), err})
				mu.Unlock()
				time.Sleep(5 * time.Millisecond)
			}
		}()
	}
	time.Sleep(time.Second)
	faultAt := time.Now()
	victim.Kill()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	_, promotedAt := cl.WaitPromoted(ctx, victim)
	time.Sleep(6 * time.Second) // past every call in flight at the promotion
	stop.Store(true)
	wg.Wait()

	var first time.Time
	errs := make([]int, len(masters))
	calls := make([]int, len(masters))
	for _, o := range ops {
		calls[o.shard]++
		if o.err != nil {
			errs[o.shard]++
			if errs[o.shard] <= 3 {
				t.Logf("shard %d call at %s failed: %v", o.shard, o.start.Format("15:04:05.000"), o.err)
			}
			continue
		}
		if o.shard == 1 && o.start.After(faultAt) && (first.IsZero() || o.end.Before(first)) {
			first = o.end
		}
	}
	if first.IsZero() {
		t.Fatal("no write on the failed shard succeeded after the kill")
	}
	t.Logf("kill -9 -> promotion %v; promotion -> first write on the failed shard %v; calls per shard %v, errors %v",
		promotedAt.Sub(faultAt).Round(time.Millisecond), first.Sub(promotedAt).Round(time.Millisecond), calls, errs)
	if d := first.Sub(promotedAt); d > 150*time.Millisecond {
		t.Errorf("first write on the failed shard %v after the promotion; want <= 150ms", d)
	}
	for i, n := range errs {
		if n > 0 {
			t.Errorf("shard %d: %d of %d calls failed; want none", i, n, calls[i])
		}
	}
}
