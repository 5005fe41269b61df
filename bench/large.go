package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"runtime/metrics"
	"slices"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/redis/rueidis"

	"github.com/slotrouter/slotrouter/client"
)

// The large-reply table: LRANGE of 10k and 100k elements and GET of 1, 16
// and 100 MiB values, each with context.Background() and with a deadline
// (30 s, far from binding: what is measured is what merely having one
// costs), for every client in one run. Every key has its own distinct value
// and every reply is checked in full: a reply mixed up with another's, or a
// truncated one, is an error, not a data point.

// largeDriver is what the large rows need from a client.
type largeDriver interface {
	GetValue(ctx context.Context, key string) (string, error)
	LRange(ctx context.Context, key string) ([]string, error)
	Close()
}

type largeRow struct {
	name    string
	list    int // LRANGE elements, or 0 for GET
	size    int // GET value bytes
	payload int // bytes of payload per reply (for allocations per payload byte)

	// What each key holds, built once so that checking a reply allocates
	// nothing inside the measured window.
	values []string
	elems  [][]string
}

var largeRows = []largeRow{
	{name: "LRANGE 10k", list: 10_000},
	{name: "LRANGE 100k", list: 100_000},
	{name: "GET 1 MiB", size: 1 << 20},
	{name: "GET 16 MiB", size: 16 << 20},
	{name: "GET 100 MiB", size: 100 << 20},
}

// largeKeys: each row has this many keys, all different, used in turn.
const largeKeys = 2

func largeKey(r largeRow, i int) string {
	return fmt.Sprintf("large:{%s}:%d", strings.ReplaceAll(r.name, " ", ""), i)
}

// largeValue is key i's value: its own header then a fill byte of its own.
func largeValue(r largeRow, i int) string {
	head := largeKey(r, i) + "|"
	return head + strings.Repeat(string(rune('a'+i)), r.size-len(head))
}

func largeElem(r largeRow, i, j int) string { return fmt.Sprintf("%d:%d", i, j) }

func (r largeRow) check(i int, got string, elems []string) error {
	if r.list == 0 {
		if got != r.values[i] {
			return fmt.Errorf("%s: key %d: wrong value (%d bytes)", r.name, i, len(got))
		}
		return nil
	}
	if len(elems) != r.list {
		return fmt.Errorf("%s: key %d: %d elements, want %d", r.name, i, len(elems), r.list)
	}
	for j, e := range elems {
		if e != r.elems[i][j] {
			return fmt.Errorf("%s: key %d: element %d = %q", r.name, i, j, e)
		}
	}
	return nil
}

// fillLarge writes every large key through slotrouter.
func fillLarge(ctx context.Context, c *client.Client) error {
	for ri := range largeRows {
		r := &largeRows[ri]
		for i := range largeKeys {
			k := largeKey(*r, i)
			if r.list == 0 {
				r.values = append(r.values, largeValue(*r, i))
				if err := c.Do(ctx, "SET", k, r.values[i]).Err(); err != nil {
					return err
				}
				r.payload = r.size
				continue
			}
			if err := c.Do(ctx, "DEL", k).Err(); err != nil {
				return err
			}
			r.payload = 0
			r.elems = append(r.elems, nil)
			args := []any{"RPUSH", k}
			for j := range r.list {
				e := largeElem(*r, i, j)
				r.elems[i] = append(r.elems[i], e)
				r.payload += len(e)
				args = append(args, e)
				if len(args) == 1002 || j == r.list-1 {
					if err := c.Do(ctx, args...).Err(); err != nil {
						return err
					}
					args = args[:2]
				}
			}
		}
	}
	return nil
}

type largeCell struct {
	perOp    time.Duration // median time per reply
	mbps     float64       // payload MB/s at that median
	allocPer float64       // bytes allocated per payload byte
	calls    int
	err      error
}

// largeTally gathers one cell's calls.
type largeTally struct {
	times []time.Duration
	alloc uint64
	err   error
}

func (t largeTally) cell(r largeRow) largeCell {
	if t.err != nil {
		return largeCell{err: t.err}
	}
	times := t.times
	slices.Sort(times) // in place: the tally is read once
	med := times[len(times)/2]
	return largeCell{
		perOp:    med,
		mbps:     float64(r.payload) / med.Seconds() / 1e6,
		allocPer: float64(t.alloc) / float64(len(times)) / float64(r.payload),
		calls:    len(times),
	}
}

// allocSample is read around every call; one goroutine measures, so one
// slice serves and reading it allocates nothing.
var allocSample = []metrics.Sample{{Name: "/gc/heap/allocs:bytes"}}

func heapAllocs() uint64 {
	metrics.Read(allocSample)
	return allocSample[0].Value.Uint64()
}

// largeCall is one reply of key i: how long it took, what the process
// allocated meanwhile, and whether it was the key's value.
func largeCall(d largeDriver, r largeRow, i int, deadline bool) (time.Duration, uint64, error) {
	ctx, cancel := context.Background(), context.CancelFunc(func() {})
	if deadline {
		ctx, cancel = context.WithTimeout(ctx, 30*time.Second)
	}
	defer cancel()
	a0 := heapAllocs()
	start := time.Now()
	var got string
	var elems []string
	var err error
	if r.list == 0 {
		got, err = d.GetValue(ctx, largeKey(r, i))
	} else {
		elems, err = d.LRange(ctx, largeKey(r, i))
	}
	took := time.Since(start)
	alloc := heapAllocs() - a0
	if err == nil {
		err = r.check(i, got, elems)
	}
	return took, alloc, err
}

func largeOps(r largeRow) int {
	switch {
	case r.size >= 100<<20:
		return 4
	case r.size >= 16<<20 || r.list >= 100_000:
		return 10
	}
	return 40
}

// runLarge measures every large row for every client and writes the table.
func runLarge(cfg *config, t *target) error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	sr, err := client.New(ctx, client.Options{Addrs: t.seed})
	if err != nil {
		return err
	}
	if err := fillLarge(ctx, sr); err != nil {
		_ = sr.Close()
		return fmt.Errorf("fill: %w", err)
	}
	_ = sr.Close()
	var names []string
	var drivers []largeDriver
	defer func() {
		for _, d := range drivers {
			d.Close()
		}
	}()
	for _, s := range cfg.clients {
		switch s.name {
		case "slotrouter", "rueidis", "go-redis":
		default:
			// The other configurations (go-redis auto-pipeline, rueidis
			// flush delays, sized pools) tune batching, which one caller
			// reading huge replies never exercises: the same reads.
			continue
		}
		d, err := dialLarge(ctx, s.name, t.seed)
		if err != nil {
			return fmt.Errorf("%s: %w", s.name, err)
		}
		names = append(names, s.name)
		drivers = append(drivers, d)
	}
	// The clients and the two modes take turns call by call: every call
	// of one cell has calls of every other cell right before and after it,
	// so a slow spell of this shared machine (or the servers settling
	// after the fill) lands on all cells alike instead of on one client's
	// block of calls. Each call is followed by the next client's, which
	// goes first in turn, and each client's modes swap order every call.
	// The collector runs as the garbage comes: a collection that one
	// client's garbage starts can land on another's call, which favours
	// the client that allocates most (slotrouter, on the LRANGE rows); on
	// the GET rows every client allocates the same.
	cells := map[string]largeCell{} // row|mode|client
	for _, r := range largeRows {
		runtime.GC() // each row starts without the last row's garbage
		tallies := map[bool][]largeTally{false: make([]largeTally, len(drivers)), true: make([]largeTally, len(drivers))}
		for n := range largeOps(r) * cfg.rounds {
			for k := range drivers {
				i := (n + k) % len(drivers)
				for _, dl := range []bool{n%2 == 1, n%2 == 0} {
					t := &tallies[dl][i]
					if t.err != nil {
						continue
					}
					took, alloc, err := largeCall(drivers[i], r, n%largeKeys, dl)
					if err != nil {
						t.err = err
						continue
					}
					t.times = append(t.times, took)
					t.alloc += alloc
				}
			}
		}
		for _, dl := range []bool{false, true} {
			for i, n := range names {
				c := tallies[dl][i].cell(r)
				cells[r.name+"|"+mode(dl)+"|"+n] = c
				logf("%-12s %-10s %-10s %8.1f MB/s %v/op %.2f B alloc per payload B, %d calls %v", r.name, mode(dl), n, c.mbps, c.perOp.Round(time.Microsecond), c.allocPer, c.calls, c.err)
			}
		}
	}
	var b strings.Builder
	fmt.Fprintf(&b, "# Large replies\n\n%s\n\nPayload MB/s at the median call (time per reply in brackets; %d rounds of calls, the clients and modes taking turns call by call) and bytes allocated per payload byte, one goroutine. Every key has its own value; every reply was checked in full.\n\n", machineHeaderShort(), cfg.rounds)
	b.WriteString("| reply | ctx |")
	for _, n := range names {
		fmt.Fprintf(&b, " %s MB/s | %s alloc/B |", n, n)
	}
	b.WriteString("\n|---|---|")
	for range names {
		b.WriteString("---|---|")
	}
	b.WriteString("\n")
	for _, r := range largeRows {
		for _, dl := range []bool{false, true} {
			fmt.Fprintf(&b, "| %s | %s |", r.name, mode(dl))
			for _, n := range names {
				c := cells[r.name+"|"+mode(dl)+"|"+n]
				if c.err != nil {
					fmt.Fprintf(&b, " error: %v | |", c.err)
					continue
				}
				fmt.Fprintf(&b, " %.0f (%v) | %.2f |", c.mbps, c.perOp.Round(100*time.Microsecond), c.allocPer)
			}
			b.WriteString("\n")
		}
	}
	fmt.Print(b.String())
	if cfg.out != "" {
		if err := os.MkdirAll(cfg.out, 0o755); err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(cfg.out, "large.md"), []byte(b.String()), 0o644)
	}
	return nil
}

func mode(deadline bool) string {
	if deadline {
		return "deadline"
	}
	return "Background"
}

func machineHeaderShort() string {
	return fmt.Sprintf("%s, %d CPUs, %s", time.Now().Format("2006-01-02"), runtime.NumCPU(), runtime.Version())
}

func dialLarge(ctx context.Context, name string, addrs []string) (largeDriver, error) {
	switch name {
	case "slotrouter":
		c, err := client.New(ctx, client.Options{Addrs: addrs})
		if err != nil {
			return nil, err
		}
		return srLarge{c}, nil
	case "rueidis":
		c, err := rueidis.NewClient(rueidis.ClientOption{InitAddress: addrs, DisableCache: true})
		if err != nil {
			return nil, err
		}
		return rueidisLarge{c}, nil
	case "go-redis":
		cc := redis.NewClusterClient(&redis.ClusterOptions{Addrs: addrs})
		if err := cc.Ping(ctx).Err(); err != nil {
			_ = cc.Close()
			return nil, err
		}
		return goRedisLarge{cc}, nil
	}
	return nil, errors.New("unknown client " + name)
}

type srLarge struct{ c *client.Client }

func (d srLarge) GetValue(ctx context.Context, key string) (string, error) {
	return d.c.Do(ctx, "GET", key).Text()
}

func (d srLarge) LRange(ctx context.Context, key string) ([]string, error) {
	return d.c.Do(ctx, "LRANGE", key, 0, -1).Strings()
}

func (d srLarge) Close() { _ = d.c.Close() }

type rueidisLarge struct{ c rueidis.Client }

func (d rueidisLarge) GetValue(ctx context.Context, key string) (string, error) {
	return d.c.Do(ctx, d.c.B().Get().Key(key).Build()).ToString()
}

func (d rueidisLarge) LRange(ctx context.Context, key string) ([]string, error) {
	return d.c.Do(ctx, d.c.B().Lrange().Key(key).Start(0).Stop(-1).Build()).AsStrSlice()
}

func (d rueidisLarge) Close() { d.c.Close() }

type goRedisLarge struct{ cc *redis.ClusterClient }

func (d goRedisLarge) GetValue(ctx context.Context, key string) (string, error) {
	return d.cc.Get(ctx, key).Result()
}

func (d goRedisLarge) LRange(ctx context.Context, key string) ([]string, error) {
	return d.cc.LRange(ctx, key, 0, -1).Result()
}

func (d goRedisLarge) Close() { _ = d.cc.Close() }
