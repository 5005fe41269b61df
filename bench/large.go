package main

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"runtime/metrics"
	"slices"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/redis/rueidis"

	"github.com/slotrouter/slotrouter/client"
)

// The large-reply table: LRANGE of 10k and 100k elements and GET of 1, 16
// and 100 MiB values, each with context.Background() and with a deadline
// (30 s, far from binding: what is measured is what merely having one
// costs), for every client in one run. Every key has its own distinct value
// and every reply is checked in full: a reply mixed up with another's, or a
// truncated one, is an error, not a data point.

// largeDriver is what the large rows need from a client.
type largeDriver interface {
	GetValue(ctx context.Context, key string) (string, error)
	LRange(ctx context.Context, key string) ([]string, error)
	Close()
}

type largeRow struct {
	name    string
	list    int // LRANGE elements, or 0 for GET
	size    int // GET value bytes
	payload int // bytes of payload per reply (for allocations per payload byte)

	// What each key holds, built once so that checking a reply allocates
	// nothing inside the measured window.
	values []string
	elems  [][]string
}

// allLargeRows is every row; -rows picks some (pickLargeRows).
var allLargeRows = []largeRow{
	{name: "LRANGE 10k", list: 10_000},
	{name: "LRANGE 100k", list: 100_000},
	{name: "GET 1 MiB", size: 1 << 20},
	{name: "GET 16 MiB", size: 16 << 20},
	{name: "GET 100 MiB", size: 100 << 20},
}

// largeKeys: each row has this many keys, all different, used in turn.
const largeKeys = 2

func largeKey(r largeRow, i int) string {
	return fmt.Sprintf("large:{%s}:%d", strings.ReplaceAll(r.name, " ", ""), i)
}

// largeValue is key i's value: its own header then a fill byte of its own.
func largeValue(r largeRow, i int) string {
	head := largeKey(r, i) + "|"
	return head + strings.Repeat(string(rune('a'+i)), r.size-len(head))
}

func largeElem(r largeRow, i, j int) string { return fmt.Sprintf("%d:%d", i, j) }

func (r largeRow) check(i int, got string, elems []string) error {
	if r.list == 0 {
		if got != r.values[i] {
			return fmt.Errorf("%s: key %d: wrong value (%d bytes)", r.name, i, len(got))
		}
		return nil
	}
	if len(elems) != r.list {
		return fmt.Errorf("%s: key %d: %d elements, want %d", r.name, i, len(elems), r.list)
	}
	for j, e := range elems {
		if e != r.elems[i][j] {
			return fmt.Errorf("%s: key %d: element %d = %q", r.name, i, j, e)
		}
	}
	return nil
}

// pickLargeRows is the rows named in the comma-separated list (all when it
// is empty), each a copy of its own.
func pickLargeRows(list string) ([]largeRow, error) {
	if list == "" {
		return slices.Clone(allLargeRows), nil
	}
	var rows []largeRow
	for _, name := range strings.Split(list, ",") {
		i := slices.IndexFunc(allLargeRows, func(r largeRow) bool { return strings.EqualFold(r.name, strings.TrimSpace(name)) })
		if i < 0 {
			return nil, fmt.Errorf("-rows: no large row %q", name)
		}
		rows = append(rows, allLargeRows[i])
	}
	return rows, nil
}

// fillLarge writes every large key of rows through slotrouter.
func fillLarge(ctx context.Context, c *client.Client, rows []largeRow) error {
	for ri := range rows {
		r := &rows[ri]
		for i := range largeKeys {
			k := largeKey(*r, i)
			if r.list == 0 {
				r.values = append(r.values, largeValue(*r, i))
				if err := c.Do(ctx, "SET", k, r.values[i]).Err(); err != nil {
					return err
				}
				r.payload = r.size
				continue
			}
			if err := c.Do(ctx, "DEL", k).Err(); err != nil {
				return err
			}
			r.payload = 0
			r.elems = append(r.elems, nil)
			args := []any{"RPUSH", k}
			for j := range r.list {
				e := largeElem(*r, i, j)
				r.elems[i] = append(r.elems[i], e)
				r.payload += len(e)
				args = append(args, e)
				if len(args) == 1002 || j == r.list-1 {
					if err := c.Do(ctx, args...).Err(); err != nil {
						return err
					}
					args = args[:2]
				}
			}
		}
	}
	return nil
}

type largeCell struct {
	perOp    time.Duration // median time per reply
	mbps     float64       // payload MB/s at that median
	allocPer float64       // bytes allocated per payload byte
	cpuPer   time.Duration // median CPU time of this process per reply
	calls    int
	err      error
}

// largeTally gathers one cell's calls, in call order: call n of every
// client was made in the same round as the others' call n, so the tallies
// are compared call by call (pairedRatio).
type largeTally struct {
	times []time.Duration
	cpu   []time.Duration
	alloc uint64
	err   error
}

func (t largeTally) cell(r largeRow) largeCell {
	if t.err != nil {
		return largeCell{err: t.err}
	}
	med := median(t.times)
	return largeCell{
		perOp:    med,
		mbps:     float64(r.payload) / med.Seconds() / 1e6,
		allocPer: float64(t.alloc) / float64(len(t.times)) / float64(r.payload),
		cpuPer:   median(t.cpu),
		calls:    len(t.times),
	}
}

// allocSample is read around every call; one goroutine measures, so one
// slice serves and reading it allocates nothing.
var allocSample = []metrics.Sample{{Name: "/gc/heap/allocs:bytes"}}

func heapAllocs() uint64 {
	metrics.Read(allocSample)
	return allocSample[0].Value.Uint64()
}

// largeCall is one reply of key i: how long it took, what the process
// allocated and the CPU it used meanwhile (the other goroutines idle: one
// caller), and whether it was the key's value.
func largeCall(d largeDriver, r largeRow, i int, deadline bool) (took, cpu time.Duration, alloc uint64, err error) {
	ctx, cancel := context.Background(), context.CancelFunc(func() {})
	if deadline {
		ctx, cancel = context.WithTimeout(ctx, 30*time.Second)
	}
	defer cancel()
	a0, c0 := heapAllocs(), processCPU()
	start := time.Now()
	var got string
	var elems []string
	if r.list == 0 {
		got, err = d.GetValue(ctx, largeKey(r, i))
	} else {
		elems, err = d.LRange(ctx, largeKey(r, i))
	}
	took = time.Since(start)
	cpu, alloc = processCPU()-c0, heapAllocs()-a0
	if err == nil {
		err = r.check(i, got, elems)
	}
	return took, cpu, alloc, err
}

func largeOps(r largeRow) int {
	switch {
	case r.size >= 100<<20:
		return 4
	case r.size >= 16<<20 || r.list >= 100_000:
		return 10
	}
	return 40
}

// controlName is the A/A control: a second slotrouter client (see paired.go).
const controlName = "slotrouter A/A"

// runLarge measures every large row for every client and writes the tables.
func runLarge(cfg *config, t *target) error {
	rows, err := pickLargeRows(cfg.largeRows)
	if err != nil {
		return err
	}
	// ctx bounds the dials and the fill.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	sr, err := client.New(ctx, client.Options{Addrs: t.seed})
	if err != nil {
		return err
	}
	// sr stays open, idle, to read the servers' slow logs between rows.
	defer sr.Close()
	if err := fillLarge(ctx, sr, rows); err != nil {
		return fmt.Errorf("fill: %w", err)
	}
	var names, kinds []string
	var drivers []largeDriver
	defer func() {
		for _, d := range drivers {
			d.Close()
		}
	}()
	dial := func(name, as string) error {
		d, err := dialLarge(ctx, name, t.seed)
		if err != nil {
			return fmt.Errorf("%s: %w", as, err)
		}
		names, kinds = append(names, as), append(kinds, name)
		drivers = append(drivers, d)
		return nil
	}
	// redialAll gives every client new connections. Two connections of one
	// process are not alike: the kernel paces and buffers each by its own
	// history (ss showed two connections of one loop paced at 22 and 104
	// Gbit/s), and in one run the A/A control, the very same code, was 47%
	// slower than slotrouter on GET 1 MiB for a whole row. Dialling anew
	// each round deals every client a fresh hand.
	redialAll := func() error {
		dctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		for i := range drivers {
			d, err := dialLarge(dctx, kinds[i], t.seed)
			if err != nil {
				return fmt.Errorf("%s: redial: %w", names[i], err)
			}
			drivers[i].Close()
			drivers[i] = d
		}
		return nil
	}
	for _, s := range cfg.clients {
		switch s.name {
		case "slotrouter":
			if err := dial(s.name, s.name); err != nil {
				return err
			}
			if err := dial(s.name, controlName); err != nil {
				return err
			}
		case "rueidis", "go-redis":
			if err := dial(s.name, s.name); err != nil {
				return err
			}
		default:
			// The other configurations (go-redis auto-pipeline, rueidis
			// flush delays, sized pools) tune batching, which one caller
			// reading huge replies never exercises: the same reads.
		}
	}
	// The clients and the two modes take turns call by call, in an order
	// shuffled anew every round: every call of one cell has calls of the
	// other cells right before and after it, so a slow spell of this
	// shared machine (or the servers settling after the fill) lands on all
	// cells alike instead of on one client's block of calls. The order is
	// random, not a rotation: a rotation of four clients with modes
	// swapping every round put each (client, mode) on the same positions of
	// every round, and positions are not alike (the collector has a
	// rhythm): on GET 100 MiB with a deadline the A/A control, the very
	// same code, came out 2-6% faster than slotrouter in five runs of five.
	// The seed is fixed, so a run's order can be replayed.
	// The collector runs as the garbage comes: a collection that one
	// client's garbage starts can land on another's call, which favours
	// the client that allocates most (slotrouter, on the LRANGE rows); on
	// the GET rows every client allocates the same.
	type turn struct {
		i  int
		dl bool
	}
	order := rand.New(rand.NewPCG(7, 11))
	turns := make([]turn, 0, 2*len(drivers))
	for i := range drivers {
		turns = append(turns, turn{i, false}, turn{i, true})
	}
	cells := map[string]largeCell{}        // row|mode|client
	pairs := map[string]ratioCI{}          // row|mode|client: its time ÷ slotrouter's, call by call
	inServer := map[string]time.Duration{} // row: the server's own time inside GET
	for _, r := range rows {
		if err := slowlog(sr, "RESET").Err(); err != nil {
			return fmt.Errorf("SLOWLOG RESET: %w", err)
		}
		runtime.GC() // each row starts without the last row's garbage
		tallies := map[bool][]largeTally{false: make([]largeTally, len(drivers)), true: make([]largeTally, len(drivers))}
		for n := range largeOps(r) * cfg.rounds {
			if cfg.redial && n > 0 && n%largeOps(r) == 0 {
				if err := redialAll(); err != nil {
					return err
				}
			}
			order.Shuffle(len(turns), func(a, b int) { turns[a], turns[b] = turns[b], turns[a] })
			for _, tn := range turns {
				t := &tallies[tn.dl][tn.i]
				if t.err != nil {
					continue
				}
				took, cpu, alloc, err := largeCall(drivers[tn.i], r, n%largeKeys, tn.dl)
				if err != nil {
					t.err = err
					continue
				}
				t.times = append(t.times, took)
				t.cpu = append(t.cpu, cpu)
				t.alloc += alloc
			}
		}
		if r.list == 0 {
			inServer[r.name] = serverTime(sr, r)
		}
		for _, dl := range []bool{false, true} {
			base := slices.Index(names, "slotrouter")
			for i, n := range names {
				c := tallies[dl][i].cell(r)
				cells[r.name+"|"+mode(dl)+"|"+n] = c
				logf("%-12s %-10s %-14s %8.1f MB/s %v/op %.2f B alloc per payload B, %v CPU, %d calls %v", r.name, mode(dl), n, c.mbps, c.perOp.Round(time.Microsecond), c.allocPer, c.cpuPer.Round(time.Microsecond), c.calls, c.err)
				if base >= 0 && i != base && c.err == nil && tallies[dl][base].err == nil {
					pairs[r.name+"|"+mode(dl)+"|"+n] = pairedRatio(tallies[dl][base].times, tallies[dl][i].times)
				}
			}
		}
	}
	out := largeTable(rows, names, cells, cfg.rounds, cfg.redial) + "\n" + pairTable(rows, names, cells, pairs, inServer)
	fmt.Print(out)
	if cfg.out != "" {
		if err := os.MkdirAll(cfg.out, 0o755); err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(cfg.out, "large.md"), []byte(out), 0o644)
	}
	return nil
}

// largeTable is each client's throughput and allocation per cell.
func largeTable(rows []largeRow, names []string, cells map[string]largeCell, rounds int, redial bool) string {
	var b strings.Builder
	conns := "each client keeps its connections for the whole run"
	if redial {
		conns = "every client dials new connections at each round"
	}
	fmt.Fprintf(&b, "# Large replies\n\n%s\n\nPayload MB/s at the median call (time per reply in brackets; %d rounds of calls, the clients and modes taking turns call by call in a shuffled order; %s) and bytes allocated per payload byte, one goroutine. Every key has its own value; every reply was checked in full. %q is a second slotrouter client, the control that measures this run's resolution.\n\n", machineHeaderShort(), rounds, conns, controlName)
	tableHead(&b, []string{"reply", "ctx"}, names, []string{"{} MB/s", "{} alloc/B"}, nil)
	for _, r := range rows {
		for _, dl := range []bool{false, true} {
			fmt.Fprintf(&b, "| %s | %s |", r.name, mode(dl))
			for _, n := range names {
				c := cells[r.name+"|"+mode(dl)+"|"+n]
				if c.err != nil {
					fmt.Fprintf(&b, " error: %v | |", c.err)
					continue
				}
				fmt.Fprintf(&b, " %.0f (%v) | %.2f |", c.mbps, c.perOp.Round(100*time.Microsecond), c.allocPer)
			}
			b.WriteString("\n")
		}
	}
	return b.String()
}

// pairTable compares slotrouter with each peer call by call, against the
// resolution its A/A control measured in the same cell, and gives each
// client's median CPU per call.
func pairTable(rows []largeRow, names []string, cells map[string]largeCell, pairs map[string]ratioCI, inServer map[string]time.Duration) string {
	var peers []string
	for _, n := range names {
		if n != "slotrouter" && n != controlName {
			peers = append(peers, n)
		}
	}
	var b strings.Builder
	fmt.Fprintf(&b, "## slotrouter against each peer, call by call\n\nA peer's time ÷ slotrouter's for the same call number (made in the same round), median and 95%% bootstrap interval: above 1, slotrouter was faster. The A/A column is the same ratio for the control, a second slotrouter client: how far its interval reaches from 1 is the run's resolution, capped at %.0f%%; a deficit within it is \"level\". CPU is this process's (user + system) per call, median. In server: the median time redis-server spent inside the row's GETs before sending a byte (its SLOWLOG, which records commands over 10 ms), as a share of slotrouter's median call: no client can be faster by more than the rest.\n\n", 100*pairCap)
	tableHead(&b, []string{"reply", "ctx", "A/A"}, peers, []string{"{} ÷ slotrouter", "verdict"}, []string{"CPU per call", "in server"})
	for _, r := range rows {
		for _, dl := range []bool{false, true} {
			key := r.name + "|" + mode(dl) + "|"
			control := pairs[key+controlName]
			res, capped := resolution(control)
			note := ""
			if capped {
				note = " (capped)"
			}
			fmt.Fprintf(&b, "| %s | %s | %v%s |", r.name, mode(dl), control, note)
			for _, p := range peers {
				fmt.Fprintf(&b, " %v | %s |", pairs[key+p], verdict(pairs[key+p], res))
			}
			var cpus []string
			for _, n := range names {
				if c := cells[key+n]; c.err == nil && n != controlName {
					cpus = append(cpus, fmt.Sprintf("%s %v", n, c.cpuPer.Round(time.Microsecond)))
				}
			}
			share := "-"
			if st, c := inServer[r.name], cells[key+"slotrouter"]; st > 0 && c.err == nil {
				share = fmt.Sprintf("%v (%.0f%%)", st.Round(100*time.Microsecond), 100*float64(st)/float64(c.perOp))
			}
			fmt.Fprintf(&b, " %s | %s |\n", strings.Join(cpus, ", "), share)
		}
	}
	return b.String()
}

// slowlog runs one SLOWLOG request on every master, bounded on its own:
// a long -rounds run outlasts the setup's ctx.
func slowlog(sr *client.Client, args ...any) client.Result {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	return sr.DoMasters(ctx, append([]any{"SLOWLOG"}, args...)...)
}

// serverTime is the median time the row's GETs spent inside redis-server
// (SLOWLOG of every master since the row began), or 0 when it logged fewer
// than 3: a GET shorter than slowlog-log-slower-than is not logged.
func serverTime(sr *client.Client, r largeRow) time.Duration {
	nodes, err := slowlog(sr, "GET", "128").Nodes()
	if err != nil {
		logf("%s: SLOWLOG GET: %v", r.name, err)
		return 0
	}
	prefix := strings.TrimSuffix(largeKey(r, 0), "0")
	var took []time.Duration
	for _, n := range nodes {
		entries, _ := n.Result.Results()
		for _, e := range entries {
			// [id, unix time, microseconds, [command and args], ...]
			f, _ := e.Results()
			if len(f) < 4 {
				continue
			}
			us, _ := f[2].Int64()
			args, _ := f[3].Strings()
			if len(args) == 2 && strings.EqualFold(args[0], "GET") && strings.HasPrefix(args[1], prefix) {
				took = append(took, time.Duration(us)*time.Microsecond)
			}
		}
	}
	if len(took) < 3 {
		return 0
	}
	return median(took)
}

func mode(deadline bool) string {
	if deadline {
		return "deadline"
	}
	return "Background"
}

func machineHeaderShort() string {
	return fmt.Sprintf("%s, %d CPUs, %s", time.Now().Format("2006-01-02"), runtime.NumCPU(), runtime.Version())
}

func dialLarge(ctx context.Context, name string, addrs []string) (largeDriver, error) {
	switch name {
	case "slotrouter":
		c, err := client.New(ctx, client.Options{Addrs: addrs})
		if err != nil {
			return nil, err
		}
		return srLarge{c}, nil
	case "rueidis":
		c, err := rueidis.NewClient(rueidis.ClientOption{InitAddress: addrs, DisableCache: true})
		if err != nil {
			return nil, err
		}
		return rueidisLarge{c}, nil
	case "go-redis":
		cc := redis.NewClusterClient(&redis.ClusterOptions{Addrs: addrs})
		if err := cc.Ping(ctx).Err(); err != nil {
			_ = cc.Close()
			return nil, err
		}
		return goRedisLarge{cc}, nil
	}
	return nil, errors.New("unknown client " + name)
}

type srLarge struct{ c *client.Client }

func (d srLarge) GetValue(ctx context.Context, key string) (string, error) {
	return d.c.Do(ctx, "GET", key).Text()
}

func (d srLarge) LRange(ctx context.Context, key string) ([]string, error) {
	return d.c.Do(ctx, "LRANGE", key, 0, -1).Strings()
}

func (d srLarge) Close() { _ = d.c.Close() }

type rueidisLarge struct{ c rueidis.Client }

func (d rueidisLarge) GetValue(ctx context.Context, key string) (string, error) {
	return d.c.Do(ctx, d.c.B().Get().Key(key).Build()).ToString()
}

func (d rueidisLarge) LRange(ctx context.Context, key string) ([]string, error) {
	return d.c.Do(ctx, d.c.B().Lrange().Key(key).Start(0).Stop(-1).Build()).AsStrSlice()
}

func (d rueidisLarge) Close() { d.c.Close() }

type goRedisLarge struct{ cc *redis.ClusterClient }

func (d goRedisLarge) GetValue(ctx context.Context, key string) (string, error) {
	return d.cc.Get(ctx, key).Result()
}

func (d goRedisLarge) LRange(ctx context.Context, key string) ([]string, error) {
	return d.cc.LRange(ctx, key, 0, -1).Result()
}

func (d goRedisLarge) Close() { _ = d.cc.Close() }
