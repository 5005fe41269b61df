package main

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/slotrouter/slotrouter/internal/redistest"
	"github.com/slotrouter/slotrouter/slots"
)

// failoverResult is one client's failover round.
type failoverResult struct {
	client      string
	resumed     bool
	resume      time.Duration // kill -9 to the first acknowledged write on the failed shard
	errors      int64         // calls that returned an error, all shards
	errorKinds  []string      // a few distinct messages, for the report
	maxGapOther time.Duration // longest stretch without an acknowledged write on a healthy shard
	acked       int           // keys with at least one acknowledged write
	missing     int           // keys whose last acknowledged value is gone afterwards
	err         error         // the round itself could not run
}

const (
	writersPerShard = 4
	failoverOpTime  = 2 * time.Second // per-call ctx timeout, the same for every client
	errorPause      = 10 * time.Millisecond
)

// runFailover gives one client a fresh cluster, runs the same writer on
// every shard, kills one master with SIGKILL and records how the client
// rides through it. A fresh cluster per client keeps the rounds fair: no
// client inherits a promoted replica, a rejoined node or warm state.
func runFailover(spec clientSpec, nodeTimeout, maxWait time.Duration) (res failoverResult) {
	res.client = spec.name
	t, err := launchCluster(nodeTimeout)
	if err != nil {
		res.err = err
		return res
	}
	defer t.close()
	c := t.cluster
	ctx, cancel := context.WithTimeout(context.Background(), dialTimeout)
	d, err := spec.dial(ctx, t.seed)
	cancel()
	if err != nil {
		res.err = err
		return res
	}
	defer d.Close()

	// One key per writer, writersPerShard writers per master, so a stalled
	// shard cannot slow the writers of the others down by sharing a loop.
	var masters []*redistest.Server
	if err := c.Try(func() { masters = c.Masters() }); err != nil {
		res.err = err
		return res
	}
	shardOf := map[*redistest.Server]int{}
	for i, m := range masters {
		shardOf[m] = i
	}
	type writer struct {
		key   string
		shard int
	}
	var writers []writer
	perShard := make([]int, len(masters))
	for n := 0; len(writers) < writersPerShard*len(masters) && n < 100000; n++ {
		key := "fo:" + strconv.Itoa(n)
		var m *redistest.Server
		if err := c.Try(func() { m = c.MasterOf(int(slots.Of(key))) }); err != nil {
			res.err = err
			return res
		}
		s := shardOf[m]
		if perShard[s] < writersPerShard {
			perShard[s]++
			writers = append(writers, writer{key, s})
		}
	}
	victim := 0 // shard index of the master to kill

	type event struct {
		at    time.Time
		shard int
	}
	var (
		mu        sync.Mutex
		events    []event
		lastAck   = map[string]int{}
		nerrs     int64
		kinds     = map[string]bool{}
		stop      = make(chan struct{})
		wg        sync.WaitGroup
		killAt    time.Time
		firstBack = make(chan time.Time, 1)
	)
	for _, w := range writers {
		wg.Go(func() {
			var local []event
			seq, acked := 0, 0
			for {
				select {
				case <-stop:
					mu.Lock()
					events = append(events, local...)
					if acked > 0 {
						lastAck[w.key] = acked
					}
					mu.Unlock()
					return
				default:
				}
				seq++
				cctx, cancel := context.WithTimeout(context.Background(), failoverOpTime)
				err := d.Set(cctx, w.key, strconv.Itoa(seq))
				cancel()
				now := time.Now()
				if err != nil {
					mu.Lock()
					nerrs++
					if len(kinds) < 4 {
						kinds[shorten(err.Error())] = true
					}
					mu.Unlock()
					time.Sleep(errorPause)
					continue
				}
				acked = seq
				local = append(local, event{now, w.shard})
				if w.shard == victim {
					mu.Lock()
					k := killAt
					mu.Unlock()
					if !k.IsZero() && now.After(k) {
						select {
						case firstBack <- now:
						default:
						}
					}
				}
			}
		})
	}
	time.Sleep(time.Second)
	mu.Lock()
	nerrs = 0 // only errors from the kill on count
	clear(kinds)
	mu.Unlock()
	var kerr error
	if err := c.Try(func() { masters[victim].Kill() }); err != nil {
		kerr = err
	}
	mu.Lock()
	killAt = time.Now()
	mu.Unlock()
	select {
	case at := <-firstBack:
		res.resumed, res.resume = true, at.Sub(killAt)
		time.Sleep(time.Second) // keep writing on the new master for a while
	case <-time.After(maxWait):
	}
	end := time.Now()
	close(stop)
	wg.Wait()
	if kerr != nil {
		res.err = kerr
		return res
	}
	res.errors = nerrs
	for k := range kinds {
		res.errorKinds = append(res.errorKinds, k)
	}
	sort.Strings(res.errorKinds)

	// Longest gap between acknowledged writes on each healthy shard, over
	// the window from the kill to the end.
	sort.Slice(events, func(i, j int) bool { return events[i].at.Before(events[j].at) })
	for s := range masters {
		if s == victim {
			continue
		}
		prev := killAt
		for _, e := range events {
			if e.shard != s || e.at.Before(killAt) {
				continue
			}
			res.maxGapOther = max(res.maxGapOther, e.at.Sub(prev))
			prev = e.at
		}
		res.maxGapOther = max(res.maxGapOther, end.Sub(prev))
	}

	res.acked = len(lastAck)
	res.missing, err = countMissing(t.seed, lastAck)
	if err != nil {
		res.err = fmt.Errorf("verify: %w", err)
	}
	return res
}

// countMissing reads every key back through an independent client and
// counts keys whose value is older than the last acknowledged write. Redis
// replication is asynchronous, so a SIGKILLed master may legitimately take
// acknowledged writes with it; this shows how many.
func countMissing(addrs []string, lastAck map[string]int) (int, error) {
	cc := redis.NewClusterClient(&redis.ClusterOptions{Addrs: addrs, MaxRedirects: 16})
	defer cc.Close()
	missing := 0
	for key, want := range lastAck {
		var got int
		var err error
		for range 50 { // the view may still be settling
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			var s string
			s, err = cc.Get(ctx, key).Result()
			cancel()
			if errors.Is(err, redis.Nil) {
				got, err = 0, nil
				break
			}
			if err == nil {
				got, err = strconv.Atoi(s)
				break
			}
			time.Sleep(100 * time.Millisecond)
		}
		if err != nil {
			return missing, err
		}
		if got < want {
			missing++
		}
	}
	return missing, nil
}

func shorten(s string) string {
	if len(s) > 90 {
		return s[:90] + "..."
	}
	return s
}
