package main

import (
	"context"
	"fmt"
	"net"
	"runtime"
	"strings"
	"time"

	"github.com/slotrouter/slotrouter/client"
	"github.com/slotrouter/slotrouter/proxy"
)

// proxyResult is redis-benchmark through slotrouter's proxy next to the
// same run against the cluster directly (--cluster), medians of rounds.
type proxyResult struct {
	test     string
	pipeline int
	procs    int     // the proxy process's GOMAXPROCS for proxy
	proxy    float64 // ops/s
	proxy1   float64 // ops/s with GOMAXPROCS 1 (0: not run, procs is already 1)
	direct   float64 // ops/s, -P 16 only
}

// runProxyBench serves slotrouter's proxy in this process over a client of
// the cluster and runs redis-benchmark (50 connections) through it at -P 1
// and -P 16, interleaved round by round with the same -P 16 run against the
// cluster directly. When this process has more than one P, each proxy run is
// repeated with GOMAXPROCS 1: on a machine whose cores the servers and
// redis-benchmark also need, a proxy that keeps to one thread hands work
// between goroutines without waking a second thread each time.
// benchCPU >= 0 runs redis-benchmark on that CPU (layout B).
func runProxyBench(seeds []string, rounds int, dur time.Duration, benchCPU int) ([]proxyResult, error) {
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

	procs := runtime.GOMAXPROCS(0)
	modes := []int{procs}
	if procs > 1 {
		modes = append(modes, 1)
	}
	defer runtime.GOMAXPROCS(procs)
	type key struct {
		test     string
		pipeline int
		procs    int // 0: directly
	}
	got := map[key][]float64{}
	record := func(cs []ceiling, pipeline, procs int) {
		for _, x := range cs {
			k := key{x.test, pipeline, procs}
			got[k] = append(got[k], x.ops)
		}
	}
	for r := range rounds {
		// Each round swaps which mode goes first, so neither always takes
		// the machine's slow spells right after the direct run.
		for i := range modes {
			m := modes[(i+r)%len(modes)]
			runtime.GOMAXPROCS(m)
			for _, p := range []int{1, 16} {
				cs, err := redisBenchmark(l.Addr().String(), false, 50, p, dur, 30000*float64(p), benchCPU)
				if err != nil {
					return nil, fmt.Errorf("through the proxy: %w", err)
				}
				record(cs, p, m)
			}
		}
		runtime.GOMAXPROCS(procs)
		cs, err := redisBenchmark(seeds[0], true, 50, 16, dur, 700000, benchCPU)
		if err != nil {
			return nil, fmt.Errorf("directly: %w", err)
		}
		record(cs, 16, 0)
	}
	var out []proxyResult
	for _, test := range []string{"SET", "GET"} {
		for _, p := range []int{1, 16} {
			r := proxyResult{test: test, pipeline: p, procs: procs, proxy: median(got[key{test, p, procs}])}
			if procs > 1 {
				r.proxy1 = median(got[key{test, p, 1}])
			}
			if p == 16 {
				r.direct = median(got[key{test, p, 0}])
			}
			out = append(out, r)
		}
	}
	return out, nil
}

// proxyTable is the proxy rounds as a markdown table: ratios are to the
// direct run, which only -P 16 has.
func proxyTable(pr []proxyResult) string {
	var b strings.Builder
	two := len(pr) > 0 && pr[0].proxy1 > 0
	modes := []string{"GOMAXPROCS 1"}
	if two {
		modes = []string{fmt.Sprintf("GOMAXPROCS %d", pr[0].procs), "GOMAXPROCS 1"}
	}
	tableHead(&b, []string{"test", "pipeline"}, modes, []string{"through the proxy, {}", "ratio"}, []string{"directly (--cluster)"})
	ratio := func(x, d float64) string {
		if d == 0 {
			return "-"
		}
		return fmt.Sprintf("%.2f", x/d)
	}
	for _, p := range pr {
		direct := "-"
		if p.direct > 0 {
			direct = kops(p.direct)
		}
		fmt.Fprintf(&b, "| %s | %d | %s | %s |", p.test, p.pipeline, kops(p.proxy), ratio(p.proxy, p.direct))
		if two {
			fmt.Fprintf(&b, " %s | %s |", kops(p.proxy1), ratio(p.proxy1, p.direct))
		}
		fmt.Fprintf(&b, " %s |\n", direct)
	}
	return b.String()
}

// runProxyOnly is -proxy: only the proxy rounds, their table on stdout
// (results/latest.md is left as the last full run wrote it). With -pin
// (layout B) the nodes and redis-benchmark share CPU 0, in the direct runs
// too, and this process, the proxy, has CPU 1 to itself: the proxy's cost
// when it does not take its CPU from the servers, as on a host of its own.
func runProxyOnly(cfg *config) error {
	t, err := openTarget(cfg)
	if err != nil {
		return err
	}
	defer t.close()
	benchCPU := -1
	layout := "layout A: the nodes, redis-benchmark and the proxy share every CPU"
	if cfg.pin {
		if err := pin(t, 0, 1); err != nil {
			return fmt.Errorf("-pin: %w", err)
		}
		benchCPU = 0
		layout = "layout B: the nodes and redis-benchmark on CPU 0 (in the direct runs too), the proxy alone on CPU 1"
	}
	load := loadavg()
	pr, err := runProxyBench(t.seed, cfg.rounds, cfg.dur, benchCPU)
	if err != nil {
		return err
	}
	fmt.Printf("redis-benchmark -c 50 -d 16 -r 1024, medians of %d rounds; %s; load average at start %s, at end %s\n\n", cfg.rounds, layout, load, loadavg())
	fmt.Print(proxyTable(pr))
	return nil
}
