// Command failover writes to a Redis Cluster at a steady rate and prints,
// once a second, how many writes succeeded and failed per shard and which
// node is each shard's master, plus every topology change the moment the
// client sees it. Run it, then kill -9 (or SIGSTOP) a master and watch the
// client follow the promotion.
//
//	go run ./examples/failover -addrs 127.0.0.1:7000,127.0.0.1:7001 -rate 1000 -duration 60s
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/slotrouter/slotrouter/client"
	"github.com/slotrouter/slotrouter/examples/internal/live"
	"github.com/slotrouter/slotrouter/slots"
	"github.com/slotrouter/slotrouter/topology"
)

func main() {
	addrs := flag.String("addrs", "127.0.0.1:7000", "comma-separated seed nodes (host:port)")
	rate := flag.Int("rate", 1000, "writes per second, spread over all slots")
	duration := flag.Duration("duration", 30*time.Second, "how long to run (0: until interrupted)")
	password := flag.String("password", "", "AUTH password")
	timeout := flag.Duration("timeout", 2*time.Second, "deadline of each write")
	flag.Parse()
	if err := run(*addrs, *rate, *duration, *password, *timeout); err != nil {
		fmt.Fprintln(os.Stderr, "failover:", err)
		os.Exit(1)
	}
}

// shard is one slot range of the first view, tracked by its first slot so
// it keeps its label across failovers.
type shard struct {
	label string
	first slots.Slot
	ok    atomic.Int64
	fail  atomic.Int64
	last  atomic.Pointer[string] // last error text this second
}

func run(addrs string, rate int, duration time.Duration, password string, timeout time.Duration) error {
	if rate <= 0 {
		return errors.New("-rate must be positive")
	}
	seeds := strings.Split(addrs, ",")
	ctx, stop := live.Context(duration)
	defer stop()

	connectCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	c, err := client.New(connectCtx, client.Options{
		Addrs:            seeds,
		Password:         password,
		OnTopologyChange: live.PrintChanges,
	})
	if err != nil {
		return err
	}
	defer c.Close()

	shards, slotShard := layout(c.Topology())
	if len(shards) == 0 {
		return errors.New("the cluster serves no slots")
	}
	fmt.Printf("%s  connected: %d shards, writing %d/s with %v deadlines\n", live.Stamp(time.Now()), len(shards), rate, timeout)

	// Open loop: a write starts every 1/rate s whatever the others do, so
	// a shard that hangs does not slow the writes to the healthy ones. At
	// most maxInFlight writes wait at once; beyond that ticks are skipped
	// (and counted), as a real service would shed load.
	maxInFlight := max(rate*int(timeout/time.Second+1), 64)
	var wg sync.WaitGroup
	var skipped atomic.Int64
	wg.Add(1)
	go func() {
		defer wg.Done()
		dispatch(ctx, c, rate, timeout, maxInFlight, shards, slotShard, &skipped)
	}()

	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			wg.Wait()
			report(c, shards, time.Now(), &skipped)
			return nil
		case now := <-tick.C:
			report(c, shards, now, &skipped)
		}
	}
}

// layout labels the shards of the first view by their slot ranges, in
// slot order so lines read the same every run.
func layout(snap *topology.Snapshot) ([]*shard, *[slots.Count]int16) {
	var shs []topology.Shard
	for _, sh := range snap.Shards() {
		if len(sh.Ranges) > 0 {
			shs = append(shs, sh)
		}
	}
	sort.Slice(shs, func(i, j int) bool { return shs[i].Ranges[0].Start < shs[j].Ranges[0].Start })
	var out []*shard
	owner := new([slots.Count]int16)
	for i := range owner {
		owner[i] = -1
	}
	for _, sh := range shs {
		var parts []string
		for _, r := range sh.Ranges {
			parts = append(parts, r.String())
			for s := int(r.Start); s <= int(r.End); s++ {
				owner[s] = int16(len(out))
			}
		}
		out = append(out, &shard{label: strings.Join(parts, ","), first: sh.Ranges[0].Start})
	}
	return out, owner
}

func dispatch(ctx context.Context, c *client.Client, rate int, timeout time.Duration, maxInFlight int,
	shards []*shard, slotShard *[slots.Count]int16, skipped *atomic.Int64) {
	sem := make(chan struct{}, maxInFlight)
	var wg sync.WaitGroup
	defer wg.Wait()
	// Start whatever is due every 5 ms: a 1/rate ticker would drop ticks
	// on a busy machine and quietly lower the rate.
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	began := time.Now()
	for i := 0; ; {
		select {
		case <-ctx.Done():
			return
		case now := <-tick.C:
			due := int(now.Sub(began) * time.Duration(rate) / time.Second)
			for ; i < due; i++ {
				select {
				case sem <- struct{}{}:
				default:
					skipped.Add(1)
					continue
				}
				key := "failover:" + strconv.Itoa(i)
				idx := slotShard[slots.Of(key)]
				if idx < 0 {
					<-sem
					continue
				}
				wg.Add(1)
				go func(val int) {
					defer func() { <-sem; wg.Done() }()
					write(c, key, val, timeout, shards[idx])
				}(i)
			}
		}
	}
}

func write(c *client.Client, key string, val int, timeout time.Duration, sh *shard) {
	// A fresh context per write: the run's own end must not count as a
	// failed write, and SET of a fixed value is safe to repeat.
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	if err := c.Do(client.Idempotent(ctx), "SET", key, val).Err(); err != nil {
		sh.fail.Add(1)
		msg := err.Error()
		sh.last.Store(&msg)
		return
	}
	sh.ok.Add(1)
}

func report(c *client.Client, shards []*shard, now time.Time, skipped *atomic.Int64) {
	snap := c.Topology()
	var b strings.Builder
	b.WriteString(live.Stamp(now))
	for _, sh := range shards {
		master := "none"
		if o := snap.Owner(sh.first); o != nil && o.Master != nil {
			master = o.Master.Addr
			if !o.Master.Routable() {
				master += "(down)"
			}
		}
		fmt.Fprintf(&b, "  [%s @%s ok %d fail %d]", sh.label, master, sh.ok.Swap(0), sh.fail.Swap(0))
	}
	if n := skipped.Swap(0); n > 0 {
		fmt.Fprintf(&b, "  (%d writes shed: too many in flight)", n)
	}
	fmt.Println(b.String())
	for _, sh := range shards {
		if e := sh.last.Swap(nil); e != nil {
			fmt.Printf("%s    %s last error: %s\n", live.Stamp(now), sh.label, *e)
		}
	}
}
