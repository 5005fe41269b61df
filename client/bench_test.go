package client

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/slotrouter/slotrouter/internal/redistest"
)

// Hot-path benchmarks through the public API against a real local cluster
// (3 masters, 1 replica each): routing, key lookup, pipe and reply parsing.
// 1024 keys, 16-byte values. The plain names run one goroutine, which is
// where allocations per call are judged (GET: the value's string only);
// "-par16" runs 16 goroutines (SetParallelism(8) on 2 CPUs), which
// exercises implicit pipelining.
//
//	go test -run '^$' -bench 'BenchmarkDo|BenchmarkPipeline' -benchmem ./client/

func benchCluster(b *testing.B) (*Client, []string) {
	b.Helper()
	cl := redistest.StartCluster(b, redistest.ClusterOptions{Masters: 3, Replicas: 1})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := New(ctx, Options{Addrs: cl.Addrs()})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = c.Close() })
	keys := make([]string, 1024)
	for i := range keys {
		keys[i] = "bench:" + strconv.Itoa(i)
		if err := c.Do(ctx, "SET", keys[i], benchValue).Err(); err != nil {
			b.Fatal(err)
		}
	}
	return c, keys
}

func BenchmarkDo(b *testing.B) {
	c, keys := benchCluster(b)
	ctx := context.Background()
	get := func(i int) error { return c.Do(ctx, "GET", keys[i&1023]).Err() }
	set := func(i int) error { return c.Do(ctx, "SET", keys[i&1023], benchValue).Err() }
	b.Run("GET", func(b *testing.B) { runBench(b, 0, get) })
	b.Run("SET", func(b *testing.B) { runBench(b, 0, set) })
	b.Run("GET-par16", func(b *testing.B) { runBench(b, 8, get) })
	b.Run("SET-par16", func(b *testing.B) { runBench(b, 8, set) })
}

// BenchmarkPipeline/100 is one Exec of 100 GETs spread over every slot
// range (so over all three masters); ns/op is per Exec.
func BenchmarkPipeline(b *testing.B) {
	c, keys := benchCluster(b)
	ctx := context.Background()
	b.Run("100", func(b *testing.B) {
		b.ReportAllocs()
		p := c.Pipeline()
		i := 0
		for b.Loop() {
			for j := range 100 {
				p.Do("GET", keys[(i*100+j*37)&1023])
			}
			res, err := p.Exec(ctx)
			if err != nil {
				b.Fatal(err)
			}
			if len(res) != 100 {
				b.Fatalf("%d results", len(res))
			}
			i++
		}
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/100, "ns/cmd")
	})
}
