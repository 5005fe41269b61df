// Command quickstart shows slotrouter at work: keys going to their hash
// slots and owners, then a master dying mid-run and slotrouter following the
// failover, with a timeline of what it saw.
//
//	go run ./examples/quickstart                  # an in-process cluster: nothing to install
//	go run ./examples/quickstart -addrs 127.0.0.1:7000,127.0.0.1:7001
//
// With -addrs it talks to your cluster and, instead of killing a node itself,
// waits for you to (for example `redis-cli -p 7001 DEBUG SEGFAULT`).
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/slotrouter/slotrouter/client"
	"github.com/slotrouter/slotrouter/clustertest"
	"github.com/slotrouter/slotrouter/slots"
	"github.com/slotrouter/slotrouter/topology"
)

func main() {
	addrs := flag.String("addrs", "", "comma-separated seed nodes of a real cluster (default: start an in-process one)")
	duration := flag.Duration("duration", 6*time.Second, "how long to keep writing")
	rate := flag.Int("rate", 400, "writes per second")
	flag.Parse()
	if err := run(*addrs, *duration, *rate); err != nil {
		fmt.Fprintln(os.Stderr, "quickstart:", err)
		os.Exit(1)
	}
}

// timeline prints events with the time since the run started.
type timeline struct {
	start time.Time
	mu    sync.Mutex
}

func (tl *timeline) say(format string, args ...any) {
	tl.mu.Lock()
	defer tl.mu.Unlock()
	fmt.Printf("  [%5.2fs] %s\n", time.Since(tl.start).Seconds(), fmt.Sprintf(format, args...))
}

func run(addrList string, duration time.Duration, rate int) error {
	ctx := context.Background()
	var cluster *clustertest.Cluster
	seeds := splitAddrs(addrList)
	if len(seeds) == 0 {
		fmt.Println("Starting an in-process Redis Cluster (package clustertest): 3 masters, each with 1 replica.")
		fmt.Println("Each node is a real TCP server on 127.0.0.1 speaking the Redis protocol; no redis-server needed.")
		var err error
		cluster, err = clustertest.Start(clustertest.Options{Masters: 3, Replicas: 1})
		if err != nil {
			return err
		}
		defer cluster.Close()
		seeds = cluster.Addrs()[:1]
	}

	tl := &timeline{start: time.Now()}
	c, err := client.New(ctx, client.Options{
		Addrs:  seeds,
		Logger: slog.New(&suspectHandler{tl: tl}),
		OnTopologyChange: func(changes []topology.Change) {
			for _, ch := range changes {
				tl.say("slotrouter saw: %s", describe(ch))
			}
		},
	})
	if err != nil {
		return err
	}
	defer c.Close()

	snap := c.Topology()
	fmt.Printf("\nslotrouter asked the nodes who owns what (starting from %s alone) and learnt %d of %d slots:\n", seeds[0], snap.Covered(), slots.Count)
	for _, sh := range snap.Shards() {
		var reps []string
		for _, r := range sh.Replicas {
			reps = append(reps, r.Addr)
		}
		fmt.Printf("  master %-21s slots %-13s replicas %s\n", sh.Master.Addr, ranges(sh.Ranges), strings.Join(reps, ", "))
	}

	fmt.Println("\nA cluster splits keys into 16384 hash slots (CRC16 of the key). slotrouter hashes each key")
	fmt.Println("itself and sends the command straight to the slot's master, so no command takes a detour:")
	for _, k := range []string{"user:1000", "user:1001", "cart:77", "session:abc"} {
		if err := c.Do(ctx, "SET", k, "hello").Err(); err != nil {
			return err
		}
		fmt.Printf("  SET %-12s -> slot %5d -> %s\n", k, slots.Of(k), snap.Owner(slots.Of(k)).Master.Addr)
	}
	fmt.Println("Keys sharing a {hash tag} share a slot, so one multi-key command can touch them all:")
	if err := c.Do(ctx, "MSET", "{cart:77}:items", "3", "{cart:77}:total", "42").Err(); err != nil {
		return err
	}
	fmt.Printf("  MSET {cart:77}:items {cart:77}:total -> slot %d (the slot of \"cart:77\")\n", slots.Of("{cart:77}:items"))

	// The victim is the master of user:1000's slot.
	victimSlot := slots.Of("user:1000")
	victim := snap.Owner(victimSlot)
	fmt.Printf("\nNow writing %d keys/s over all slots for %s. ", rate, duration)
	if cluster != nil {
		fmt.Printf("After 1s the master %s (slots %s) is killed,\nas if its process crashed; its replica takes over. Timeline:\n", victim.Master.Addr, ranges(victim.Ranges))
	} else {
		fmt.Println("Kill a master yourself to watch the failover. Timeline:")
	}

	w := newWriter(c, victim.Ranges)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); w.run(stop, rate) }()

	var killedAt time.Time
	if cluster != nil {
		time.Sleep(time.Second)
		node := cluster.MasterOf(victimSlot)
		killedAt = time.Now()
		w.markKill(killedAt)
		tl.say("killing master %s (slots %s)", node.Addr(), ranges(victim.Ranges))
		if err := cluster.Kill(node); err != nil {
			return err
		}
	}
	deadline := time.Now().Add(duration)
	reported := false
	for time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
		if at := w.firstOKAfterKill.Load(); at != 0 && !reported {
			reported = true
			tl.say("first write to slots %s succeeded again, %.0f ms after the kill", ranges(victim.Ranges), float64(at-killedAt.UnixNano())/1e6)
		}
	}
	close(stop)
	wg.Wait()

	fmt.Printf("\nSummary: %d writes acknowledged, %d failed.\n", w.ok.Load(), w.failed.Load())
	missing := w.verify(ctx)
	fmt.Printf("Every acknowledged key read back: %d of %d present", w.ok.Load()-int64(missing), w.ok.Load())
	if missing > 0 {
		fmt.Printf(" (%d lost: replication is asynchronous, so writes the dead master had not yet\nsent to its replica are gone; Redis Cluster does not promise otherwise)", missing)
	}
	fmt.Println(".")
	fmt.Println("The writes waited out the failover inside Do (bounded by each call's context) instead of")
	fmt.Println("failing: slotrouter noticed the dead node at once, polled the survivors until the replica")
	fmt.Println("was promoted, and switched those slots over as soon as the cluster did.")
	return nil
}

// writer writes numbered keys and remembers which were acknowledged.
type writer struct {
	c                *client.Client
	victim           []topology.Range
	ok, failed       atomic.Int64
	killAt           atomic.Int64
	firstOKAfterKill atomic.Int64
	mu               sync.Mutex
	acked            []string
}

func newWriter(c *client.Client, victim []topology.Range) *writer {
	return &writer{c: c, victim: victim}
}

func (w *writer) markKill(t time.Time) { w.killAt.Store(t.UnixNano()) }

func (w *writer) onVictim(s slots.Slot) bool {
	for _, r := range w.victim {
		if r.Contains(s) {
			return true
		}
	}
	return false
}

func (w *writer) run(stop <-chan struct{}, rate int) {
	tick := time.NewTicker(time.Second / time.Duration(max(rate, 1)))
	defer tick.Stop()
	var wg sync.WaitGroup
	defer wg.Wait()
	for i := 0; ; i++ {
		select {
		case <-stop:
			return
		case <-tick.C:
		}
		key := fmt.Sprintf("qs:%d", i)
		wg.Add(1)
		go func() {
			defer wg.Done()
			// SET of a fixed value is safe to repeat, so it may be retried
			// even when a connection dies right after sending it.
			ctx, cancel := context.WithTimeout(client.Idempotent(context.Background()), 5*time.Second)
			defer cancel()
			if err := w.c.Do(ctx, "SET", key, "v").Err(); err != nil {
				w.failed.Add(1)
				return
			}
			w.ok.Add(1)
			w.mu.Lock()
			w.acked = append(w.acked, key)
			w.mu.Unlock()
			if k := w.killAt.Load(); k != 0 && w.onVictim(slots.Of(key)) && time.Now().UnixNano() > k {
				w.firstOKAfterKill.CompareAndSwap(0, time.Now().UnixNano())
			}
		}()
	}
}

func (w *writer) verify(ctx context.Context) int {
	w.mu.Lock()
	defer w.mu.Unlock()
	p := w.c.Pipeline()
	for _, k := range w.acked {
		p.Do("EXISTS", k)
	}
	res, _ := p.Exec(ctx)
	missing := 0
	for _, r := range res {
		if n, err := r.Int64(); err != nil || n != 1 {
			missing++
		}
	}
	return missing
}

// suspectHandler turns the router's log records about unreachable nodes
// into timeline lines; everything else is dropped to keep the output short.
type suspectHandler struct{ tl *timeline }

func (h *suspectHandler) Enabled(context.Context, slog.Level) bool { return true }
func (h *suspectHandler) WithAttrs([]slog.Attr) slog.Handler       { return h }
func (h *suspectHandler) WithGroup(string) slog.Handler            { return h }
func (h *suspectHandler) Handle(_ context.Context, r slog.Record) error {
	if !strings.Contains(r.Message, "suspect") {
		return nil
	}
	var addr string
	r.Attrs(func(a slog.Attr) bool {
		if a.Key == "addr" {
			addr = a.Value.String()
		}
		return true
	})
	h.tl.say("slotrouter: %s stopped answering; asking the other nodes for a fresh view every 50ms", addr)
	return nil
}

func describe(ch topology.Change) string {
	switch ch.Kind {
	case topology.MasterChanged:
		return fmt.Sprintf("replica %s promoted: it now serves slots %s (was %s)", ch.To.Addr, ranges(ch.Ranges), ch.From.Addr)
	case topology.NodeFailed:
		return fmt.Sprintf("the cluster flags %s as failed", ch.Node.Addr)
	case topology.NodeRecovered:
		return fmt.Sprintf("%s is back", ch.Node.Addr)
	case topology.ReplicaRemoved:
		return fmt.Sprintf("%s no longer replicates %s", ch.Node.Addr, ch.From.Addr)
	case topology.ReplicaAdded:
		return fmt.Sprintf("%s now replicates %s", ch.Node.Addr, ch.To.Addr)
	}
	return ch.String()
}

func ranges(rs []topology.Range) string {
	parts := make([]string, len(rs))
	for i, r := range rs {
		parts[i] = r.String()
	}
	return strings.Join(parts, ",")
}

func splitAddrs(s string) []string {
	var out []string
	for _, a := range strings.Split(s, ",") {
		if a = strings.TrimSpace(a); a != "" {
			out = append(out, a)
		}
	}
	return out
}
