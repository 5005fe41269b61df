// Command pubsub subscribes to one sharded channel per shard, publishes on
// each at a steady rate, and prints once a second how many messages each
// channel received and from which master, plus, the moment they happen,
// every interruption (a connection lost, a slot moved), every topology
// change, and every recovery with the window in which messages may have
// been missed.
//
//	go run ./examples/pubsub                          # launches a local 3x1 cluster, kills a master, moves a slot
//	go run ./examples/pubsub -addrs 127.0.0.1:7000    # your cluster: kill -9 a master or migrate a slot yourself
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/slotrouter/slotrouter/client"
	"github.com/slotrouter/slotrouter/examples/internal/live"
	"github.com/slotrouter/slotrouter/internal/redistest"
	"github.com/slotrouter/slotrouter/slots"
	"github.com/slotrouter/slotrouter/topology"
)

func main() {
	addrs := flag.String("addrs", "", "comma-separated seed nodes (default: launch a local 3-master 3-replica cluster)")
	rate := flag.Int("rate", 200, "messages per second per channel")
	duration := flag.Duration("duration", 30*time.Second, "how long to run (0: until interrupted)")
	password := flag.String("password", "", "AUTH password")
	flag.Parse()
	if err := run(*addrs, *rate, *duration, *password); err != nil {
		fmt.Fprintln(os.Stderr, "pubsub:", err)
		os.Exit(1)
	}
}

// channel is one sharded channel and its counters.
type channel struct {
	name string
	slot slots.Slot
	recv atomic.Int64
	sent atomic.Int64
	fail atomic.Int64
}

func run(addrs string, rate int, duration time.Duration, password string) error {
	if rate <= 0 {
		return errors.New("-rate must be positive")
	}
	ctx, stop := live.Context(duration)
	defer stop()
	var cluster *redistest.Cluster
	seeds := strings.Split(addrs, ",")
	if addrs == "" {
		fmt.Printf("%s  launching a local cluster (3 masters x 1 replica)\n", live.Stamp(time.Now()))
		var err error
		if cluster, err = redistest.Launch(redistest.ClusterOptions{Masters: 3, Replicas: 1}); err != nil {
			return err
		}
		defer cluster.Close()
		seeds = cluster.Addrs()
	}
	connectCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	c, err := client.New(connectCtx, client.Options{
		Addrs:            seeds,
		Password:         password,
		OnTopologyChange: live.PrintChanges,
		// Interruptions are logged the moment they happen; the recovery
		// arrives in the message stream.
		Logger: slog.New(slog.NewTextHandler(os.Stdout, &slog.HandlerOptions{Level: slog.LevelWarn})),
	})
	if err != nil {
		return err
	}
	defer c.Close()

	chans := oneChannelPerShard(c.Topology())
	names := make([]string, len(chans))
	for i, ch := range chans {
		names[i] = ch.name
	}
	sub, err := c.SSubscribe(connectCtx, names...)
	if err != nil {
		return err
	}
	defer sub.Close()
	fmt.Printf("%s  subscribed to %s; publishing %d/s on each\n", live.Stamp(time.Now()), strings.Join(names, ", "), rate)

	for _, ch := range chans {
		go publish(ctx, c, ch, rate)
	}
	go receive(ctx, sub, chans)
	if cluster != nil {
		go faults(ctx, cluster, chans)
	}
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case now := <-tick.C:
			report(c, chans, now)
		}
	}
}

// oneChannelPerShard names a channel whose slot each shard owns, in slot
// order so the lines read the same every run.
func oneChannelPerShard(snap *topology.Snapshot) []*channel {
	var out []*channel
	for _, sh := range snap.Shards() {
		if len(sh.Ranges) == 0 {
			continue
		}
		for n := 0; ; n++ {
			name := "news:" + strconv.Itoa(n)
			if o := snap.Owner(slots.Of(name)); o != nil && o.Master == sh.Master {
				out = append(out, &channel{name: name, slot: slots.Of(name)})
				break
			}
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].slot < out[j].slot })
	return out
}

func publish(ctx context.Context, c *client.Client, ch *channel, rate int) {
	tick := time.NewTicker(time.Second / time.Duration(rate))
	defer tick.Stop()
	for seq := 0; ; seq++ {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		pctx, cancel := context.WithTimeout(ctx, time.Second)
		err := c.SPublish(pctx, ch.name, strconv.Itoa(seq)).Err()
		cancel()
		if err != nil {
			ch.fail.Add(1)
			continue
		}
		ch.sent.Add(1)
	}
}

func receive(ctx context.Context, sub *client.Subscription, chans []*channel) {
	byName := map[string]*channel{}
	for _, ch := range chans {
		byName[ch.name] = ch
	}
	for {
		m, err := sub.Receive(ctx)
		if err != nil {
			return
		}
		if g := m.Gap; g != nil {
			fmt.Printf("%s  RECOVERED %s on %s (was %s): messages may be missing from %s to %s (%v); cause: %v\n",
				live.Stamp(time.Now()), strings.Join(g.Channels, ","), g.To, g.From,
				live.Stamp(g.Start), live.Stamp(g.End), g.Duration().Round(time.Millisecond), g.Cause)
			continue
		}
		if ch := byName[m.Channel]; ch != nil {
			ch.recv.Add(1)
		}
	}
}

func report(c *client.Client, chans []*channel, now time.Time) {
	snap := c.Topology()
	var b strings.Builder
	b.WriteString(live.Stamp(now))
	for _, ch := range chans {
		master := "none"
		if o := snap.Owner(ch.slot); o != nil && o.Master != nil {
			master = o.Master.Addr
		}
		fmt.Fprintf(&b, "  [%s @%s recv %d sent %d fail %d]", ch.name, master, ch.recv.Swap(0), ch.sent.Swap(0), ch.fail.Swap(0))
	}
	fmt.Println(b.String())
}

// faults, on the launched cluster, kills the first channel's master after
// 3 s and, once the replica took over, moves the second channel's slot to
// the third channel's master.
func faults(ctx context.Context, cl *redistest.Cluster, chans []*channel) {
	if len(chans) < 3 || !sleep(ctx, 3*time.Second) {
		return
	}
	err := cl.Try(func() {
		victim := cl.MasterOf(int(chans[0].slot))
		fmt.Printf("%s  FAULT: kill -9 %s (master of %s)\n", live.Stamp(time.Now()), victim.Addr, chans[0].name)
		victim.Kill()
		p := cl.WaitPromotion(ctx, victim)
		fmt.Printf("%s  the cluster promoted %s (visible at %s)\n", live.Stamp(time.Now()), p.Master.Addr, live.Stamp(p.First))
		if !sleep(ctx, 3*time.Second) {
			return
		}
		src, dst := cl.MasterOf(int(chans[1].slot)), cl.MasterOf(int(chans[2].slot))
		fmt.Printf("%s  FAULT: migrating slot %d (%s) from %s to %s\n", live.Stamp(time.Now()), chans[1].slot, chans[1].name, src.Addr, dst.Addr)
		cl.MigrateSlot(int(chans[1].slot), src, dst)
		fmt.Printf("%s  migration done\n", live.Stamp(time.Now()))
	})
	if err != nil {
		fmt.Printf("%s  fault injection failed: %v\n", live.Stamp(time.Now()), err)
	}
}

func sleep(ctx context.Context, d time.Duration) bool {
	select {
	case <-ctx.Done():
		return false
	case <-time.After(d):
		return true
	}
}
