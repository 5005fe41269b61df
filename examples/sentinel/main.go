// Command sentinel writes through a Sentinel-managed master at a steady
// rate and prints, once a second, the master in use and how many writes
// succeeded and failed, plus every topology change the moment the client
// sees it. Run it, kill -9 the master and watch the client follow
// +switch-master; restart the old master and watch it come back as a
// replica without getting writes.
//
//	go run ./examples/sentinel -sentinels 127.0.0.1:26379,127.0.0.1:26380 -master mymaster \
//	    -sentinel-password s3cret -password data-pw
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
	sentinels := flag.String("sentinels", "127.0.0.1:26379", "comma-separated Sentinel addresses (host:port)")
	master := flag.String("master", "mymaster", "master name the Sentinels monitor")
	sentinelPW := flag.String("sentinel-password", "", "password of the Sentinels (their requirepass)")
	password := flag.String("password", "", "password of the data nodes")
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
		Sentinel: &client.SentinelOptions{
			MasterName: *master,
			Addrs:      strings.Split(*sentinels, ","),
			Password:   *sentinelPW,
		},
		Password:         *password,
		OnTopologyChange: printChanges,
	}
	if err := run(ctx, opts, *rate, *timeout); err != nil {
		fmt.Fprintln(os.Stderr, "sentinel:", err)
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
	fmt.Printf("%s  connected; sentinels %v\n", stamp(time.Now()), c.SentinelAddrs())
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
			if err := c.Do(client.Idempotent(wctx), "SET", "sentinel:"+strconv.Itoa(i), i).Err(); err != nil {
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
