package roleprobe_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/slotrouter/slotrouter/internal/redistest"
	"github.com/slotrouter/slotrouter/topology"
	"github.com/slotrouter/slotrouter/topology/roleprobe"
)

func testLogger(b *redistest.SyncBuffer) *slog.Logger {
	return slog.New(slog.NewTextHandler(b, &slog.HandlerOptions{Level: slog.LevelInfo}))
}

// waitReport polls the source's last report until ok accepts it or the deadline passes. The
// deadline is within plus the time this process was demonstrably starved (polling gaps far
// beyond the 5 ms sleep): on an overloaded machine timers fire late for the source and the
// test alike, and such a stall says nothing about the source's schedule.
func waitReport(t *testing.T, src *roleprobe.Source, within time.Duration, what string, ok func(*roleprobe.Report) bool) (*roleprobe.Report, time.Duration) {
	t.Helper()
	start := time.Now()
	last, stalled := start, time.Duration(0)
	for {
		now := time.Now()
		if gap := now.Sub(last); gap > 25*time.Millisecond {
			stalled += gap - 5*time.Millisecond
		}
		last = now
		r := src.Report()
		// Whatever the moment, a report names at most one master: the one its rule chose.
		if r != nil && r.SplitBrain != nil && r.SplitBrain.Chosen != r.Master {
			t.Fatalf("split brain report disagrees with its master %q: %v", r.Master, r.SplitBrain)
		}
		if r != nil && ok(r) {
			if stalled > 0 {
				t.Logf("%s: the test process was starved for %v while waiting", what, stalled)
			}
			return r, now.Sub(start)
		}
		if now.Sub(start) > within+stalled {
			t.Fatalf("%s: not seen within %v (+%v starved); last report (probe started %v after the wait began, took %v): master %q rule %q split %v nodes %+v",
				what, within, stalled, r.At.Sub(start), r.Took, r.Master, r.Rule, r.SplitBrain, r.Nodes)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func do(t *testing.T, s *redistest.Server, args ...any) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := s.Do(ctx, args...); err != nil {
		t.Fatal(err)
	}
}

// A replica promoted by hand (REPLICAOF NO ONE on B while A, the old master, keeps taking
// writes and the other replicas still follow A) wins the dual-master window by lineage, with
// 0, 1 and 2 replicas: B's master_replid2 is A's master_replid. A's higher offset and the
// replicas' votes for A must not matter. The choice holds across probes, and the window
// closes once A is demoted.
func TestManualPromotion(t *testing.T) {
	redistest.Require(t)
	for _, n := range []int{0, 1, 2} {
		t.Run(fmt.Sprintf("%d_replicas", n), func(t *testing.T) { testManualPromotion(t, n) })
	}
}

func testManualPromotion(t *testing.T, nReplicas int) {
	const pw = "pw"
	a := redistest.StartServer(t, redistest.ServerOptions{Password: pw})
	b := redistest.StartServer(t, redistest.ServerOptions{Password: pw, ReplicaOf: a.Addr})
	addrs := []string{a.Addr, b.Addr}
	var reps []*redistest.Server
	for range nReplicas {
		r := redistest.StartServer(t, redistest.ServerOptions{Password: pw, ReplicaOf: a.Addr})
		reps = append(reps, r)
		addrs = append(addrs, r.Addr)
	}
	do(t, a, "SET", "before", "1")
	redistest.WaitLinked(t, a.Addr, append([]*redistest.Server{b}, reps...)...)

	const interval = 500 * time.Millisecond
	const bound = interval + 100*time.Millisecond
	var logs redistest.SyncBuffer
	src, err := roleprobe.New(roleprobe.Options{Addrs: addrs, Exec: redistest.NewGoRedisIO(t, pw).Exec,
		Interval: interval, Logger: testLogger(&logs)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { src.Close() })

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	snap, err := src.Discover(ctx, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	checkSnapshot(t, snap, a.Addr, addrs[1:]...)

	// 1. B promoted by hand; A keeps taking writes, so its offset passes B's.
	do(t, b, "REPLICAOF", "NO", "ONE")
	for i := range 20 {
		do(t, a, "SET", fmt.Sprint("after", i), "1")
	}
	r, took := waitReport(t, src, bound, "dual master window seen", func(r *roleprobe.Report) bool { return r.SplitBrain != nil })
	t.Logf("dual master seen after %v: %v", took, r.SplitBrain)
	if r.Master != b.Addr || r.Rule != roleprobe.RuleLineage {
		t.Fatalf("during the window master = %q (rule %s), want %s by lineage: %v", r.Master, r.Rule, b.Addr, r.SplitBrain)
	}
	for _, c := range r.SplitBrain.Candidates {
		if c.Addr == a.Addr && c.SupersededBy != b.Addr {
			t.Fatalf("candidate %s superseded by %q, want %s", c.Addr, c.SupersededBy, b.Addr)
		}
	}
	if len(r.Replicas) != 0 {
		t.Fatalf("replicas %v still follow the retired master, want none routable", r.Replicas)
	}
	// Hold the window across several probes: the choice must not flap.
	holdUntil := time.Now().Add(2 * interval)
	for time.Now().Before(holdUntil) {
		if r := src.Report(); r.Master != b.Addr || r.SplitBrain == nil {
			t.Fatalf("choice moved while nothing changed: master %q split %v", r.Master, r.SplitBrain)
		}
		time.Sleep(10 * time.Millisecond)
	}

	// 2. The replicas and then A follow B: the window closes, B keeps the writes.
	for _, rep := range reps {
		do(t, rep, "REPLICAOF", b.Host, b.Port)
	}
	do(t, a, "REPLICAOF", b.Host, b.Port)
	r, took = waitReport(t, src, bound, "window closed", func(r *roleprobe.Report) bool { return r.SplitBrain == nil })
	if r.Master != b.Addr {
		t.Fatalf("after demotion master = %q, want %s", r.Master, b.Addr)
	}
	t.Logf("window closed after %v", took)

	redistest.WaitLinked(t, b.Addr, append([]*redistest.Server{a}, reps...)...)
	snap, err = src.Discover(ctx, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{a.Addr}
	for _, rep := range reps {
		want = append(want, rep.Addr)
	}
	checkSnapshot(t, snap, b.Addr, want...)

	out := logs.String()
	if n := strings.Count(out, "several nodes claim master"); n != 1 {
		t.Fatalf("split brain warnings = %d, want 1 (one window):\n%s", n, out)
	}
	if !strings.Contains(out, "level=WARN") || !strings.Contains(out, "split brain over") {
		t.Fatalf("window start/end not logged:\n%s", out)
	}
}

// Two masters with unrelated histories (neither was promoted out of the other) and no
// replica to vote: no node is chosen, so writes wait rather than go to the one with the higher
// offset. Once a replica follows one of them, that one is used.
func TestUnrelatedMastersHold(t *testing.T) {
	redistest.Require(t)
	a := redistest.StartServer(t, redistest.ServerOptions{})
	b := redistest.StartServer(t, redistest.ServerOptions{})
	c := redistest.StartServer(t, redistest.ServerOptions{})
	do(t, a, "SET", "k", "1") // A's offset is the higher one: it must not matter
	exec := redistest.NewGoRedisIO(t, "").Exec
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	two, err := roleprobe.New(roleprobe.Options{Addrs: []string{a.Addr, b.Addr}, Exec: exec, Interval: time.Hour,
		Logger: testLogger(&redistest.SyncBuffer{})})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { two.Close() })
	snap, err := two.Discover(ctx, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	r := two.Report()
	if r.Master != "" || r.Rule != roleprobe.RuleTie || !errors.Is(r.SplitBrain, roleprobe.ErrNoMaster) || len(snap.Shards()) != 0 {
		t.Fatalf("unrelated masters: master %q rule %s split %v shards %v; want none chosen", r.Master, r.Rule, r.SplitBrain, snap.Shards())
	}

	do(t, c, "REPLICAOF", b.Host, b.Port)
	three, err := roleprobe.New(roleprobe.Options{Addrs: []string{a.Addr, b.Addr, c.Addr}, Exec: exec, Interval: time.Hour,
		Logger: testLogger(&redistest.SyncBuffer{})})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { three.Close() })
	if _, err := three.Discover(ctx, nil, nil); err != nil {
		t.Fatal(err)
	}
	if r := three.Report(); r.Master != b.Addr || r.Rule != roleprobe.RuleFollowers {
		t.Fatalf("with a follower of b: master %q rule %s (%v), want %s by followers", r.Master, r.Rule, r.SplitBrain, b.Addr)
	}
}

func checkSnapshot(t *testing.T, s *topology.Snapshot, master string, replicas ...string) {
	t.Helper()
	shards := s.Shards()
	if len(shards) != 1 || shards[0].Master == nil || shards[0].Master.Addr != master {
		t.Fatalf("snapshot shards %+v, want one with master %s", shards, master)
	}
	if s.Covered() != 16384 {
		t.Fatalf("snapshot covers %d slots, want all", s.Covered())
	}
	var got []string
	for _, r := range shards[0].Replicas {
		got = append(got, r.Addr)
	}
	slices.Sort(got)
	slices.Sort(replicas)
	if !slices.Equal(got, replicas) {
		t.Fatalf("replicas %v, want %v", got, replicas)
	}
}

func TestTriggerProbesAtOnce(t *testing.T) {
	redistest.Require(t)
	a := redistest.StartServer(t, redistest.ServerOptions{})
	b := redistest.StartServer(t, redistest.ServerOptions{ReplicaOf: a.Addr})
	redistest.WaitLinked(t, a.Addr, b)
	src, err := roleprobe.New(roleprobe.Options{Addrs: []string{a.Addr, b.Addr}, Exec: redistest.NewGoRedisIO(t, "").Exec,
		Interval: time.Hour, Logger: testLogger(&redistest.SyncBuffer{})})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { src.Close() })
	waitReport(t, src, 5*time.Second, "first probe", func(r *roleprobe.Report) bool { return r.Master == a.Addr })

	do(t, a, "REPLICAOF", b.Host, b.Port)
	do(t, b, "REPLICAOF", "NO", "ONE")
	select {
	case <-src.Changed():
		t.Fatal("Changed before any probe could have run")
	default:
	}
	src.Trigger()
	waitReport(t, src, time.Second, "probe after Trigger", func(r *roleprobe.Report) bool { return r.Master == b.Addr })
	select {
	case <-src.Changed():
	case <-time.After(time.Second):
		t.Fatal("view changed but Changed did not fire")
	}
}

func TestInfoFallbackWhenRoleRenamed(t *testing.T) {
	redistest.Require(t)
	noRole := []string{`rename-command ROLE ""`}
	a := redistest.StartServer(t, redistest.ServerOptions{Config: noRole})
	b := redistest.StartServer(t, redistest.ServerOptions{ReplicaOf: a.Addr, Config: noRole})
	src, err := roleprobe.New(roleprobe.Options{Addrs: []string{a.Addr, b.Addr}, Exec: redistest.NewGoRedisIO(t, "").Exec,
		Interval: 100 * time.Millisecond, Logger: testLogger(&redistest.SyncBuffer{})})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { src.Close() })
	r, _ := waitReport(t, src, 20*time.Second, "replica linked via INFO", func(r *roleprobe.Report) bool {
		return r.Master == a.Addr && len(r.Replicas) == 1
	})
	for _, n := range r.Nodes {
		if n.Via != "INFO" || n.Err != nil {
			t.Fatalf("node %s probed via %q err %v, want INFO fallback", n.Addr, n.Via, n.Err)
		}
	}
}

func TestUnreachable(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	src, err := roleprobe.New(roleprobe.Options{Addrs: []string{addr}, Exec: redistest.NewGoRedisIO(t, "").Exec,
		Interval: time.Hour, Logger: testLogger(&redistest.SyncBuffer{})})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { src.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, err = src.Discover(ctx, nil, nil)
	var ue *roleprobe.UnreachableError
	if !errors.As(err, &ue) || !errors.Is(err, roleprobe.ErrNoMaster) {
		t.Fatalf("Discover = %v, want *UnreachableError matching ErrNoMaster", err)
	}
}

// The router's Source and Notifier, spelt out so this package's tests do not depend on router.
var _ interface {
	Discover(context.Context, *topology.Snapshot, func(string) bool) (*topology.Snapshot, error)
	Changed() <-chan struct{}
} = (*roleprobe.Source)(nil)

// A suspect node that hangs (SIGSTOP) costs SuspectTimeout, not Timeout.
func TestSuspectDoesNotHoldDiscover(t *testing.T) {
	redistest.Require(t)
	a := redistest.StartServer(t, redistest.ServerOptions{})
	b := redistest.StartServer(t, redistest.ServerOptions{ReplicaOf: a.Addr})
	redistest.WaitLinked(t, a.Addr, b)
	src, err := roleprobe.New(roleprobe.Options{Addrs: []string{a.Addr, b.Addr}, Exec: redistest.NewGoRedisIO(t, "").Exec,
		Interval: time.Hour, Timeout: 3 * time.Second, SuspectTimeout: 100 * time.Millisecond, Logger: testLogger(&redistest.SyncBuffer{})})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { src.Close() })
	b.Stop()
	defer b.Cont()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	start := time.Now()
	snap, err := src.Discover(ctx, nil, func(addr string) bool { return addr == b.Addr })
	took := time.Since(start)
	if err != nil {
		t.Fatal(err)
	}
	if took > time.Second {
		t.Fatalf("Discover took %v with the hung node suspect, want about SuspectTimeout", took)
	}
	checkSnapshot(t, snap, a.Addr)
}

func TestOptionsValidation(t *testing.T) {
	exec := redistest.NewGoRedisIO(t, "").Exec
	for _, o := range []roleprobe.Options{{}, {Addrs: []string{"nohost"}, Exec: exec}, {Addrs: []string{"127.0.0.1:1"}}} {
		if _, err := roleprobe.New(o); !errors.Is(err, roleprobe.ErrInvalidOptions) {
			t.Errorf("New(%+v) = %v, want ErrInvalidOptions", o, err)
		}
	}
}
