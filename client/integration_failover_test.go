package client

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/slotrouter/slotrouter/internal/redistest"
	"github.com/slotrouter/slotrouter/topology"
)

// failoverFigures is what a kill/hang test measured, for the log and the
// assertions.
type failoverFigures struct {
	victimShard     int
	faultToPromoted time.Duration
	promotedToWrite time.Duration // first successful write on the victim's shard
	stats           loadStats
	lost            []int
	faultAt         time.Time
	lag             time.Duration
	lagAt           time.Time
	// unexplained is the worst overrun of a deadline minus the time the
	// whole process was stalled (lag monitor) between that deadline and
	// the call's return: the part the client itself is responsible for.
	unexplained time.Duration
	viewAt      time.Time // the client installed the promotion
	promotedAt  time.Time
	// recoveryStall is how long the process was stalled between the
	// promotion and the first successful write on the failed shard.
	recoveryStall time.Duration
	// excused counts, per shard, failed calls the cluster made impossible:
	// on a surviving shard, its master still said cluster_state:fail
	// 150 ms before the call's deadline; on the failed shard, the replica
	// was promoted later than that.
	excused   []int
	downFor   []time.Duration // longest cluster_state:fail run per surviving master
	excusals  []string
	worstLate string // the call with the largest unexplained overrun
	// lateSuccess is the largest unexplained overrun of a call that
	// returned its reply (not an error) after its deadline.
	lateSuccess time.Duration
}

func (f failoverFigures) log(t *testing.T, name string) {
	t.Logf("%s: fault->promotion %v, promotion->first write on failed shard %v (process stalled %v of it), max call latency %v, max overrun of a deadline %v",
		name, f.faultToPromoted.Round(time.Millisecond), f.promotedToWrite.Round(time.Millisecond), f.recoveryStall.Round(time.Millisecond),
		f.stats.maxLatency.Round(time.Millisecond), f.stats.maxOverrun)
	for i := range f.stats.ops {
		mark := ""
		if i == f.victimShard {
			mark = " (failed master)"
		}
		t.Logf("%s: shard %d%s: %d calls, %d errors, %d acknowledged writes lost", name, i, mark, f.stats.ops[i], f.stats.errs[i], f.lost[i])
	}
	for _, e := range f.stats.firstErrs {
		t.Logf("%s: error: %s", name, e)
	}
	for i := range f.excused {
		if i == f.victimShard {
			t.Logf("%s: shard %d (failed master): %d failed calls excused (no promotion until <150ms before their deadline)", name, i, f.excused[i])
			continue
		}
		t.Logf("%s: shard %d: its master said cluster_state:fail for %v; %d failed calls excused (still down <150ms before their deadline)",
			name, i, f.downFor[i].Round(time.Millisecond), f.excused[i])
	}
	for _, e := range f.excusals {
		t.Logf("%s: excused: %s", name, e)
	}
	for _, e := range f.stats.overruns {
		t.Logf("%s: late: %s", name, e)
	}
	if !f.viewAt.IsZero() {
		t.Logf("%s: promotion->client view %v", name, f.viewAt.Sub(f.promotedAt).Round(time.Millisecond))
	}
	t.Logf("%s: max overrun of a failed call not explained by process stalls: %v", name, f.unexplained)
	if f.worstLate != "" {
		t.Logf("%s: worst: %s", name, f.worstLate)
	}
	if f.lateSuccess > 0 {
		t.Logf("%s: a successful reply was returned %v after its call's deadline (beyond process stalls)", name, f.lateSuccess)
	}
	t.Logf("%s: fault at %s; worst scheduling lag of a 1ms sleep in this process: %v at %s", name,
		f.faultAt.Format("15:04:05.000"), f.lag.Round(time.Microsecond), f.lagAt.Format("15:04:05.000"))
}

// runFailover starts a 3x1 cluster and a writer at rate ops/s, applies
// fault to one master, waits for the promotion and measures.
func runFailover(t *testing.T, rate, perShard int, deadline time.Duration, fault func(victim *redistest.Server)) failoverFigures {
	cl := startCluster(t, redistest.ClusterOptions{Masters: 3, Replicas: 1})
	var viewMu sync.Mutex
	var viewAt time.Time
	c := newTestClient(t, cl, Options{OnTopologyChange: func(ch []topology.Change) {
		for _, x := range ch {
			if x.Kind == topology.MasterChanged {
				viewMu.Lock()
				if viewAt.IsZero() {
					viewAt = time.Now()
				}
				viewMu.Unlock()
			}
		}
	}})
	l := startLoad(t, c, loadOptions{Rate: rate, PerShard: perShard, Deadline: deadline, Idempotent: true})
	time.Sleep(time.Second)
	lag := startStallProbe(t)

	victim := cl.Masters()[1]
	f := failoverFigures{victimShard: -1}
	for i, m := range l.masters {
		if m == victim.Addr {
			f.victimShard = i
		}
	}
	if f.victimShard < 0 {
		t.Fatalf("victim %s is not among the client's masters %v", victim.Addr, l.masters)
	}
	var survivors []*redistest.Server
	for i, m := range l.masters {
		if i != f.victimShard {
			survivors = append(survivors, serverByAddr(t, cl, m))
		}
	}
	state := startStateMonitor(survivors)
	faultAt := time.Now()
	f.faultAt = faultAt
	fault(victim)
	wctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	_, promotedAt := cl.WaitPromoted(wctx, victim)
	f.faultToPromoted = promotedAt.Sub(faultAt)
	// Keep writing through the CLUSTERDOWN tail and past every call that
	// was in flight at the promotion.
	time.Sleep(deadline + time.Second)
	ops := l.finish()
	state.finish()
	f.lag, f.lagAt = lag.finish()
	f.excused = make([]int, len(l.masters))
	f.downFor = make([]time.Duration, len(l.masters))
	for i, m := range l.masters {
		if i != f.victimShard {
			f.downFor[i] = state.downFor(m)
		}
	}
	for _, op := range ops {
		if op.err == nil {
			continue
		}
		late := op.deadline.Add(-150 * time.Millisecond)
		if (op.shard == f.victimShard && promotedAt.After(late)) || (op.shard != f.victimShard && state.downAt(l.masters[op.shard], late)) {
			f.excused[op.shard]++
			if len(f.excusals) < 5 {
				f.excusals = append(f.excusals, fmt.Sprintf("shard %d call %s-%s: %v",
					op.shard, op.start.Format("15:04:05.000"), op.deadline.Format("15:04:05.000"), op.err))
			}
		}
	}
	f.promotedAt = promotedAt
	viewMu.Lock()
	f.viewAt = viewAt
	viewMu.Unlock()
	for _, op := range ops {
		if over := op.end.Sub(op.deadline); over > 0 {
			// What may be excused is capped: a stall longer than the raw
			// cap cannot hide anything, since the raw bound fails first.
			stalled := min(lag.total(op.deadline, op.end, 0), overrunCap)
			if op.err == nil {
				// A call that got its reply after its deadline. This bound is
				// about giving up on time; how late a completed command is
				// handed back depends on the transport's read path and the
				// scheduler, so it is logged (and reported to the transport
				// owner) rather than asserted here.
				if over-stalled > f.lateSuccess {
					f.lateSuccess = over - stalled
				}
				continue
			}
			if over-stalled > f.unexplained {
				f.unexplained = over - stalled
				f.worstLate = fmt.Sprintf("shard %d call %s-%s returned %v late (%v of it a process stall): %v",
					op.shard, op.start.Format("15:04:05.000"), op.deadline.Format("15:04:05.000"), over, stalled, op.err)
			}
		}
	}

	first := time.Time{}
	for _, op := range ops {
		if op.shard == f.victimShard && op.err == nil && op.start.After(faultAt) && (first.IsZero() || op.end.Before(first)) {
			first = op.end
		}
	}
	if first.IsZero() {
		t.Fatalf("no successful write on the failed shard after the fault")
	}
	f.promotedToWrite = first.Sub(promotedAt)
	f.recoveryStall = lag.total(promotedAt, first, 0)
	f.stats = summarise(ops, len(l.masters))
	f.lost = readBack(t, c, ops, len(l.masters))
	return f
}

func checkFailover(t *testing.T, f failoverFigures, allowVictimErrors, allowOtherErrors bool) {
	t.Helper()
	// As for deadlines, time the whole process was not scheduled (measured
	// and logged) is not the client's; everything else counts.
	if f.promotedToWrite-f.recoveryStall > 150*time.Millisecond {
		t.Errorf("first write on the failed shard %v after the promotion (%v of it a process stall); want <= 150ms",
			f.promotedToWrite, f.recoveryStall)
	}
	for i, n := range f.stats.errs {
		// Calls the cluster itself refused to the end (measured, logged
		// and counted above) are not the client's failures.
		if n -= f.excused[i]; n > 0 && ((i == f.victimShard && !allowVictimErrors) || (i != f.victimShard && !allowOtherErrors)) {
			t.Errorf("shard %d: %d calls failed (besides %d the cluster refused to the end); want none", i, n, f.excused[i])
		}
		if i != f.victimShard && f.lost[i] > 0 {
			t.Errorf("shard %d lost %d acknowledged writes but its master never failed", i, f.lost[i])
		}
	}
	if f.stats.wrong > 0 {
		t.Errorf("%d reads returned a wrong value", f.stats.wrong)
	}
}

// TestFailoverKill9 kills a master with SIGKILL under a steady idempotent
// write load and measures how fast the client follows the promotion.
func TestFailoverKill9(t *testing.T) {
	t.Run("deadline2s", func(t *testing.T) {
		f := runFailover(t, 1000, 8, 2*time.Second, func(v *redistest.Server) { v.Kill() })
		f.log(t, "kill9/2s")
		// With 2 s per call, writes to the dead master's slots fail until
		// the promotion (~3-5 s); every other shard must ride it out.
		checkFailover(t, f, true, false)
	})
	t.Run("deadline5s", func(t *testing.T) {
		f := runFailover(t, 1000, 8, 5*time.Second, func(v *redistest.Server) { v.Kill() })
		f.log(t, "kill9/5s")
		checkFailover(t, f, false, false)
	})
}

// TestFailoverHungMaster suspends a master with SIGSTOP: its connections
// stay open and silent, the worst case for a client. Every call must still
// end by its deadline (+10 ms), and writes must resume right after the
// promotion.
func TestFailoverHungMaster(t *testing.T) {
	var victim *redistest.Server
	// 500 ops/s from 4 writers per shard: what is measured here is each
	// call's own deadline, and on a 2-core machine under -race a heavier
	// writer delays the wake-up of calls sharing the run queue by
	// milliseconds.
	f := runFailover(t, 500, 4, 500*time.Millisecond, func(v *redistest.Server) {
		victim = v
		v.Stop()
	})
	victim.Cont()
	f.log(t, "sigstop/500ms")
	// 500 ms calls cannot ride out the ~1 s of CLUSTERDOWN every shard
	// answers around the promotion, so errors are allowed everywhere here;
	// what this test holds is the deadline and the recovery time.
	checkFailover(t, f, true, true)
	// Two bounds. Raw, nothing subtracted: no call returns more than
	// overrunCap after its deadline. Tight: 10 ms once the time the whole
	// process was not scheduled (measured by a sleeper goroutine outside
	// the client, logged above, at most overrunCap of it) is excused.
	if f.stats.maxOverrun > overrunCap {
		t.Errorf("a call returned %v after its deadline: over the raw cap %v", f.stats.maxOverrun, overrunCap)
	}
	if f.unexplained > overrunTight {
		t.Errorf("a call returned %v after its deadline beyond any process stall (raw max %v); want <= %v", f.unexplained, f.stats.maxOverrun, overrunTight)
	}
}
