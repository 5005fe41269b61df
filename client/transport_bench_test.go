package client

import (
	"context"
	"fmt"
	"strconv"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/slotrouter/slotrouter/internal/redistest"
)

// Benchmarks against a real local redis-server. Keys are 16 bytes, values
// 16 bytes, 1024 keys. "par8"/"par32" are RunParallel with SetParallelism(8)
// and (32), i.e. 8 and 32 goroutines per GOMAXPROCS.
func benchKeys() []string {
	keys := make([]string, 1024)
	for i := range keys {
		keys[i] = fmt.Sprintf("bench:key:%07d", i)
	}
	return keys
}

const benchValue = "0123456789abcdef"

type benchMode struct {
	name string
	par  int // 0: one goroutine
}

var benchModes = []benchMode{{"1", 0}, {"par8", 8}, {"par32", 32}}

func runBench(b *testing.B, par int, op func(i int) error) {
	b.ReportAllocs()
	if par == 0 {
		i := 0
		for b.Loop() {
			if err := op(i); err != nil {
				b.Fatal(err)
			}
			i++
		}
		return
	}
	b.SetParallelism(par)
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			if err := op(i); err != nil {
				b.Error(err)
				return
			}
			i++
		}
	})
}

func BenchmarkPipe(b *testing.B) {
	srv := redistest.StartServer(b, redistest.ServerOptions{})
	keys := benchKeys()
	ctx := context.Background()
	for _, conns := range []int{1, 2} {
		n := testNode(b, srv.Addr, &connConfig{Conns: conns})
		for _, k := range keys {
			mustDo(b, n, "SET", k, benchValue)
		}
		get := func(i int) error {
			cmd, err := newCommand([]any{"GET", keys[i&1023]})
			if err != nil {
				return err
			}
			r, err := n.do(ctx, cmd, false)
			cmd.release()
			if err != nil {
				return err
			}
			return r.Err()
		}
		set := func(i int) error {
			cmd, err := newCommand([]any{"SET", keys[i&1023], benchValue})
			if err != nil {
				return err
			}
			r, err := n.do(ctx, cmd, false)
			cmd.release()
			if err != nil {
				return err
			}
			return r.Err()
		}
		for _, m := range benchModes {
			b.Run("conns"+strconv.Itoa(conns)+"/GET/"+m.name, func(b *testing.B) { runBench(b, m.par, get) })
			b.Run("conns"+strconv.Itoa(conns)+"/SET/"+m.name, func(b *testing.B) { runBench(b, m.par, set) })
		}
	}
}

// BenchmarkGoRedis is the same workload through a plain go-redis client
// (pooled, default options), for context.
func BenchmarkGoRedis(b *testing.B) {
	srv := redistest.StartServer(b, redistest.ServerOptions{})
	keys := benchKeys()
	ctx := context.Background()
	c := redis.NewClient(&redis.Options{Addr: srv.Addr})
	b.Cleanup(func() { _ = c.Close() })
	for _, k := range keys {
		if err := c.Set(ctx, k, benchValue, 0).Err(); err != nil {
			b.Fatal(err)
		}
	}
	get := func(i int) error { return c.Get(ctx, keys[i&1023]).Err() }
	set := func(i int) error { return c.Set(ctx, keys[i&1023], benchValue, 0).Err() }
	for _, m := range benchModes {
		b.Run("GET/"+m.name, func(b *testing.B) { runBench(b, m.par, get) })
		b.Run("SET/"+m.name, func(b *testing.B) { runBench(b, m.par, set) })
	}
}
