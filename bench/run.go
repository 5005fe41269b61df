package main

import (
	"context"
	"fmt"
	"math/bits"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// workload is one row family of the table.
type workload struct {
	name string
	// opsPerCall is how many commands one call carries (100 for the
	// pipeline): throughput is reported in commands, latency per call.
	opsPerCall int
	call       func(ctx context.Context, d driver, k *keyspace, g, i int) error
}

const pipelineLen = 100

var workloads = []workload{
	{name: "GET", opsPerCall: 1, call: func(ctx context.Context, d driver, k *keyspace, g, i int) error {
		j := k.idx(g, i)
		return d.Get(ctx, k.keys[j], k.values[j])
	}},
	{name: "SET", opsPerCall: 1, call: func(ctx context.Context, d driver, k *keyspace, g, i int) error {
		j := k.idx(g, i)
		return d.Set(ctx, k.keys[j], k.values[j])
	}},
	{name: "MIX80/20", opsPerCall: 1, call: func(ctx context.Context, d driver, k *keyspace, g, i int) error {
		j := k.idx(g, i)
		if i%5 == 4 {
			return d.Set(ctx, k.keys[j], k.values[j])
		}
		return d.Get(ctx, k.keys[j], k.values[j])
	}},
	{name: "PIPE100", opsPerCall: pipelineLen, call: func(ctx context.Context, d driver, k *keyspace, g, i int) error {
		b := (g + i) % len(k.batches)
		return d.Pipeline(ctx, k.batches[b], k.batchVals[b])
	}},
	{name: "MGET100", opsPerCall: pipelineLen, call: func(ctx context.Context, d driver, k *keyspace, g, i int) error {
		b := (g + i) % len(k.batches)
		return d.MGet(ctx, k.batches[b], k.batchVals[b])
	}},
}

// keyspace is the fixed set of keys every client works on. Every key has
// its own 16-byte value, written by SET and compared on every read, so a
// reply handed to the wrong caller is an error.
type keyspace struct {
	keys, values []string
	batches      [][]string // precomputed cross-slot batches of pipelineLen keys
	batchVals    [][]string // their values
}

func newKeyspace(n int) *keyspace {
	k := &keyspace{}
	for i := range n {
		k.keys = append(k.keys, "bench:"+strconv.Itoa(i))
		k.values = append(k.values, fmt.Sprintf("value-%010d", i))
	}
	for b := range 64 {
		batch, vals := make([]string, pipelineLen), make([]string, pipelineLen)
		for j := range batch {
			x := (b*7919 + j*104729) % n
			batch[j], vals[j] = k.keys[x], k.values[x]
		}
		k.batches, k.batchVals = append(k.batches, batch), append(k.batchVals, vals)
	}
	return k
}

// idx spreads goroutines over the keyspace without shared state.
func (k *keyspace) idx(g, i int) int { return (g*7919 + i*31) % len(k.keys) }

// sample is one measured run of one client on one cell.
type sample struct {
	ops        float64 // commands per second
	p50, p99   time.Duration
	p999       time.Duration
	allocs     float64 // per command
	bytes      float64 // per command
	rssMiB     float64
	connsOpen  int64 // connections the servers accepted during the run
	errors     int64
	calls      int64
	firstError string
}

// runCell runs w on d with g goroutines: warm-up, then a measured window.
func runCell(d driver, w workload, k *keyspace, goroutines int, warm, dur time.Duration, conns func() int64) sample {
	ctx := context.Background()
	drive := func(window time.Duration, hists []*histogram, errs *atomic.Int64, first *atomic.Pointer[string]) int64 {
		var total atomic.Int64
		stop := make(chan struct{})
		var wg sync.WaitGroup
		for g := range goroutines {
			wg.Go(func() {
				var h *histogram
				if hists != nil {
					h = hists[g]
				}
				n := 0
				for i := 0; ; i++ {
					select {
					case <-stop:
						total.Add(int64(n))
						return
					default:
					}
					start := time.Now()
					err := w.call(ctx, d, k, g, i)
					if h != nil {
						h.record(time.Since(start))
					}
					if err != nil && errs != nil {
						if errs.Add(1) == 1 {
							s := err.Error()
							first.Store(&s)
						}
					}
					n++
				}
			})
		}
		time.Sleep(window)
		close(stop)
		wg.Wait()
		return total.Load()
	}
	c0 := conns()
	drive(warm, nil, nil, nil)
	hists := make([]*histogram, goroutines)
	for i := range hists {
		hists[i] = &histogram{}
	}
	var errs atomic.Int64
	var first atomic.Pointer[string]
	runtime.GC()
	var m0, m1 runtime.MemStats
	runtime.ReadMemStats(&m0)
	start := time.Now()
	calls := drive(dur, hists, &errs, &first)
	elapsed := time.Since(start)
	runtime.ReadMemStats(&m1)
	c1 := conns()
	var h histogram
	for _, x := range hists {
		h.merge(x)
	}
	cmds := float64(calls * int64(w.opsPerCall))
	s := sample{
		ops:       cmds / elapsed.Seconds(),
		p50:       h.quantile(0.50),
		p99:       h.quantile(0.99),
		p999:      h.quantile(0.999),
		allocs:    float64(m1.Mallocs-m0.Mallocs) / max(cmds, 1),
		bytes:     float64(m1.TotalAlloc-m0.TotalAlloc) / max(cmds, 1),
		rssMiB:    rssMiB(),
		connsOpen: c1 - c0,
		errors:    errs.Load(),
		calls:     calls,
	}
	if p := first.Load(); p != nil {
		s.firstError = *p
	}
	return s
}

// histogram is a log-linear latency histogram (about 1.5% resolution), one
// per goroutine so recording shares nothing.
type histogram struct {
	counts [64 * 64]uint64
	n      uint64
}

func bucketOf(ns uint64) int {
	if ns < 64 {
		return int(ns)
	}
	e := bits.Len64(ns) - 6 // >= 1
	return min(e*64+int(ns>>uint(e-1))-64, 64*64-1)
}

func bucketValue(b int) uint64 {
	if b < 64 {
		return uint64(b)
	}
	e := b / 64
	m := uint64(b%64 + 64)
	return m << uint(e-1)
}

func (h *histogram) record(d time.Duration) {
	h.counts[bucketOf(uint64(max(d, 0)))]++
	h.n++
}

func (h *histogram) merge(o *histogram) {
	for i, c := range o.counts {
		h.counts[i] += c
	}
	h.n += o.n
}

func (h *histogram) quantile(q float64) time.Duration {
	if h.n == 0 {
		return 0
	}
	target := uint64(q * float64(h.n))
	var seen uint64
	for i, c := range h.counts {
		seen += c
		if seen > target {
			return time.Duration(bucketValue(i))
		}
	}
	return time.Duration(bucketValue(len(h.counts) - 1))
}

// rssMiB is this process's resident set (all clients share the process, so
// it is the footprint after this client's run, not the client alone).
func rssMiB() float64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "VmRSS:" {
			kb, _ := strconv.ParseFloat(f[1], 64)
			return kb / 1024
		}
	}
	return 0
}

func (s sample) String() string {
	return fmt.Sprintf("%.0f ops/s p50 %v p99 %v p99.9 %v %.1f allocs %.0f B conns %d errs %d",
		s.ops, s.p50, s.p99, s.p999, s.allocs, s.bytes, s.connsOpen, s.errors)
}
