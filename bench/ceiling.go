package main

import (
	"context"
	"encoding/csv"
	"fmt"
	"net"
	"os/exec"
	"strconv"
	"strings"
	"time"
)

// ceiling is a redis-benchmark --cluster result: what the servers can do
// with a C client and no routing library in the way.
type ceiling struct {
	test     string // GET or SET
	clients  int
	pipeline int
	ops      float64
	p50, p99 time.Duration
}

// runRedisBenchmark runs redis-benchmark --cluster against seed for GET and
// SET with the given number of connections and pipeline depth.
func runRedisBenchmark(seed string, clients, pipeline int, dur time.Duration, guess float64) ([]ceiling, error) {
	return redisBenchmark(seed, true, clients, pipeline, dur, guess, -1)
}

// redisBenchmark runs redis-benchmark against addr, a cluster seed with
// --cluster, or one server (the proxy) without; on CPU cpu (taskset) unless
// cpu < 0.
func redisBenchmark(addr string, cluster bool, clients, pipeline int, dur time.Duration, guess float64, cpu int) ([]ceiling, error) {
	bin, err := exec.LookPath("redis-benchmark")
	if err != nil {
		return nil, err
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, err
	}
	// redis-benchmark runs a fixed request count; size it to last about
	// dur at the expected rate.
	n := int(guess * dur.Seconds())
	n = max(n, 2000)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	args := []string{"-h", host, "-p", port, "-c", strconv.Itoa(clients), "-n", strconv.Itoa(n),
		"-d", "16", "-r", "1024", "-t", "get,set", "-P", strconv.Itoa(pipeline), "--csv"}
	if cluster {
		args = append([]string{"--cluster"}, args...)
	}
	if cpu >= 0 {
		args = append([]string{"-c", strconv.Itoa(cpu), bin}, args...)
		if bin, err = exec.LookPath("taskset"); err != nil {
			return nil, err
		}
	}
	out, err := exec.CommandContext(ctx, bin, args...).Output()
	if err != nil {
		return nil, fmt.Errorf("redis-benchmark %s: %w", strings.Join(args, " "), err)
	}
	return parseBenchCSV(string(out), clients, pipeline)
}

// parseBenchCSV reads redis-benchmark 7 --csv output:
// "test","rps","avg_latency_ms","min_latency_ms","p50_latency_ms","p95_latency_ms","p99_latency_ms","max_latency_ms"
func parseBenchCSV(out string, clients, pipeline int) ([]ceiling, error) {
	// --cluster prints node discovery lines before the CSV.
	var lines []string
	for _, l := range strings.Split(out, "\n") {
		if strings.HasPrefix(l, "\"") {
			lines = append(lines, l)
		}
	}
	recs, err := csv.NewReader(strings.NewReader(strings.Join(lines, "\n"))).ReadAll()
	if err != nil {
		return nil, err
	}
	ms := func(s string) time.Duration {
		f, _ := strconv.ParseFloat(s, 64)
		return time.Duration(f * float64(time.Millisecond))
	}
	var res []ceiling
	for _, r := range recs {
		if len(r) < 7 || r[0] == "test" {
			continue
		}
		rps, err := strconv.ParseFloat(r[1], 64)
		if err != nil {
			continue
		}
		res = append(res, ceiling{test: r[0], clients: clients, pipeline: pipeline, ops: rps, p50: ms(r[4]), p99: ms(r[6])})
	}
	if len(res) == 0 {
		return nil, fmt.Errorf("redis-benchmark: no results in %q", out)
	}
	return res, nil
}
