package client

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sort"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/slotrouter/slotrouter/router"
	"github.com/slotrouter/slotrouter/slots"
)

// Helpers of the Backends tests: small call wrappers and a steady writer.
//
// The steady writer for the failover tests: one goroutine per shard
// writes unique keys of that shard's slot one after the other, so each
// shard's outage and recovery shows up in its own timeline.

// bkOp is one SET as the caller saw it.
type bkOp struct {
	shard           int
	key, val        string
	start, end, ddl time.Time
	// woke is when a goroutine of the test waiting on the call's ctx saw it
	// end: a deadline cannot be acted on before the runtime wakes anyone.
	woke time.Time
	err  error
}

type bkLoadOptions struct {
	minTimeout, maxTimeout time.Duration // per-call deadline, uniform in [min, max]
	idempotent             bool
	pause                  time.Duration // between two calls of one writer
}

type bkLoad struct {
	stop chan struct{}
	once sync.Once
	wg   sync.WaitGroup
	mu   sync.Mutex
	ops  []bkOp
}

// bkLoadLimit bounds every writer even if a test forgets to stop it.
const bkLoadLimit = 60 * time.Second

// startBkLoad starts the writers; they stop at finish or, at the latest,
// when the test ends (before the client is closed: cleanups run last in,
// first out).
func startBkLoad(t *testing.T, c *Client, tags []string, o bkLoadOptions) *bkLoad {
	l := &bkLoad{stop: make(chan struct{})}
	for shard, tag := range tags {
		l.wg.Add(1)
		go l.writer(c, shard, tag, o)
	}
	t.Cleanup(func() { l.finish() })
	return l
}

func (l *bkLoad) writer(c *Client, shard int, tag string, o bkLoadOptions) {
	defer l.wg.Done()
	rng := rand.New(rand.NewPCG(uint64(shard), uint64(time.Now().UnixNano())))
	limit := time.Now().Add(bkLoadLimit)
	for seq := 0; time.Now().Before(limit); seq++ {
		select {
		case <-l.stop:
			return
		default:
		}
		d := o.minTimeout
		if o.maxTimeout > o.minTimeout {
			d += time.Duration(rng.Int64N(int64(o.maxTimeout - o.minTimeout)))
		}
		op := bkOp{shard: shard, key: "{" + tag + "}:w:" + strconv.Itoa(seq), val: "v" + strconv.Itoa(shard) + "." + strconv.Itoa(seq)}
		ctx, cancel := context.WithTimeout(context.Background(), d)
		if o.idempotent {
			ctx = Idempotent(ctx)
		}
		op.ddl, _ = ctx.Deadline()
		woke := make(chan time.Time, 1)
		go func() {
			<-ctx.Done()
			woke <- time.Now()
		}()
		op.start = time.Now()
		res := c.Do(ctx, "SET", op.key, op.val)
		op.end = time.Now()
		cancel()
		op.woke = <-woke
		if op.err = res.Err(); op.err == nil {
			if s, err := res.Text(); err != nil || s != "OK" {
				op.err = fmt.Errorf("SET replied %v", res)
			}
		}
		l.mu.Lock()
		l.ops = append(l.ops, op)
		l.mu.Unlock()
		if o.pause > 0 {
			select {
			case <-l.stop:
				return
			case <-time.After(o.pause):
			}
		}
	}
}

// firstAck is the first successful op of shard that ended after t (see
// bkFirstAck).
func (l *bkLoad) firstAck(shard int, t time.Time, sentAfter bool) (bkOp, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return bkFirstAck(l.ops, shard, t, sentAfter)
}

// bkFirstAck is the first acknowledged write on shard that ended after t
// (and, with sentAfter, was also sent after t).
func bkFirstAck(ops []bkOp, shard int, t time.Time, sentAfter bool) (bkOp, bool) {
	var best bkOp
	found := false
	for _, op := range ops {
		if op.shard == shard && op.err == nil && op.end.After(t) && (!sentAfter || op.start.After(t)) &&
			(!found || op.end.Before(best.end)) {
			best, found = op, true
		}
	}
	return best, found
}

// waitAck waits for a write on shard acknowledged after the given time.
func (l *bkLoad) waitAck(t *testing.T, shard int, after time.Time, within time.Duration) bkOp {
	t.Helper()
	return l.waitFirstAck(t, shard, after, within, false)
}

// waitResumed waits for a write on shard both sent and acknowledged after
// the given time: a reply the node had sent just before it was stopped,
// read after, proves nothing about the shard serving again.
func (l *bkLoad) waitResumed(t *testing.T, shard int, after time.Time, within time.Duration) bkOp {
	t.Helper()
	return l.waitFirstAck(t, shard, after, within, true)
}

func (l *bkLoad) waitFirstAck(t *testing.T, shard int, after time.Time, within time.Duration, sentAfter bool) bkOp {
	t.Helper()
	deadline := time.Now().Add(within)
	for time.Now().Before(deadline) {
		if op, ok := l.firstAck(shard, after, sentAfter); ok {
			return op
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Fatalf("shard %d: no write succeeded within %v", shard, within)
	return bkOp{}
}

// finish stops the writers and returns every op.
func (l *bkLoad) finish() []bkOp {
	l.once.Do(func() { close(l.stop) })
	l.wg.Wait()
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.ops
}

// bkShardTags picks one hash tag per master, the victim's first, so
// writer 0 is the one whose shard the tests break.
func bkShardTags(t *testing.T, be backend, victim string) []string {
	t.Helper()
	masters := be.Masters()
	sort.SliceStable(masters, func(i, j int) bool { return masters[i] == victim && masters[j] != victim })
	if masters[0] != victim {
		t.Fatalf("%s is not a master (masters %v)", victim, masters)
	}
	want := map[string]int{}
	for i, m := range masters {
		want[m] = i
	}
	tags := make([]string, len(masters))
	left := len(masters)
	// Slots owned by the masters are not known up front, so sample the
	// key space: 16 probes per master find every owner.
	for s := 0; s < slots.Count && left > 0; s += slots.Count / (16 * len(masters)) {
		m := be.MasterOf(slots.Slot(s))
		if i, ok := want[m]; ok && tags[i] == "" {
			tags[i] = bkTag(t, slots.Slot(s))
			left--
		}
	}
	if left > 0 {
		t.Fatalf("no slot found for every master: %v", tags)
	}
	return tags
}

// bkReadBack reads every acknowledged write back through the client and
// returns those whose key is gone; a wrong value fails the test at once.
func bkReadBack(t *testing.T, c *Client, ops []bkOp) (lost []bkOp) {
	t.Helper()
	var acked []bkOp
	for _, op := range ops {
		if op.err == nil {
			acked = append(acked, op)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	const batch = 500
	for i := 0; i < len(acked); i += batch {
		part := acked[i:min(i+batch, len(acked))]
		p := c.Pipeline()
		for _, op := range part {
			p.Do("GET", op.key)
		}
		res, err := p.Exec(ctx)
		if err != nil {
			t.Fatalf("read back: %v", err)
		}
		for j, r := range res {
			if r.IsNil() {
				lost = append(lost, part[j])
				continue
			}
			if got, err := r.Text(); err != nil || got != part[j].val {
				t.Errorf("read back %s: got %v, want %q", part[j].key, r, part[j].val)
			}
		}
	}
	return lost
}

// bkStats summarises one run for the log.
type bkStats struct {
	ops, errs   int
	maxLatency  time.Duration
	maxOverrun  time.Duration // how much later than its deadline a call returned
	overrunOver int           // calls returning more than 10 ms after their deadline
}

func bkSummarise(ops []bkOp, shard int) bkStats {
	var s bkStats
	s.maxOverrun = -time.Hour
	for _, op := range ops {
		if shard >= 0 && op.shard != shard {
			continue
		}
		s.ops++
		if op.err != nil {
			s.errs++
		}
		s.maxLatency = max(s.maxLatency, op.end.Sub(op.start))
		over := op.end.Sub(op.ddl)
		s.maxOverrun = max(s.maxOverrun, over)
		if over > 10*time.Millisecond {
			s.overrunOver++
		}
	}
	return s
}

// bkLogErrors prints up to n failed ops, so a failure says what happened.
func bkLogErrors(t *testing.T, ops []bkOp, n int, ref time.Time) {
	t.Helper()
	for _, op := range ops {
		if op.err == nil {
			continue
		}
		if n--; n < 0 {
			return
		}
		t.Logf("  shard %d %s: started %v after the fault, took %v: %v (deadline exceeded: %v)",
			op.shard, op.key, op.start.Sub(ref).Round(time.Millisecond), op.end.Sub(op.start).Round(time.Millisecond),
			op.err, errors.Is(op.err, context.DeadlineExceeded))
	}
}

func bkCtx(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// bkOther returns a master other than from.
func bkOther(t *testing.T, be backend, from string) string {
	t.Helper()
	for _, m := range be.Masters() {
		if m != from {
			return m
		}
	}
	t.Fatalf("no master other than %s", from)
	return ""
}

// bkTarget is where the client's table sends a write for s right now.
func bkTarget(t *testing.T, c *Client, s slots.Slot) string {
	t.Helper()
	addr, err := c.Router().Target(&router.Attempt{Slot: s, HasSlot: true})
	if err != nil {
		t.Fatalf("Target(%d): %v", s, err)
	}
	return addr
}

func bkSet(t *testing.T, c *Client, key, val string) {
	t.Helper()
	if err := c.Do(bkCtx(t, 5*time.Second), "SET", key, val).Err(); err != nil {
		t.Fatalf("SET %s: %v", key, err)
	}
}

func bkGet(t *testing.T, c *Client, key, want string) {
	t.Helper()
	got, err := c.Do(bkCtx(t, 5*time.Second), "GET", key).Text()
	if err != nil || got != want {
		t.Fatalf("GET %s = %q, %v; want %q", key, got, err, want)
	}
}

// bkKillErrors counts the failed calls of a kill, excusing only those that
// could not have succeeded: their deadline passed before any replica had
// taken over (a real failover with node-timeout 2 s takes 3-5 s, close to
// the 5 s per-call deadline). Everything else counts.
func bkKillErrors(ops []bkOp, promoted time.Time) (bad, excused int) {
	for _, op := range ops {
		switch {
		case op.err == nil:
		case errors.Is(op.err, context.DeadlineExceeded) && op.ddl.Before(promoted):
			excused++
		default:
			bad++
		}
	}
	return bad, excused
}
