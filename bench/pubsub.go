package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/redis/rueidis"

	"github.com/slotrouter/slotrouter/client"
	"github.com/slotrouter/slotrouter/internal/redistest"
	"github.com/slotrouter/slotrouter/slots"
)

// psClient is one library's sharded pub/sub, used the way its
// documentation tells an application to use it.
type psClient interface {
	SPublish(ctx context.Context, ch, msg string) error
	// Subscribe delivers every message to fn until Close; note is called
	// for every interruption the library tells the application about.
	Subscribe(ctx context.Context, chans []string, fn func(ch, payload string), note func()) error
	Close()
}

var psClients = []struct {
	name string
	dial func(ctx context.Context, addrs []string) (psClient, error)
}{
	{"slotrouter", dialSRPubSub},
	{"rueidis", dialRueidisPubSub},
	{"go-redis", dialGoRedisPubSub},
}

// pubsubResult is one library's pub/sub failover round.
type pubsubResult struct {
	client      string
	promotion   time.Duration // kill -9 to the promotion, as the harness saw it
	resumed     bool
	gap         time.Duration // promotion to the first message received on the failed master's channel
	lostFailed  int           // acknowledged publishes never received, failed master's channel
	lostHealthy int           // the same on the two healthy channels
	interrupts  int           // interruptions the library surfaced to the application
	publishErrs int
	err         error
}

const psEvery = 5 * time.Millisecond // 200 messages/s per channel

// runPubSubFailover gives one library a fresh 3x1 cluster, subscribes to
// one sharded channel per master, publishes 200 messages/s on each, kills
// the first channel's master with SIGKILL and measures how long after the
// promotion that channel delivers again, and what was lost.
func runPubSubFailover(name string, dial func(context.Context, []string) (psClient, error), nodeTimeout, maxWait time.Duration) (res pubsubResult) {
	res.client = name
	t, err := launchCluster(nodeTimeout)
	if err != nil {
		res.err = err
		return res
	}
	defer t.close()
	c := t.cluster
	var masters []*redistest.Server
	if err := c.Try(func() { masters = c.Masters() }); err != nil {
		res.err = err
		return res
	}
	chans := make([]string, len(masters))
	for n, left := 0, len(masters); left > 0 && n < 100000; n++ {
		ch := "ps:" + strconv.Itoa(n)
		var m *redistest.Server
		if err := c.Try(func() { m = c.MasterOf(int(slots.Of(ch))) }); err != nil {
			res.err = err
			return res
		}
		for i := range masters {
			if masters[i] == m && chans[i] == "" {
				chans[i], left = ch, left-1
			}
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	dctx, dcancel := context.WithTimeout(ctx, dialTimeout)
	d, err := dial(dctx, t.seed)
	dcancel()
	if err != nil {
		res.err = err
		return res
	}
	defer d.Close()

	var (
		mu    sync.Mutex
		recv  = map[string]map[int]time.Time{}
		acked = map[string][]int{}
	)
	for _, ch := range chans {
		recv[ch] = map[int]time.Time{}
	}
	err = d.Subscribe(ctx, chans, func(ch, payload string) {
		now := time.Now()
		if seq, err := strconv.Atoi(payload); err == nil {
			mu.Lock()
			if m := recv[ch]; m != nil {
				if _, dup := m[seq]; !dup {
					m[seq] = now
				}
			}
			mu.Unlock()
		}
	}, func() {
		mu.Lock()
		res.interrupts++
		mu.Unlock()
	})
	if err != nil {
		res.err = err
		return res
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for _, ch := range chans {
		wg.Go(func() {
			tick := time.NewTicker(psEvery)
			defer tick.Stop()
			for seq := 0; ; seq++ {
				select {
				case <-stop:
					return
				case <-tick.C:
				}
				pctx, pcancel := context.WithTimeout(ctx, failoverOpTime)
				err := d.SPublish(pctx, ch, strconv.Itoa(seq))
				pcancel()
				mu.Lock()
				if err == nil {
					acked[ch] = append(acked[ch], seq)
				} else {
					res.publishErrs++
				}
				mu.Unlock()
			}
		})
	}
	firstAfter := func(ch string, after time.Time) (time.Time, bool) {
		mu.Lock()
		defer mu.Unlock()
		var first time.Time
		for _, at := range recv[ch] {
			if !at.Before(after) && (first.IsZero() || at.Before(first)) {
				first = at
			}
		}
		return first, !first.IsZero()
	}
	waitFirst := func(ch string, after time.Time, within time.Duration) (time.Time, bool) {
		for end := time.Now().Add(within); time.Now().Before(end); time.Sleep(2 * time.Millisecond) {
			if at, ok := firstAfter(ch, after); ok {
				return at, true
			}
		}
		return time.Time{}, false
	}
	warm := time.Now()
	for _, ch := range chans {
		if _, ok := waitFirst(ch, warm, 5*time.Second); !ok {
			close(stop)
			wg.Wait()
			res.err = fmt.Errorf("no message on %s before the kill", ch)
			return res
		}
	}
	mu.Lock()
	res.publishErrs, res.interrupts = 0, 0
	mu.Unlock()

	killAt := time.Now()
	var p redistest.Promotion
	if err := c.Try(func() {
		masters[0].Kill()
		p = c.WaitPromotion(ctx, masters[0])
	}); err != nil {
		close(stop)
		wg.Wait()
		res.err = err
		return res
	}
	res.promotion = p.First.Sub(killAt)
	if at, ok := waitFirst(chans[0], p.First, maxWait); ok {
		res.resumed, res.gap = true, at.Sub(p.First)
		waitFirst(chans[0], at.Add(time.Second), 5*time.Second) // run on the new master a while
	}
	close(stop)
	wg.Wait()
	time.Sleep(time.Second) // deliveries in flight
	mu.Lock()
	defer mu.Unlock()
	for i, ch := range chans {
		lost := 0
		for _, seq := range acked[ch] {
			if _, ok := recv[ch][seq]; !ok {
				lost++
			}
		}
		if i == 0 {
			res.lostFailed = lost
		} else {
			res.lostHealthy += lost
		}
	}
	return res
}

func pubsubMarkdown(rs []pubsubResult) string {
	var b strings.Builder
	b.WriteString("| client | kill -9 -> promotion | promotion -> first message on the failed master's channel | acknowledged messages lost: failed channel / healthy channels | interruptions reported to the app | publish errors |\n|---|---|---|---|---|---|\n")
	for _, r := range rs {
		if r.err != nil {
			fmt.Fprintf(&b, "| %s | round failed: %v | | | | |\n", r.client, r.err)
			continue
		}
		gap := "none within 20 s"
		if r.resumed {
			gap = r.gap.Round(time.Millisecond).String()
		}
		fmt.Fprintf(&b, "| %s | %v | %s | %d / %d | %d | %d |\n", r.client, r.promotion.Round(time.Millisecond), gap,
			r.lostFailed, r.lostHealthy, r.interrupts, r.publishErrs)
	}
	return b.String()
}

// --- slotrouter ---

type srPubSub struct {
	c   *client.Client
	sub *client.Subscription
}

func dialSRPubSub(ctx context.Context, addrs []string) (psClient, error) {
	c, err := client.New(ctx, client.Options{Addrs: addrs})
	if err != nil {
		return nil, err
	}
	return &srPubSub{c: c}, nil
}

func (d *srPubSub) SPublish(ctx context.Context, ch, msg string) error {
	return d.c.SPublish(ctx, ch, msg).Err()
}

func (d *srPubSub) Subscribe(ctx context.Context, chans []string, fn func(ch, payload string), note func()) error {
	sub, err := d.c.SSubscribe(ctx, chans...)
	if err != nil {
		return err
	}
	d.sub = sub
	go func() {
		for {
			m, err := sub.Receive(ctx)
			if err != nil {
				return
			}
			if m.Gap != nil {
				note()
				continue
			}
			fn(m.Channel, m.Payload)
		}
	}()
	return nil
}

func (d *srPubSub) Close() {
	if d.sub != nil {
		_ = d.sub.Close()
	}
	_ = d.c.Close()
}

// --- rueidis: one Receive per slot, called again whenever it returns, as
// its README says (it returns on a server-sent sunsubscribe and on errors).

type rueidisPubSub struct{ c rueidis.Client }

func dialRueidisPubSub(ctx context.Context, addrs []string) (psClient, error) {
	c, err := rueidis.NewClient(rueidis.ClientOption{InitAddress: addrs, DisableCache: true})
	if err != nil {
		return nil, err
	}
	return rueidisPubSub{c}, nil
}

func (d rueidisPubSub) SPublish(ctx context.Context, ch, msg string) error {
	return d.c.Do(ctx, d.c.B().Spublish().Channel(ch).Message(msg).Build()).Error()
}

func (d rueidisPubSub) Subscribe(ctx context.Context, chans []string, fn func(ch, payload string), note func()) error {
	for _, ch := range chans {
		go func() {
			for ctx.Err() == nil {
				_ = d.c.Receive(ctx, d.c.B().Ssubscribe().Channel(ch).Build(), func(m rueidis.PubSubMessage) {
					fn(m.Channel, m.Message)
				})
				if ctx.Err() != nil {
					return
				}
				note()
				time.Sleep(errorPause)
			}
		}()
	}
	return nil
}

func (d rueidisPubSub) Close() { d.c.Close() }

// --- go-redis: one PubSub per channel (one PubSub cannot span slots); it
// reconnects and resubscribes by itself.

type goRedisPubSub struct {
	cc  *redis.ClusterClient
	mu  sync.Mutex
	pss []*redis.PubSub
}

func dialGoRedisPubSub(ctx context.Context, addrs []string) (psClient, error) {
	cc := redis.NewClusterClient(&redis.ClusterOptions{Addrs: addrs})
	if err := cc.Ping(ctx).Err(); err != nil {
		_ = cc.Close()
		return nil, err
	}
	return &goRedisPubSub{cc: cc}, nil
}

func (d *goRedisPubSub) SPublish(ctx context.Context, ch, msg string) error {
	return d.cc.SPublish(ctx, ch, msg).Err()
}

func (d *goRedisPubSub) Subscribe(ctx context.Context, chans []string, fn func(ch, payload string), note func()) error {
	for _, ch := range chans {
		ps := d.cc.SSubscribe(ctx, ch)
		if _, err := ps.Receive(ctx); err != nil {
			_ = ps.Close()
			return err
		}
		d.mu.Lock()
		d.pss = append(d.pss, ps)
		d.mu.Unlock()
		msgs := ps.Channel()
		go func() {
			for m := range msgs {
				fn(m.Channel, m.Payload)
			}
		}()
	}
	return nil
}

func (d *goRedisPubSub) Close() {
	d.mu.Lock()
	for _, ps := range d.pss {
		_ = ps.Close()
	}
	d.mu.Unlock()
	_ = d.cc.Close()
}

// runPubSub runs the pub/sub failover round for every library and writes
// its table to results/pubsub.md.
func runPubSub(cfg *config) error {
	var rs []pubsubResult
	for _, s := range psClients {
		logf("pub/sub failover round: %s", s.name)
		r := runPubSubFailover(s.name, s.dial, cfg.nodeTimeout, 20*time.Second)
		logf("  promotion %v, resumed=%v after %v, lost %d/%d, interruptions reported %d, publish errors %d, err %v",
			r.promotion, r.resumed, r.gap, r.lostFailed, r.lostHealthy, r.interrupts, r.publishErrs, r.err)
		rs = append(rs, r)
	}
	md := "# Sharded pub/sub through a failover\n\n" + machineHeader(cfg, &target{})[0] + "; load average " + loadavg() + "\n\n" +
		"Three sharded channels on three masters of a fresh 3x1 cluster per client, 200 messages/s each, " +
		"published and received by the same library; `kill -9` of the first channel's master.\n\n" + pubsubMarkdown(rs)
	fmt.Print(md)
	if err := os.MkdirAll(cfg.out, 0o755); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(cfg.out, "pubsub.md"), []byte(md), 0o644)
}
