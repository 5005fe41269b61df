package main

import (
	"math"
	"math/rand/v2"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/slotrouter/slotrouter/topology"
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

func TestPairedVerdict(t *testing.T) {
	ms := func(xs ...int) []time.Duration {
		var ds []time.Duration
		for _, x := range xs {
			ds = append(ds, time.Duration(x)*time.Millisecond)
		}
		return ds
	}
	base := ms(100, 100, 100, 100, 100)
	// The peer took 10% longer on every call: slotrouter is ahead.
	if r := pairedRatio(base, ms(110, 110, 110, 110, 110)); r.med != 1.1 || verdict(r, 0.01) != "ahead" {
		t.Errorf("peer 10%% slower: %v, %s", r, verdict(r, 0.01))
	}
	// 1% behind is level at a 1.5% resolution, behind at 0.5%.
	peer := pairedRatio(base, ms(99, 99, 99, 99, 99))
	if v := verdict(peer, 0.015); !strings.HasPrefix(v, "level") {
		t.Errorf("1%% behind at 1.5%% resolution: %s", v)
	}
	if v := verdict(peer, 0.005); v != "behind by 1.0%" {
		t.Errorf("1%% behind at 0.5%% resolution: %s", v)
	}
	// A control whose interval reaches 5% from 1 is capped at pairCap.
	if res, capped := resolution(ratioCI{med: 1, lo: 0.95, hi: 1.01, n: 9}); res != pairCap || !capped {
		t.Errorf("resolution of a noisy control = %v, capped %v", res, capped)
	}
	if res, capped := resolution(ratioCI{med: 1, lo: 0.995, hi: 1.008, n: 9}); math.Abs(res-0.008) > 1e-9 || capped {
		t.Errorf("resolution = %v, capped %v", res, capped)
	}
	// The interval brackets the median and pairs only calls both made.
	r := pairedRatio(ms(100, 100, 100), ms(90, 100, 120, 500))
	if r.n != 3 || r.lo > r.med || r.hi < r.med || r.med != 1 {
		t.Errorf("pairedRatio = %+v", r)
	}
}

func TestLiveAddrs(t *testing.T) {
	out := "07c37dfeb235213a872192d90877d0cd55635b91 127.0.0.1:30004@31004 slave e7d1eecce10fd6bb5eb35b9f99a514335d9ba9ca 0 1426238317239 4 connected\n" +
		"67ed2db8d677e59ec4a4cefb06858cf2a1a89fa1 127.0.0.1:30002@31002 master,fail - 0 1426238316232 2 connected 5461-10922\n" +
		"e7d1eecce10fd6bb5eb35b9f99a514335d9ba9ca :0@0 myself,master - 0 0 1 connected 0-5460\n"
	nodes, err := topology.ParseClusterNodes([]byte(out))
	if err != nil {
		t.Fatal(err)
	}
	got := strings.Join(liveAddrs(nodes, "127.0.0.1:30001"), " ")
	if want := "127.0.0.1:30004 127.0.0.1:30001"; got != want {
		t.Errorf("liveAddrs = %q, want %q (failed node left out, myself as asked)", got, want)
	}
}
