package client

import (
	"math"
	"os"
	"path/filepath"
	"runtime"
	"runtime/metrics"
	"strconv"
	"strings"
	"testing"
	"time"
)

// How late a call may return after its ctx deadline.
//
// overrunCap is the raw bound: nothing is subtracted from it, ever. The
// client leaves at the deadline itself (the ctx's end interrupts the read;
// a dial, a learning or a full node is waited for in a select on ctx), so
// what remains is the Go runtime and the OS handing the
// returning goroutine a CPU. On a 2-core box under -race, with other
// processes competing, that has measured up to ~0.3 s; 500 ms bounds it
// with a margin and still catches any wait of the client's own design (a
// health timeout, a retry backoff past the deadline, a learning under
// another caller's ctx take seconds).
//
// overrunTight is the bound after excusing the delays measured outside the
// client's goroutines over the test: the runtime's /sched/latencies (how
// long runnable goroutines waited for a thread, as the scheduler saw it),
// the longest stop-the-world GC pause, and the most any thread of this
// process waited in the kernel's run queue (/proc/self/task/*/schedstat,
// when a loaded machine gives the CPUs to other processes); at most
// overrunCap of them may be excused.
const (
	overrunCap   = 500 * time.Millisecond
	overrunTight = 10 * time.Millisecond
)

// schedClock reads the runtime's scheduling-latency histogram, so a test can
// tell how long runnable goroutines waited for a CPU since it started.
type schedClock struct {
	base    []metrics.Sample
	threads map[string]int64
}

func readDelays() []metrics.Sample {
	s := []metrics.Sample{{Name: "/sched/latencies:seconds"}, {Name: "/gc/pauses:seconds"}}
	metrics.Read(s)
	return s
}

// startSchedClock starts measuring. It collects garbage first, so an
// earlier test's heap is not marked during the measurement.
func startSchedClock() *schedClock {
	runtime.GC()
	return &schedClock{base: readDelays(), threads: threadWaits()}
}

// threadWaits is, per thread of this process, the time it has spent
// runnable but waiting for a CPU (Linux; empty elsewhere).
func threadWaits() map[string]int64 {
	m := map[string]int64{}
	dirs, _ := filepath.Glob("/proc/self/task/*/schedstat")
	for _, f := range dirs {
		b, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		fields := strings.Fields(string(b))
		if len(fields) < 2 {
			continue
		}
		if ns, err := strconv.ParseInt(fields[1], 10, 64); err == nil {
			m[f] = ns
		}
	}
	return m
}

// worst is the largest scheduling delay plus the longest GC pause recorded
// since the clock started (upper bounds of their histogram buckets).
func (s *schedClock) worst() time.Duration {
	var d time.Duration
	for k, now := range readDelays() {
		d += worstNew(s.base[k].Value.Float64Histogram(), now.Value.Float64Histogram())
	}
	var osWait int64
	for f, ns := range threadWaits() {
		osWait = max(osWait, ns-s.threads[f])
	}
	return d + time.Duration(osWait)
}

func worstNew(base, now *metrics.Float64Histogram) time.Duration {
	for i := len(now.Counts) - 1; i >= 0; i-- {
		if now.Counts[i] > base.Counts[i] {
			hi := now.Buckets[i+1]
			if math.IsInf(hi, 1) {
				hi = now.Buckets[i]
			}
			return time.Duration(hi * float64(time.Second))
		}
	}
	return 0
}

// checkOverrun holds a call's lateness past its deadline to both bounds.
func checkOverrun(t testing.TB, what string, over time.Duration, sc *schedClock) {
	t.Helper()
	if over > overrunCap {
		t.Errorf("%s returned %v after its deadline: over the raw cap %v", what, over, overrunCap)
		return
	}
	excused := min(sc.worst(), overrunCap)
	if over-excused > overrunTight {
		t.Errorf("%s returned %v after its deadline; the worst scheduling delay was %v, leaving %v (want <= %v)",
			what, over, excused, over-excused, overrunTight)
	}
}
