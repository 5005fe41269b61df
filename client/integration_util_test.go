package client

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/slotrouter/slotrouter/internal/redistest"
	"github.com/slotrouter/slotrouter/slots"
)

// Helpers shared by the integration tests, which start real clusters and
// produce every reply the router's policy table covers for real.

var (
	tagsOnce sync.Once
	slotTags [slots.Count]string
)

// tagFor returns a hash tag whose slot is s, so tests can put keys in the
// slot a scenario needs.
func tagFor(s slots.Slot) string {
	tagsOnce.Do(func() {
		left := slots.Count
		for i := 0; left > 0; i++ {
			tag := strconv.Itoa(i)
			if sl := slots.Of(tag); slotTags[sl] == "" {
				slotTags[sl] = tag
				left--
			}
		}
	})
	return slotTags[s]
}

// keyIn returns a key in slot s; name makes it unique.
func keyIn(s slots.Slot, name string) string {
	return "{" + tagFor(s) + "}" + name
}

// startCluster starts a cluster for one test.
func startCluster(t *testing.T, o redistest.ClusterOptions) *redistest.Cluster {
	t.Helper()
	redistest.Require(t)
	if o.NodeTimeout == 0 {
		o.NodeTimeout = 2 * time.Second
	}
	return redistest.StartCluster(t, o)
}

// newTestClient connects to cl and closes the client at cleanup.
func newTestClient(t *testing.T, cl *redistest.Cluster, o Options) *Client {
	t.Helper()
	if len(o.Addrs) == 0 && o.Source == nil {
		o.Addrs = cl.Addrs()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	c, err := New(ctx, o)
	if err != nil {
		t.Fatalf("client.New: %v", err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// testLogger sends a client's logs, Debug included, to t.Log, so that a
// failing test shows the client's own account of what it did (t.Log prints
// only for a failed test, or with -v). Call it before newTestClient: its
// cleanup then runs after the client's Close, and drops anything later.
func testLogger(t *testing.T) *slog.Logger {
	w := &tLogWriter{t: t}
	t.Cleanup(func() {
		w.mu.Lock()
		w.done = true
		w.mu.Unlock()
	})
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type tLogWriter struct {
	t    *testing.T
	mu   sync.Mutex
	done bool
}

func (w *tLogWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.done {
		w.t.Log(strings.TrimSuffix(string(p), "\n"))
	}
	return len(p), nil
}

// errorStat is the count of error replies of kind (e.g. "READONLY") the
// server has sent, from INFO errorstats: proof that a reply really happened.
func errorStat(t *testing.T, s *redistest.Server, kind string) int {
	t.Helper()
	return infoStat(t, s, "errorstats", "errorstat_"+kind+":count=")
}

// infoStat is the number after prefix on a line of INFO section, 0 if absent.
func infoStat(t *testing.T, s *redistest.Server, section, prefix string) int {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	v, err := s.Do(ctx, "INFO", section)
	if err != nil {
		t.Fatalf("INFO %s on %s: %v", section, s.Name, err)
	}
	text, _ := v.(string)
	for _, line := range strings.Split(text, "\n") {
		rest, ok := strings.CutPrefix(strings.TrimSpace(line), prefix)
		if ok {
			n, _ := strconv.Atoi(strings.SplitN(rest, ",", 2)[0])
			return n
		}
	}
	return 0
}

// slotOwnedBy returns a slot that srv owns (per the harness), starting the
// search at from.
func slotOwnedBy(t *testing.T, cl *redistest.Cluster, srv *redistest.Server, from int) slots.Slot {
	t.Helper()
	for i := range slots.Count {
		s := (from + i) % slots.Count
		if m := cl.MasterOf(s); m != nil && m.ID == srv.ID {
			return slots.Slot(s)
		}
	}
	t.Fatalf("%s owns no slot", srv.Name)
	return 0
}

// serverByAddr finds the harness server at addr.
func serverByAddr(t *testing.T, cl *redistest.Cluster, addr string) *redistest.Server {
	t.Helper()
	for _, s := range cl.Servers() {
		if s.Addr == addr {
			return s
		}
	}
	t.Fatalf("no server at %s", addr)
	return nil
}

// opRecord is one call made by a load generator.
type opRecord struct {
	shard      int // index of the slot's shard in the view at start
	slot       slots.Slot
	key, value string
	start, end time.Time
	deadline   time.Time
	err        error
	read       bool // a GET checking an earlier write
	wrong      string
}

// loadOptions drive runLoad.
type loadOptions struct {
	Rate       int           // total ops/s
	PerShard   int           // workers per shard
	Deadline   time.Duration // per call
	Reads      bool          // each worker also reads back its previous write
	Idempotent bool
	// Slots restricts the keys to these slots (per shard of the start
	// view); empty means all slots of the shard.
	Slots []slots.Slot
}

// load is a running load generator: PerShard workers per shard, each
// writing fresh keys in its shard's slots at a steady rate.
type load struct {
	mu      sync.Mutex
	ops     []opRecord
	stop    chan struct{}
	wg      sync.WaitGroup
	masters []string // shard index -> master at start
}

func shardSlots(c *Client) ([]string, [][]slots.Slot) {
	snap := c.Topology()
	var masters []string
	var out [][]slots.Slot
	for _, sh := range snap.Shards() {
		if len(sh.Ranges) == 0 {
			continue
		}
		var ss []slots.Slot
		for _, r := range sh.Ranges {
			for s := int(r.Start); s <= int(r.End); s++ {
				ss = append(ss, slots.Slot(s))
			}
		}
		masters = append(masters, sh.Master.Addr)
		out = append(out, ss)
	}
	return masters, out
}

func startLoad(t *testing.T, c *Client, o loadOptions) *load {
	t.Helper()
	masters, perShard := shardSlots(c)
	if len(o.Slots) > 0 {
		want := map[slots.Slot]bool{}
		for _, s := range o.Slots {
			want[s] = true
		}
		for i, ss := range perShard {
			var keep []slots.Slot
			for _, s := range ss {
				if want[s] {
					keep = append(keep, s)
				}
			}
			perShard[i] = keep
		}
	}
	l := &load{stop: make(chan struct{}), masters: masters}
	workers := 0
	for _, ss := range perShard {
		if len(ss) > 0 {
			workers += o.PerShard
		}
	}
	interval := time.Duration(workers) * time.Second / time.Duration(o.Rate)
	w := 0
	for shard, ss := range perShard {
		if len(ss) == 0 {
			continue
		}
		for range o.PerShard {
			w++
			l.wg.Add(1)
			// Staggered starts spread the calls evenly over each tick, as a
			// steady rate means, instead of bursts of calls sharing a deadline.
			go l.worker(c, o, shard, ss, w, interval, time.Duration(w-1)*interval/time.Duration(workers))
		}
	}
	return l
}

func (l *load) worker(c *Client, o loadOptions, shard int, ss []slots.Slot, w int, every, offset time.Duration) {
	defer l.wg.Done()
	select {
	case <-l.stop:
		return
	case <-time.After(offset):
	}
	tick := time.NewTicker(every)
	defer tick.Stop()
	var prev *opRecord
	for i := 0; ; i++ {
		select {
		case <-l.stop:
			return
		case <-tick.C:
		}
		s := ss[rand.IntN(len(ss))]
		rec := opRecord{shard: shard, slot: s, key: keyIn(s, fmt.Sprintf(":w%d:%d", w, i)), value: fmt.Sprintf("v%d.%d", w, i)}
		l.call(c, o, &rec, "SET", rec.key, rec.value)
		l.record(rec)
		if o.Reads && prev != nil && prev.err == nil {
			rd := opRecord{shard: prev.shard, slot: prev.slot, key: prev.key, value: prev.value, read: true}
			got := l.call(c, o, &rd, "GET", rd.key)
			if rd.err == nil && got != rd.value {
				rd.wrong = got
			}
			l.record(rd)
		}
		p := rec
		prev = &p
	}
}

// call runs one command with the per-call deadline and records it.
func (l *load) call(c *Client, o loadOptions, rec *opRecord, args ...any) string {
	ctx, cancel := context.WithTimeout(context.Background(), o.Deadline)
	defer cancel()
	if o.Idempotent {
		ctx = Idempotent(ctx)
	}
	rec.start = time.Now()
	rec.deadline, _ = ctx.Deadline()
	res := c.Do(ctx, args...)
	rec.end = time.Now()
	rec.err = res.Err()
	v, _ := res.Text()
	return v
}

func (l *load) record(r opRecord) {
	l.mu.Lock()
	l.ops = append(l.ops, r)
	l.mu.Unlock()
}

// finish stops the workers and waits for their calls to end.
func (l *load) finish() []opRecord {
	close(l.stop)
	l.wg.Wait()
	l.mu.Lock()
	defer l.mu.Unlock()
	out := append([]opRecord(nil), l.ops...)
	sort.Slice(out, func(i, j int) bool { return out[i].start.Before(out[j].start) })
	return out
}

// stats summarises records.
type loadStats struct {
	ops, errs  []int // per shard (writes and failed reads)
	wrong      int
	maxLatency time.Duration
	maxOverrun time.Duration // beyond the call's deadline
	firstErrs  []string
	overruns   []string // calls that ended more than 10ms past their deadline
}

func summarise(ops []opRecord, shards int) loadStats {
	st := loadStats{ops: make([]int, shards), errs: make([]int, shards)}
	for _, op := range ops {
		st.ops[op.shard]++
		if op.err != nil {
			st.errs[op.shard]++
			if len(st.firstErrs) < 5 {
				st.firstErrs = append(st.firstErrs, fmt.Sprintf("shard %d slot %d %s at %s: %v", op.shard, op.slot, op.key, op.start.Format("15:04:05.000"), op.err))
			}
		}
		if op.wrong != "" {
			st.wrong++
		}
		st.maxLatency = max(st.maxLatency, op.end.Sub(op.start))
		if !op.deadline.IsZero() {
			over := op.end.Sub(op.deadline)
			st.maxOverrun = max(st.maxOverrun, over)
			if over > 10*time.Millisecond && len(st.overruns) < 30 {
				st.overruns = append(st.overruns, fmt.Sprintf("shard %d %s started %s, %v late: %v", op.shard, op.key, op.start.Format("15:04:05.000"), over, op.err))
			}
		}
	}
	return st
}

// readBack reads every acknowledged write back and returns the number of
// keys whose value is missing or different, per shard.
func readBack(t *testing.T, c *Client, ops []opRecord, shards int) []int {
	t.Helper()
	lost := make([]int, shards)
	var acked []opRecord
	for _, op := range ops {
		if !op.read && op.err == nil {
			acked = append(acked, op)
		}
	}
	for i := 0; i < len(acked); i += 200 {
		batch := acked[i:min(i+200, len(acked))]
		p := c.Pipeline()
		for _, op := range batch {
			p.Do("GET", op.key)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		res, _ := p.Exec(ctx)
		cancel()
		for j, op := range batch {
			v, err := res[j].Text()
			if err != nil || v != op.value {
				lost[op.shard]++
			}
		}
	}
	return lost
}

// stateMonitor samples CLUSTER INFO on some nodes every 10 ms, so a test
// can tell when the cluster itself refused writes (cluster_state:fail):
// a failover under heavy machine load can keep the survivors answering
// CLUSTERDOWN for longer than a call's deadline, and no client can hide
// that.
type stateMonitor struct {
	stop    chan struct{}
	wg      sync.WaitGroup
	mu      sync.Mutex
	samples map[string][]stateSample
}

type stateSample struct {
	at time.Time
	ok bool
}

func startStateMonitor(servers []*redistest.Server) *stateMonitor {
	m := &stateMonitor{stop: make(chan struct{}), samples: map[string][]stateSample{}}
	for _, s := range servers {
		m.wg.Add(1)
		go func() {
			defer m.wg.Done()
			for {
				select {
				case <-m.stop:
					return
				case <-time.After(10 * time.Millisecond):
				}
				ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
				at := time.Now()
				v, err := s.Do(ctx, "CLUSTER", "INFO")
				cancel()
				if err != nil {
					continue
				}
				m.mu.Lock()
				m.samples[s.Addr] = append(m.samples[s.Addr], stateSample{at, strings.Contains(fmt.Sprint(v), "cluster_state:ok")})
				m.mu.Unlock()
			}
		}()
	}
	return m
}

func (m *stateMonitor) finish() {
	close(m.stop)
	m.wg.Wait()
}

// downAt reports whether addr's last sample taken at or before t said
// cluster_state:fail.
func (m *stateMonitor) downAt(addr string, t time.Time) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	down := false
	for _, s := range m.samples[addr] {
		if s.at.After(t) {
			break
		}
		down = !s.ok
	}
	return down
}

// downFor is the longest run of fail samples on addr.
func (m *stateMonitor) downFor(addr string) time.Duration {
	m.mu.Lock()
	defer m.mu.Unlock()
	var longest time.Duration
	var from time.Time
	for _, s := range m.samples[addr] {
		switch {
		case !s.ok && from.IsZero():
			from = s.at
		case s.ok && !from.IsZero():
			longest = max(longest, s.at.Sub(from))
			from = time.Time{}
		}
	}
	return longest
}
