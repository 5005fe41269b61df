package client

import (
	"context"
	"errors"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/slotrouter/slotrouter/internal/redistest"
)

// A replica promoted by hand (REPLICAOF NO ONE on it, then REPLICAOF it on
// the others) takes the writes within one probe interval + 100 ms; the
// dual-master window in between is reported and only one of the two
// masters is written to; every acknowledged write ran on a master (its
// run_id says which) and writes never go back to the old master once the
// new one took one.
func TestRoleProbeManualPromotion(t *testing.T) {
	redistest.Require(t)
	const pw = "data-pw"
	const interval = 500 * time.Millisecond
	a := redistest.StartServer(t, redistest.ServerOptions{Password: pw})
	b := redistest.StartServer(t, redistest.ServerOptions{Password: pw, ReplicaOf: a.Addr})
	r := redistest.StartServer(t, redistest.ServerOptions{Password: pw, ReplicaOf: a.Addr})
	idA, idB, idR := runID(t, a), runID(t, b), runID(t, r)

	var mu sync.Mutex
	var splits []*SplitBrainError
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := New(ctx, Options{
		Addrs:    []string{a.Addr, b.Addr, r.Addr},
		Password: pw,
		RoleProbe: &RoleProbeOptions{Interval: interval, OnSplitBrain: func(e *SplitBrainError) {
			mu.Lock()
			splits = append(splits, e)
			mu.Unlock()
		}},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if m := c.Topology().Shards()[0].Master.Addr; m != a.Addr {
		t.Fatalf("first view master %s, want %s", m, a.Addr)
	}

	w := startWriter(t, c, 2)
	w.waitAck(t, idA, time.Time{}, 10*time.Second)

	tPromote := time.Now()
	mustDoServer(t, b, "REPLICAOF", "NO", "ONE")
	waitFor(t, 5*time.Second, "the dual-master report", func() error {
		mu.Lock()
		defer mu.Unlock()
		if len(splits) == 0 {
			return notYet("no OnSplitBrain call")
		}
		return nil
	})
	mu.Lock()
	split := splits[0]
	mu.Unlock()
	var cands []string
	for _, cd := range split.Candidates {
		cands = append(cands, cd.Addr)
	}
	slices.Sort(cands)
	want := []string{a.Addr, b.Addr}
	slices.Sort(want)
	if !slices.Equal(cands, want) || split.Chosen != b.Addr {
		t.Errorf("split brain report %v, want candidates %v and %s chosen (promoted out of %s's history)", split, want, b.Addr, a.Addr)
	}
	reported := time.Since(tPromote)

	// The replica follows the new master first while the old one still
	// claims master: only the probe can tell, no reply says so.
	tMove := time.Now()
	mustDoServer(t, r, "REPLICAOF", b.Host, strconv.Itoa(b.Port))
	first := w.waitAck(t, idB, time.Time{}, 10*time.Second)
	mustDoServer(t, a, "REPLICAOF", b.Host, strconv.Itoa(b.Port))
	tDemoted := time.Now()
	w.waitAck(t, idB, first.Add(300*time.Millisecond), 10*time.Second)
	w.halt()
	acks := w.snapshot()

	moved := first.Sub(tMove)
	t.Logf("role probe: dual master reported %v after REPLICAOF NO ONE; first write on the new master %v after its first follower moved (bound %v)",
		reported.Round(time.Millisecond), moved.Round(time.Millisecond), interval+100*time.Millisecond)
	if moved > interval+100*time.Millisecond {
		t.Errorf("writes moved %v after the promotion, want <= %v", moved, interval+100*time.Millisecond)
	}

	var firstB time.Time
	lostInWindow := 0
	for _, ak := range acks {
		if ak.err == nil && ak.runID == idB && (firstB.IsZero() || ak.end.Before(firstB)) {
			firstB = ak.end
		}
	}
	for _, ak := range acks {
		if ak.err != nil {
			continue
		}
		switch ak.runID {
		case idA:
			if ak.start.After(firstB) {
				t.Errorf("write %s sent at %s landed on the old master after the new one took writes (%s)",
					ak.key, ak.start.Format("15:04:05.000"), firstB.Format("15:04:05.000"))
			}
			if ak.start.After(tDemoted) {
				t.Errorf("write %s sent after the old master was demoted landed on it", ak.key)
			}
			if ak.start.After(tPromote) {
				lostInWindow++
			}
		case idB:
			if ak.start.Before(tPromote) {
				t.Errorf("write %s sent before the promotion landed on the replica", ak.key)
			}
		case idR:
			t.Errorf("write %s landed on %s, which was never master", ak.key, r.Name)
		default:
			t.Errorf("write %s answered with unknown run_id %q", ak.key, ak.runID)
		}
	}
	stored := checkStoredOn(t, b, idB, acks, time.Time{})
	ok, failed := stats(acks)
	if failed > 0 {
		t.Logf("role probe: last failures: %v", w.lastErrors(3))
	}
	t.Logf("role probe: %d writes acknowledged, %d failed; %d stored on the new master as acknowledged; %d taken by the old master during the dual-master window (discarded by its resync, as for any manual promotion)",
		ok, failed, stored, lostInWindow)

	waitFor(t, 5*time.Second, "a settled report", func() error {
		rep := c.RoleReport()
		if rep == nil || rep.Master != b.Addr || rep.SplitBrain != nil {
			return notYet("report %+v", rep)
		}
		return nil
	})
}

// Plain servers given as Addrs, without RoleProbe: CLUSTER NODES is
// refused, so the client role-probes them. PreferReplica reads go to the
// replica (READONLY, which such servers refuse, is not sent).
func TestRoleProbeAutoDetect(t *testing.T) {
	redistest.Require(t)
	m := redistest.StartServer(t, redistest.ServerOptions{})
	rep := redistest.StartServer(t, redistest.ServerOptions{ReplicaOf: m.Addr})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := New(ctx, Options{Addrs: []string{rep.Addr, m.Addr}, ReadPolicy: PreferReplica})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Do(ctx, "SET", "auto", "1").Err(); err != nil {
		t.Fatal(err)
	}
	if c.RoleReport() == nil || c.RoleReport().Master != m.Addr {
		t.Fatalf("role report %+v, want master %s", c.RoleReport(), m.Addr)
	}
	// The replica may miss the first view: its first connection was
	// refused READONLY while the client still took it for a cluster node.
	waitFor(t, 5*time.Second, "one shard with the master and its replica", func() error {
		sh := c.Topology().Shards()
		if len(sh) != 1 || sh[0].Master.Addr != m.Addr || len(sh[0].Replicas) != 1 || sh[0].Ranges[0].Len() != 16384 {
			return notYet("topology %v", c.Topology())
		}
		return nil
	})
	waitFor(t, 5*time.Second, "the read on the replica", func() error {
		v, err := c.Do(ctx, "GET", "auto").Text()
		if err != nil || v != "1" {
			return notYet("GET = %q, %v", v, err)
		}
		if n := infoOf(t, rep, "commandstats")["cmdstat_get"]; n == "" {
			return notYet("no GET ran on the replica")
		}
		return nil
	})
}

// Bad options are refused with typed errors, before anything is dialled.
func TestDeployOptionErrors(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, err := New(ctx, Options{Sentinel: &SentinelOptions{MasterName: "m"}})
	if !errors.Is(err, ErrSentinelOptions) {
		t.Errorf("sentinel without Addrs: %v", err)
	}
	_, err = New(ctx, Options{Sentinel: &SentinelOptions{Addrs: []string{"127.0.0.1:1"}}})
	if !errors.Is(err, ErrSentinelOptions) {
		t.Errorf("sentinel without MasterName: %v", err)
	}
	_, err = New(ctx, Options{Addrs: []string{"no-port"}, RoleProbe: &RoleProbeOptions{}})
	if !errors.Is(err, ErrRoleProbeOptions) {
		t.Errorf("role probe with a bad address: %v", err)
	}
}
