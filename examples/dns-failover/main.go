// Command dns-failover writes to Redis nodes addressed by DNS names (Redis
// Enterprise style endpoints, Kubernetes services, or a cluster announcing
// hostnames) and prints, once a second, the node in use and how many writes
// succeeded and failed. Re-point a name at another node (or let your DNS
// fail over) and watch the client follow within the TTL without a restart:
// names are re-resolved after every connection failure and at least every
// -ttl, and connections to addresses a name no longer returns are drained.
//
//	go run ./examples/dns-failover -addrs db.example.test:12000 -dns 127.0.0.1:5353 -ttl 1s
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/slotrouter/slotrouter/client"
	"github.com/slotrouter/slotrouter/internal/resolve"
	"github.com/slotrouter/slotrouter/topology"
)

func main() {
	addrs := flag.String("addrs", "localhost:6379", "comma-separated nodes as name:port (cluster seeds or one master/replica set)")
	dns := flag.String("dns", "", "DNS server (host:port) to ask instead of the system resolver")
	ttl := flag.Duration("ttl", 5*time.Second, "re-resolve names at least this often")
	password := flag.String("password", "", "AUTH password")
	rate := flag.Int("rate", 200, "writes per second")
	duration := flag.Duration("duration", 60*time.Second, "how long to run (0: until interrupted)")
	timeout := flag.Duration("timeout", 2*time.Second, "deadline of each write")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if *duration > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, *duration)
		defer cancel()
	}
	opts := client.Options{
		Addrs:            strings.Split(*addrs, ","),
		Password:         *password,
		DNSTTL:           *ttl,
		OnTopologyChange: printChanges,
	}
	if *dns != "" {
		opts.Resolver = resolve.NewNetResolver(*dns)
	}
	if err := run(ctx, opts, *rate, *timeout); err != nil {
		fmt.Fprintln(os.Stderr, "dns-failover:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, opts client.Options, rate int, timeout time.Duration) error {
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	c, err := client.New(cctx, opts)
	if err != nil {
		return err
	}
	defer c.Close()
	fmt.Printf("%s  connected\n", stamp(time.Now()))
	var ok, fail atomic.Int64
	var last atomic.Pointer[string]
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		writeLoop(ctx, c, rate, timeout, &ok, &fail, &last)
	}()
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			wg.Wait()
			return nil
		case now := <-tick.C:
			line := fmt.Sprintf("%s  master %s  ok %d  fail %d", stamp(now), masterOf(c), ok.Swap(0), fail.Swap(0))
			if e := last.Swap(nil); e != nil {
				line += "  last error: " + *e
			}
			fmt.Println(line)
		}
	}
}

// writeLoop starts a write every 1/rate s (open loop), each with its own
// deadline, so a stalled master shows up as failures, not as a lower rate.
func writeLoop(ctx context.Context, c *client.Client, rate int, timeout time.Duration, ok, fail *atomic.Int64, last *atomic.Pointer[string]) {
	var wg sync.WaitGroup
	defer wg.Wait()
	every := time.Second / time.Duration(max(rate, 1))
	tick := time.NewTicker(every)
	defer tick.Stop()
	for i := 0; ; i++ {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			wctx, cancel := context.WithTimeout(context.Background(), timeout)
			defer cancel()
			if err := c.Do(client.Idempotent(wctx), "SET", "dnsfailover:"+strconv.Itoa(i), i).Err(); err != nil {
				fail.Add(1)
				msg := err.Error()
				last.Store(&msg)
				return
			}
			ok.Add(1)
		}()
	}
}

// masterOf lists the masters in use (one for a master/replica set, one per
// shard for a cluster).
func masterOf(c *client.Client) string {
	snap := c.Topology()
	if snap == nil {
		return "none"
	}
	var ms []string
	for _, sh := range snap.Shards() {
		if sh.Master != nil {
			ms = append(ms, sh.Master.Addr)
		}
	}
	if len(ms) == 0 {
		return "none"
	}
	return strings.Join(ms, ",")
}

func printChanges(changes []topology.Change) {
	for _, ch := range changes {
		fmt.Printf("%s  topology: %s\n", stamp(time.Now()), ch.String())
	}
}

func stamp(t time.Time) string { return t.Format("15:04:05.000") }
