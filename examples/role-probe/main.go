// Command role-probe writes to a master/replica set given as plain
// addresses, with no Sentinel and no proxy: the client asks every node for
// its ROLE and writes to the one that is master (the check an HAProxy
// "role:master" backend makes). Once a second it prints the master in use,
// every node's role and how many writes succeeded and failed. Promote a
// replica by hand (REPLICAOF NO ONE on it, REPLICAOF it on the others) and
// watch writes follow; the dual-master window in between is reported.
//
//	go run ./examples/role-probe -addrs 127.0.0.1:6379,127.0.0.1:6380,127.0.0.1:6381 -interval 500ms
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
	"github.com/slotrouter/slotrouter/topology"
)

func main() {
	addrs := flag.String("addrs", "127.0.0.1:6379", "comma-separated data nodes (host:port), master and replicas")
	password := flag.String("password", "", "AUTH password of the data nodes")
	interval := flag.Duration("interval", 500*time.Millisecond, "role probe interval")
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
		Addrs:    strings.Split(*addrs, ","),
		Password: *password,
		RoleProbe: &client.RoleProbeOptions{
			Interval: *interval,
			OnSplitBrain: func(e *client.SplitBrainError) {
				fmt.Printf("%s  DUAL MASTER: %v\n", stamp(time.Now()), e)
			},
		},
		OnTopologyChange: printChanges,
	}
	if err := run(ctx, opts, *rate, *timeout); err != nil {
		fmt.Fprintln(os.Stderr, "role-probe:", err)
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
			line := fmt.Sprintf("%s  master %s  ok %d  fail %d  roles [%s]", stamp(now), masterOf(c), ok.Swap(0), fail.Swap(0), roles(c))
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
			if err := c.Do(client.Idempotent(wctx), "SET", "roleprobe:"+strconv.Itoa(i), i).Err(); err != nil {
				fail.Add(1)
				msg := err.Error()
				last.Store(&msg)
				return
			}
			ok.Add(1)
		}()
	}
}

func masterOf(c *client.Client) string {
	if snap := c.Topology(); snap != nil && len(snap.Shards()) > 0 && snap.Shards()[0].Master != nil {
		sh := snap.Shards()[0]
		return fmt.Sprintf("%s (+%d replicas)", sh.Master.Addr, len(sh.Replicas))
	}
	return "none"
}

func printChanges(changes []topology.Change) {
	for _, ch := range changes {
		fmt.Printf("%s  topology: %s\n", stamp(time.Now()), ch.String())
	}
}

func stamp(t time.Time) string { return t.Format("15:04:05.000") }

// roles lists what every node said in the last probe round.
func roles(c *client.Client) string {
	r := c.RoleReport()
	if r == nil {
		return "no probe yet"
	}
	parts := make([]string, 0, len(r.Nodes))
	for _, n := range r.Nodes {
		if n.Err != nil {
			parts = append(parts, n.Addr+" unreachable")
			continue
		}
		parts = append(parts, n.Addr+" "+n.Role)
	}
	return strings.Join(parts, ", ")
}
