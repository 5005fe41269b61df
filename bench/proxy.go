package main

import (
	"context"
	"fmt"
	"net"
	"sort"
	"time"

	"github.com/slotrouter/slotrouter/client"
	"github.com/slotrouter/slotrouter/proxy"
)

// proxyResult is redis-benchmark through slotrouter's proxy next to the
// same run against the cluster directly (--cluster), medians of rounds.
type proxyResult struct {
	test          string
	pipeline      int
	proxy, direct float64 // ops/s
}

// runProxyBench serves slotrouter's proxy in this process over a client of
// the cluster and runs redis-benchmark (50 connections) through it at -P 1
// and -P 16, interleaved round by round with the same -P 16 run against the
// cluster directly.
func runProxyBench(seeds []string, rounds int, dur time.Duration) ([]proxyResult, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	c, err := client.New(ctx, client.Options{Addrs: seeds})
	cancel()
	if err != nil {
		return nil, err
	}
	defer c.Close()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	srv := proxy.New(c, proxy.Options{})
	go srv.Serve(l)
	defer srv.Close()

	type key struct {
		test     string
		pipeline int
		direct   bool
	}
	got := map[key][]float64{}
	record := func(cs []ceiling, pipeline int, direct bool) {
		for _, x := range cs {
			k := key{x.test, pipeline, direct}
			got[k] = append(got[k], x.ops)
		}
	}
	for range rounds {
		for _, p := range []int{1, 16} {
			cs, err := redisBenchmark(l.Addr().String(), false, 50, p, dur, 30000*float64(p))
			if err != nil {
				return nil, fmt.Errorf("through the proxy: %w", err)
			}
			record(cs, p, false)
		}
		cs, err := redisBenchmark(seeds[0], true, 50, 16, dur, 700000)
		if err != nil {
			return nil, fmt.Errorf("directly: %w", err)
		}
		record(cs, 16, true)
	}
	median := func(v []float64) float64 {
		if len(v) == 0 {
			return 0
		}
		sort.Float64s(v)
		return v[len(v)/2]
	}
	var out []proxyResult
	for _, test := range []string{"SET", "GET"} {
		for _, p := range []int{1, 16} {
			r := proxyResult{test: test, pipeline: p, proxy: median(got[key{test, p, false}])}
			if p == 16 {
				r.direct = median(got[key{test, p, true}])
			}
			out = append(out, r)
		}
	}
	return out, nil
}

// runProxyOnly is -proxy: only the proxy rounds, their table on stdout
// (results/latest.md is left as the last full run wrote it).
func runProxyOnly(cfg *config) error {
	t, err := openTarget(cfg)
	if err != nil {
		return err
	}
	defer t.close()
	load := loadavg()
	pr, err := runProxyBench(t.seed, cfg.rounds, cfg.dur)
	if err != nil {
		return err
	}
	fmt.Printf("redis-benchmark -c 50 -d 16 -r 1024, medians of %d rounds; load average at start %s, at end %s\n\n", cfg.rounds, load, loadavg())
	fmt.Println("| test | pipeline | through the proxy | directly (--cluster) | ratio |")
	fmt.Println("|---|---|---|---|---|")
	for _, p := range pr {
		direct, ratio := "", ""
		if p.direct > 0 {
			direct, ratio = kops(p.direct), fmt.Sprintf("%.2f", p.proxy/p.direct)
		}
		fmt.Printf("| %s | %d | %s | %s | %s |\n", p.test, p.pipeline, kops(p.proxy), direct, ratio)
	}
	return nil
}
