package main

import (
	"math/rand/v2"
	"sort"
	"strings"
	"testing"
	"time"
)

// The histogram's quantiles stay within its resolution of the exact ones.
func TestHistogramQuantiles(t *testing.T) {
	var h histogram
	var all []time.Duration
	r := rand.New(rand.NewPCG(1, 2))
	for range 100000 {
		d := time.Duration(r.ExpFloat64() * float64(200*time.Microsecond))
		all = append(all, d)
		h.record(d)
	}
	sort.Slice(all, func(i, j int) bool { return all[i] < all[j] })
	for _, q := range []float64{0.5, 0.99, 0.999} {
		exact := all[int(q*float64(len(all)))]
		got := h.quantile(q)
		if diff := float64(got-exact) / float64(exact); diff < -0.03 || diff > 0.03 {
			t.Errorf("q%v: got %v, exact %v", q, got, exact)
		}
	}
	for _, ns := range []uint64{0, 1, 63, 64, 65, 127, 128, 1000, 123456789} {
		if v := bucketValue(bucketOf(ns)); v > ns || float64(ns-v) > 0.016*float64(ns)+1 {
			t.Errorf("bucket of %d starts at %d", ns, v)
		}
	}
}

// redis-benchmark 7 --csv output, as printed with --cluster (node lines
// first).
const benchCSV = `Cluster has 3 master nodes:

Master 0: 2b8c1d0a 127.0.0.1:30001
Master 1: 6f0e7d1c 127.0.0.1:30002
Master 2: 9a1b2c3d 127.0.0.1:30003

"test","rps","avg_latency_ms","min_latency_ms","p50_latency_ms","p95_latency_ms","p99_latency_ms","max_latency_ms"
"SET","95238.10","0.285","0.080","0.255","0.471","0.855","3.567"
"GET","113636.37","0.236","0.064","0.215","0.375","0.623","2.015"
`

func TestParseBenchCSV(t *testing.T) {
	cs, err := parseBenchCSV(benchCSV, 50, 1)
	if err != nil {
		t.Fatal(err)
	}
	if len(cs) != 2 || cs[1].test != "GET" || cs[1].ops != 113636.37 || cs[1].p99 != 623*time.Microsecond || cs[0].clients != 50 {
		t.Fatalf("parsed %+v", cs)
	}
	if _, err := parseBenchCSV("garbage", 1, 1); err == nil {
		t.Fatal("no error for output without results")
	}
}

// The report marks ratios against the best peer and renders a well-formed
// chart for whatever rows exist.
func TestReport(t *testing.T) {
	r := &results{
		clients:    []string{"slotrouter", "rueidis", "go-redis"},
		workloads:  []string{"GET"},
		goroutines: []int{1, 16},
		cells: map[string]map[string]cell{
			"GET/1":  {"slotrouter": {sample{ops: 20000}, true}, "rueidis": {sample{ops: 10000}, true}, "go-redis": {sample{ops: 16000}, true}},
			"GET/16": {"slotrouter": {sample{ops: 90000}, true}, "rueidis": {sample{ops: 60000}, true}},
		},
	}
	md := r.markdown()
	for _, want := range []string{"**20.0k (1.25x)**", "16.0k (1.00x)", "**90.0k (1.50x)**", "| GET | 16 |", "n/a"} {
		if !strings.Contains(md, want) {
			t.Errorf("markdown lacks %q:\n%s", want, md)
		}
	}
	svg := r.svg("t")
	if !strings.HasPrefix(svg, "<svg") || strings.Count(svg, "<polyline") != 3 || !strings.HasSuffix(svg, "</svg>\n") {
		t.Errorf("svg:\n%s", svg)
	}
}

// The proxy table puts each mode's ratio to the direct run beside it, and
// only -P 16 rows have one.
func TestProxyTable(t *testing.T) {
	two := proxyTable([]proxyResult{
		{test: "SET", pipeline: 1, procs: 2, proxy: 20000, proxy1: 25000},
		{test: "SET", pipeline: 16, procs: 2, proxy: 200000, proxy1: 300000, direct: 500000},
	})
	for _, want := range []string{"GOMAXPROCS 2 | ratio | through the proxy, GOMAXPROCS 1", "| SET | 1 | 20.0k | - | 25.0k | - | - |", "| SET | 16 | 200.0k | 0.40 | 300.0k | 0.60 | 500.0k |"} {
		if !strings.Contains(two, want) {
			t.Errorf("table lacks %q:\n%s", want, two)
		}
	}
	one := proxyTable([]proxyResult{{test: "GET", pipeline: 16, procs: 1, proxy: 300000, direct: 400000}})
	if want := "| GET | 16 | 300.0k | 0.75 | 400.0k |"; !strings.Contains(one, want) || strings.Contains(one, "GOMAXPROCS 2") {
		t.Errorf("one-mode table, want %q:\n%s", want, one)
	}
}
