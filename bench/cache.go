package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/rueidis"

	"github.com/slotrouter/slotrouter/client"
)

// The -cache table: client-side cached GETs of a hot key set, slotrouter
// DoCache against rueidis DoCache (both with server-assisted invalidation,
// default tracking mode). Every key has its own value and every reply is
// compared with it.

const (
	cacheKeys = 256
	cacheTTL  = time.Minute
)

type cacheGetter func(ctx context.Context, key string) (string, error)

type cacheClient struct {
	name string
	dial func(ctx context.Context, addrs []string) (cacheGetter, func(), error)
}

var cacheClients = []cacheClient{
	{"slotrouter", func(ctx context.Context, addrs []string) (cacheGetter, func(), error) {
		c, err := client.New(ctx, client.Options{Addrs: addrs, Cache: &client.CacheOptions{}})
		if err != nil {
			return nil, nil, err
		}
		return func(ctx context.Context, key string) (string, error) {
			return c.DoCache(ctx, cacheTTL, "GET", key).Text()
		}, func() { _ = c.Close() }, nil
	}},
	{"rueidis", func(ctx context.Context, addrs []string) (cacheGetter, func(), error) {
		c, err := rueidis.NewClient(rueidis.ClientOption{InitAddress: addrs})
		if err != nil {
			return nil, nil, err
		}
		return func(ctx context.Context, key string) (string, error) {
			return c.DoCache(ctx, c.B().Get().Key(key).Cache(), cacheTTL).ToString()
		}, c.Close, nil
	}},
}

var cacheKeyNames, cacheValues = func() (k, v []string) {
	for i := range cacheKeys {
		k = append(k, "hot:"+strconv.Itoa(i))
		v = append(v, "value-of-"+strconv.Itoa(i))
	}
	return k, v
}()

func cacheKey(i int) string { return cacheKeyNames[i] }
func cacheVal(i int) string { return cacheValues[i] }

// runCache measures each client at each concurrency for cfg.rounds rounds
// and writes results/cache.md.
func runCache(cfg *config, t *target) error {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	sr, err := client.New(ctx, client.Options{Addrs: t.seed})
	if err != nil {
		return err
	}
	for i := range cacheKeys {
		if err := sr.Do(ctx, "SET", cacheKey(i), cacheVal(i)).Err(); err != nil {
			_ = sr.Close()
			return err
		}
	}
	_ = sr.Close()
	type cellKey struct {
		client string
		g      int
	}
	ops := map[cellKey][]float64{}
	allocs := map[cellKey][]float64{}
	for _, cc := range cacheClients {
		dctx, cancel := context.WithTimeout(context.Background(), dialTimeout)
		get, closeFn, err := cc.dial(dctx, t.seed)
		cancel()
		if err != nil {
			return fmt.Errorf("%s: %w", cc.name, err)
		}
		for round := range cfg.rounds {
			for _, g := range cfg.goroutines {
				o, a, err := measureCache(get, g, cfg.warm, cfg.dur)
				if err != nil {
					closeFn()
					return fmt.Errorf("%s: %w", cc.name, err)
				}
				k := cellKey{cc.name, g}
				ops[k], allocs[k] = append(ops[k], o), append(allocs[k], a)
				logf("cache %s g=%d round %d: %.0f GET/s, %.2f allocs/op", cc.name, g, round+1, o, a)
			}
		}
		closeFn()
	}
	var b strings.Builder
	fmt.Fprintf(&b, "# Client-side cached GET of %d hot keys (DoCache)\n\n", cacheKeys)
	fmt.Fprintf(&b, "%s, GOMAXPROCS %d, %d rounds of %v (warm-up %v), medians; load average at the end: %s.\n\n",
		time.Now().UTC().Format("2006-01-02 15:04 MST"), runtime.GOMAXPROCS(0), cfg.rounds, cfg.dur, cfg.warm, loadavg())
	b.WriteString("| goroutines | slotrouter GET/s | rueidis GET/s | ratio | slotrouter allocs/op | rueidis allocs/op |\n|---|---|---|---|---|---|\n")
	for _, g := range cfg.goroutines {
		so, ro := median(ops[cellKey{"slotrouter", g}]), median(ops[cellKey{"rueidis", g}])
		sa, ra := median(allocs[cellKey{"slotrouter", g}]), median(allocs[cellKey{"rueidis", g}])
		fmt.Fprintf(&b, "| %d | %.0fk | %.0fk | %.2fx | %.2f | %.2f |\n", g, so/1e3, ro/1e3, so/ro, sa, ra)
	}
	if err := os.MkdirAll(cfg.out, 0o755); err != nil {
		return err
	}
	fmt.Print(b.String())
	return os.WriteFile(filepath.Join(cfg.out, "cache.md"), []byte(b.String()), 0o644)
}

// measureCache runs g goroutines calling get on the hot keys for warm+dur
// and returns GETs/s and allocations per GET over dur. A wrong value is an
// error.
func measureCache(get cacheGetter, g int, warm, dur time.Duration) (float64, float64, error) {
	var measuring, stop atomic.Bool
	var count atomic.Int64
	var firstErr atomic.Value
	var wg sync.WaitGroup
	for w := range g {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx := context.Background()
			n := int64(0)
			for i := 0; !stop.Load(); i++ {
				k := (w*7919 + i*31) % cacheKeys
				v, err := get(ctx, cacheKey(k))
				if err == nil && v != cacheVal(k) {
					err = fmt.Errorf("GET %s = %q, want %q", cacheKey(k), v, cacheVal(k))
				}
				if err != nil {
					firstErr.CompareAndSwap(nil, err)
					return
				}
				if measuring.Load() {
					n++
				}
			}
			count.Add(n)
		}()
	}
	time.Sleep(warm)
	var m0, m1 runtime.MemStats
	runtime.ReadMemStats(&m0)
	t0 := time.Now()
	measuring.Store(true)
	time.Sleep(dur)
	measuring.Store(false)
	el := time.Since(t0)
	runtime.ReadMemStats(&m1)
	stop.Store(true)
	wg.Wait()
	if e := firstErr.Load(); e != nil {
		return 0, 0, e.(error)
	}
	n := float64(count.Load())
	if n == 0 {
		return 0, 0, fmt.Errorf("no GET completed")
	}
	return n / el.Seconds(), float64(m1.Mallocs-m0.Mallocs) / n, nil
}
