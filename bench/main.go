// Command bench measures slotrouter against rueidis and go-redis (pooled and
// auto-pipelined) on one Redis Cluster in one run, with redis-benchmark as
// the ceiling, and a failover round per client. It is a separate module so
// that users of the library never download the peers.
//
//	cd bench && go run .             # starts a 3-master 3-replica cluster
//	go run . -quick                  # a shorter run
//	go run . -proxy                  # only redis-benchmark through the proxy next to --cluster
//	go run . -addrs 127.0.0.1:7000   # an existing cluster (failover rounds still launch their own)
//	go run . -pubsub                 # only the sharded pub/sub failover round (results/pubsub.md)
//	go run . -mget                   # only MGET of 100 keys over all slots against the peers' batches
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"runtime/pprof"
	"strconv"
	"strings"
	"time"
)

type config struct {
	addrs       []string
	clients     []clientSpec
	workloads   []workload
	goroutines  []int
	dur, warm   time.Duration
	rounds      int
	proxy       bool // -proxy: only the proxy rounds (proxy.go)
	failover    bool
	ceiling     bool
	out         string
	nodeTimeout time.Duration
	pubsub      bool
	large       bool
	largeRows   string
	redial      bool // -large: every client dials anew each round
	cache       bool
	pin         bool
	cpuprofile  string
}

func parseFlags() (*config, error) {
	var (
		addrs    = flag.String("addrs", "", "comma-separated seed nodes of an existing cluster (default: start one)")
		clients  = flag.String("clients", "", "comma-separated subset of: slotrouter,rueidis,go-redis,go-redis-auto")
		wls      = flag.String("workloads", "", "comma-separated subset of: GET,SET,MIX80/20,PIPE100,MGET100")
		gs       = flag.String("goroutines", "1,16,64,256", "concurrency levels")
		dur      = flag.Duration("duration", time.Second, "measured window per client, row and round")
		viaProxy = flag.Bool("proxy", false, "run only redis-benchmark through slotrouter's proxy and directly (table on stdout)")
		warm     = flag.Duration("warmup", 250*time.Millisecond, "warm-up before each measured window")
		rounds   = flag.Int("rounds", 3, "rounds per row; medians are reported")
		failover = flag.Bool("failover", true, "run the failover round (a fresh cluster per client)")
		ceil     = flag.Bool("ceiling", true, "run redis-benchmark --cluster as the ceiling")
		out      = flag.String("out", "results", "directory for latest.md and the SVG chart")
		quick    = flag.Bool("quick", false, "short run: 1 round of 400ms at 1,16,64 goroutines")
		mget     = flag.Bool("mget", false, "only MGET of 100 keys over all slots: slotrouter MGET vs go-redis pipelined GETs vs rueidis DoMulti, 1 and 16 goroutines, no failover or ceiling")
		nt       = flag.Duration("node-timeout", time.Second, "cluster-node-timeout of launched clusters")
		pubsub   = flag.Bool("pubsub", false, "run only the sharded pub/sub failover round, one fresh cluster per client")
		pinned   = flag.Bool("pin", false, "layout B: the launched nodes pinned to CPU 0 (taskset), this process to CPU 1 with GOMAXPROCS 1; no failover round")
		cache    = flag.Bool("cache", false, "run only the client-side caching table (DoCache GET of 256 hot keys, slotrouter vs rueidis) into cache.md")
		large    = flag.Bool("large", false, "run only the large-reply table (LRANGE 10k/100k, GET 1/16/100 MiB, with and without a deadline) into large.md")
		lrows    = flag.String("rows", "", `with -large, a comma-separated subset of its rows, e.g. "GET 1 MiB,GET 100 MiB"`)
		redial   = flag.Bool("redial", true, "with -large, every client closes its connections and dials anew at each round, so no client keeps one connection's kernel state (pacing, buffers) for the whole row")
		cpuprof  = flag.String("cpuprofile", "", "write a CPU profile of the whole run to this file (run one client to see where its time goes)")
	)
	flag.Parse()
	c := &config{cpuprofile: *cpuprof, dur: *dur, warm: *warm, rounds: *rounds, failover: *failover, ceiling: *ceil, out: *out, nodeTimeout: *nt, pubsub: *pubsub, large: *large, largeRows: *lrows, redial: *redial, cache: *cache, pin: *pinned}
	if *quick {
		c.dur, c.warm, c.rounds, *gs = 400*time.Millisecond, 100*time.Millisecond, 1, "1,16,64"
	}
	if *mget {
		*wls, *clients, *gs = "MGET100", "slotrouter,rueidis,go-redis", "1,16"
		c.failover, c.ceiling = false, false
		c.out = filepath.Join(c.out, "mget") // keep results/latest.md the full run's
	}
	if c.pin {
		c.failover = false // it launches its own, unpinned clusters
	}
	if *addrs != "" {
		c.addrs = strings.Split(*addrs, ",")
	}
	c.proxy = *viaProxy
	for _, f := range strings.Split(*gs, ",") {
		g, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || g < 1 {
			return nil, fmt.Errorf("bad -goroutines entry %q", f)
		}
		c.goroutines = append(c.goroutines, g)
		maxGoroutines = max(maxGoroutines, g)
	}
	want := func(list, name string) bool {
		if list == "" {
			return true
		}
		for _, f := range strings.Split(list, ",") {
			if strings.EqualFold(strings.TrimSpace(f), name) {
				return true
			}
		}
		return false
	}
	for _, s := range allClients {
		if want(*clients, s.name) {
			c.clients = append(c.clients, s)
		}
	}
	for _, w := range workloads {
		if want(*wls, w.name) {
			c.workloads = append(c.workloads, w)
		}
	}
	if len(c.clients) == 0 || len(c.workloads) == 0 || c.rounds < 1 {
		return nil, fmt.Errorf("nothing to run: check -clients, -workloads and -rounds")
	}
	return c, nil
}

func main() {
	cfg, err := parseFlags()
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(2)
	}
	run := run
	switch {
	case cfg.pubsub:
		run = runPubSub
	case cfg.proxy:
		run = runProxyOnly
	}
	if cfg.cpuprofile != "" {
		f, err := os.Create(cfg.cpuprofile)
		if err == nil {
			err = pprof.StartCPUProfile(f)
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, "bench:", err)
			os.Exit(2)
		}
		defer pprof.StopCPUProfile()
	}
	if err := run(cfg); err != nil {
		pprof.StopCPUProfile()
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

func logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "%s "+format+"\n", append([]any{time.Now().Format("15:04:05")}, args...)...)
}

// openTarget attaches to -addrs, or launches a cluster.
func openTarget(cfg *config) (*target, error) {
	if cfg.addrs != nil {
		return newTarget(cfg.addrs)
	}
	logf("starting a 3-master 3-replica cluster")
	return launchCluster(cfg.nodeTimeout)
}

func run(cfg *config) error {
	began := time.Now()
	t, err := openTarget(cfg)
	if err != nil {
		return err
	}
	defer t.close()
	if cfg.pin {
		if err := pin(t, 0, 1); err != nil {
			return fmt.Errorf("-pin: %w", err)
		}
		logf("nodes pinned to CPU 0, this process to CPU 1, GOMAXPROCS 1")
	}
	if cfg.large {
		return runLarge(cfg, t)
	}
	if cfg.cache {
		return runCache(cfg, t)
	}
	res := &results{cells: map[string]map[string]cell{}, setup: map[string]string{}}
	res.header = machineHeader(cfg, t)
	if cfg.pin {
		res.header = append(res.header, "layout B: every node pinned to CPU 0 (taskset -a), the client process to CPU 1, GOMAXPROCS 1")
	}
	loadStart := loadavg()

	k := newKeyspace(1024)
	drivers := map[string]driver{}
	for _, s := range cfg.clients {
		c0 := t.connsAccepted()
		ctx, cancel := context.WithTimeout(context.Background(), dialTimeout)
		d, err := s.dial(ctx, t.seed)
		cancel()
		if err != nil {
			return fmt.Errorf("%s: %w", s.name, err)
		}
		defer d.Close()
		if err := t.fill(d, k); err != nil {
			return fmt.Errorf("%s: fill: %w", s.name, err)
		}
		res.setup[s.name] = fmt.Sprintf("%d connections opened to connect and write %d keys", t.connsAccepted()-c0, len(k.keys))
		drivers[s.name] = d
		res.clients = append(res.clients, s.name)
	}
	for _, w := range cfg.workloads {
		res.workloads = append(res.workloads, w.name)
	}
	res.goroutines = cfg.goroutines

	for _, w := range cfg.workloads {
		for _, g := range cfg.goroutines {
			row := rowKey(w.name, g)
			samples := map[string][]sample{}
			for round := range cfg.rounds {
				// Rotate the order each round: no client always runs
				// first (cold) or right after the heaviest one.
				for i := range cfg.clients {
					s := cfg.clients[(i+round)%len(cfg.clients)]
					if w.opsPerCall > 1 && !s.pipeline {
						continue
					}
					x := runCell(drivers[s.name], w, k, g, cfg.warm, cfg.dur, t.connsAccepted)
					samples[s.name] = append(samples[s.name], x)
					logf("%-9s g=%-3d round %d %-13s %s %s", w.name, g, round+1, s.name, x, x.firstError)
				}
			}
			res.cells[row] = map[string]cell{}
			for name, ss := range samples {
				res.cells[row][name] = cell{sample: medianSample(ss), ok: true}
			}
		}
	}

	if cfg.ceiling {
		for _, g := range cfg.goroutines {
			cs, err := runRedisBenchmark(t.seed[0], g, 1, cfg.dur, 20000*float64(min(g, 8)))
			if err != nil {
				logf("redis-benchmark: %v", err)
				break
			}
			res.ceilings = append(res.ceilings, cs...)
			logf("redis-benchmark -c %d: %+v", g, cs)
		}
		if cs, err := runRedisBenchmark(t.seed[0], 50, 16, cfg.dur, 700000); err == nil {
			res.ceilings = append(res.ceilings, cs...)
			logf("redis-benchmark -c 50 -P 16: %+v", cs)
		} else {
			logf("redis-benchmark: %v", err)
		}
		if pr, err := runProxyBench(t.seed, cfg.rounds, cfg.dur, -1); err == nil {
			res.proxy = pr
			logf("redis-benchmark through the proxy: %+v", pr)
		} else {
			logf("redis-benchmark through the proxy: %v", err)
		}
	}
	for _, d := range drivers {
		d.Close()
	}

	if cfg.failover {
		for _, s := range cfg.clients {
			logf("failover round: %s", s.name)
			f := runFailover(s, cfg.nodeTimeout, 20*time.Second)
			logf("  resumed=%v after %v, errors %d, max gap elsewhere %v, missing %d/%d, err %v",
				f.resumed, f.resume, f.errors, f.maxGapOther, f.missing, f.acked, f.err)
			res.failover = append(res.failover, f)
		}
	}
	res.header = append(res.header, fmt.Sprintf("load average at start %s, at end %s; total run time %v",
		loadStart, loadavg(), time.Since(began).Round(time.Second)))
	return write(cfg, res)
}

func write(cfg *config, res *results) error {
	if err := os.MkdirAll(cfg.out, 0o755); err != nil {
		return err
	}
	host, _ := os.Hostname()
	date := time.Now().UTC().Format("2006-01-02")
	name := fmt.Sprintf("throughput-%s-%s.svg", sanitize(host), date)
	title := fmt.Sprintf("Throughput vs goroutines: %s, %d CPUs, %s", host, runtime.NumCPU(), date)
	svg := res.svg(title)
	md := res.markdown() + "\n![throughput](" + name + ")\n"
	for path, body := range map[string]string{
		filepath.Join(cfg.out, name):             svg,
		filepath.Join(cfg.out, "throughput.svg"): svg,
		filepath.Join(cfg.out, "latest.md"):      md,
	} {
		if err := os.WriteFile(path, []byte(body), 0o644); err != nil {
			return err
		}
	}
	fmt.Println(md)
	logf("wrote %s and %s", filepath.Join(cfg.out, "latest.md"), filepath.Join(cfg.out, name))
	return nil
}

func sanitize(s string) string {
	return strings.Map(func(r rune) rune {
		if r == '-' || r == '.' || (r >= '0' && r <= '9') || (r >= 'a' && r <= 'z') || (r >= 'A' && r <= 'Z') {
			return r
		}
		return '_'
	}, s)
}

func machineHeader(cfg *config, t *target) []string {
	host, _ := os.Hostname()
	h := []string{
		fmt.Sprintf("date %s, host %s, %s, %d CPUs, GOMAXPROCS %d, %s %s/%s",
			time.Now().UTC().Format(time.RFC3339), host, cpuModel(), runtime.NumCPU(), runtime.GOMAXPROCS(0),
			runtime.Version(), runtime.GOOS, runtime.GOARCH),
	}
	if out, err := exec.Command("redis-server", "--version").Output(); err == nil {
		h = append(h, strings.TrimSpace(string(out)))
	}
	cluster := "launched 3 masters x 1 replica on this machine (servers share its CPUs with the clients)"
	if t.cluster == nil {
		cluster = "existing cluster " + strings.Join(t.seed, ",")
	}
	h = append(h, cluster)
	var vers []string
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, d := range bi.Deps {
			switch d.Path {
			case "github.com/redis/rueidis", "github.com/redis/go-redis/v9":
				vers = append(vers, d.Path+" "+d.Version)
			}
		}
	}
	h = append(h, "peers: "+strings.Join(vers, ", ")+" (default options; rueidis with DisableCache)")
	h = append(h, fmt.Sprintf("%d rounds x %v measured (+%v warm-up) per client and row, clients rotated each round, medians; 1024 keys, 16-byte values",
		cfg.rounds, cfg.dur, cfg.warm))
	return h
}

func cpuModel() string {
	b, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		return runtime.GOARCH
	}
	for _, l := range strings.Split(string(b), "\n") {
		if k, v, ok := strings.Cut(l, ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return runtime.GOARCH
}

func loadavg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "?"
	}
	return strings.Join(f[:3], " ")
}
