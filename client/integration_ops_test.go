package client

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/slotrouter/slotrouter/internal/redistest"
	"github.com/slotrouter/slotrouter/slots"
)

// Planned operations must be invisible to callers: no error surfaced and
// every value read back is the one written. The load writes fresh keys
// with plain (not idempotent) SETs and reads each previous key back.

func checkClean(t *testing.T, name string, ops []opRecord, shards int) {
	t.Helper()
	st := summarise(ops, shards)
	reads := 0
	for _, op := range ops {
		if op.read {
			reads++
		}
	}
	total, errs := 0, 0
	for i := range st.ops {
		total += st.ops[i]
		errs += st.errs[i]
	}
	t.Logf("%s: %d calls (%d of them reads checking an earlier write), %d errors, %d wrong values, max call latency %v",
		name, total, reads, errs, st.wrong, st.maxLatency.Round(time.Millisecond))
	for _, e := range st.firstErrs {
		t.Errorf("%s: %s", name, e)
	}
	if st.wrong > 0 {
		for _, op := range ops {
			if op.wrong != "" {
				t.Errorf("%s: GET %s = %q; wrote %q", name, op.key, op.wrong, op.value)
			}
		}
	}
	if total < 100 {
		t.Errorf("%s: only %d calls made; the load did not run", name, total)
	}
}

func TestManualFailoverUnderLoad(t *testing.T) {
	cl := startCluster(t, redistest.ClusterOptions{Masters: 3, Replicas: 1})
	c := newTestClient(t, cl, Options{})
	l := startLoad(t, c, loadOptions{Rate: 600, PerShard: 4, Deadline: 5 * time.Second, Reads: true})
	time.Sleep(500 * time.Millisecond)
	old := cl.Masters()[0]
	replica := cl.ReplicasOf(old)[0]
	cl.ManualFailover(replica)
	time.Sleep(time.Second)
	ops := l.finish()
	checkClean(t, "manual failover", ops, len(l.masters))
	s := slotOwnedBy(t, cl, replica, 0)
	if addr := targetOf(t, c, s); addr != replica.Addr {
		t.Errorf("slot %d still routes to %s after the failover; want %s", s, addr, replica.Addr)
	}
	lost := readBack(t, c, ops, len(l.masters))
	for i, n := range lost {
		if n > 0 {
			t.Errorf("shard %d: %d acknowledged writes missing after a manual failover", i, n)
		}
	}
}

func TestMigrationUnderLoad(t *testing.T) {
	cl := startCluster(t, redistest.ClusterOptions{Masters: 3})
	c := newTestClient(t, cl, Options{})
	ms := cl.Masters()
	src, dst := ms[0], ms[1]
	var busy []slots.Slot
	for i := range 4 {
		busy = append(busy, slotOwnedBy(t, cl, src, 1000+i*97))
	}
	busy = append(busy, slotOwnedBy(t, cl, dst, 7000), slotOwnedBy(t, cl, ms[2], 12000))
	l := startLoad(t, c, loadOptions{Rate: 600, PerShard: 6, Deadline: 5 * time.Second, Reads: true, Slots: busy})
	time.Sleep(500 * time.Millisecond)
	movedKeys := 0
	for _, s := range busy[:3] {
		movedKeys += cl.MigrateSlot(int(s), src, dst)
	}
	time.Sleep(500 * time.Millisecond)
	ops := l.finish()
	t.Logf("migrated %d busy slots (%d keys) under load", 3, movedKeys)
	if movedKeys == 0 {
		t.Error("the migrated slots held no keys: the load did not reach them")
	}
	checkClean(t, "migration", ops, len(l.masters))
	for _, s := range busy[:3] {
		if addr := targetOf(t, c, s); addr != dst.Addr {
			t.Errorf("slot %d routes to %s after its migration; want %s", s, addr, dst.Addr)
		}
	}
	lost := readBack(t, c, ops, len(l.masters))
	for i, n := range lost {
		if n > 0 {
			t.Errorf("shard %d: %d acknowledged writes missing after migration", i, n)
		}
	}
}

func TestOldMasterReturnsAsReplica(t *testing.T) {
	cl := startCluster(t, redistest.ClusterOptions{Masters: 3, Replicas: 1})
	c := newTestClient(t, cl, Options{})
	victim := cl.Masters()[2]
	victim.Kill()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	promoted, _ := cl.WaitPromoted(ctx, victim)
	// Let the client settle on the new view (the kill itself is
	// TestFailoverKill9's business), then bring the old master back.
	s := slotOwnedBy(t, cl, promoted, 0)
	for deadline := time.Now().Add(10 * time.Second); targetOf(t, c, s) != promoted.Addr; {
		if time.Now().After(deadline) {
			t.Fatalf("client never routed slot %d to the promoted %s", s, promoted.Addr)
		}
		time.Sleep(10 * time.Millisecond)
	}
	l := startLoad(t, c, loadOptions{Rate: 600, PerShard: 4, Deadline: 5 * time.Second, Reads: true})
	time.Sleep(500 * time.Millisecond)
	victim.Restart(t)
	// It rejoins, learns it lost its slots and becomes a replica of the
	// node that replaced it.
	deadline := time.Now().Add(30 * time.Second)
	for {
		v, err := victim.Do(ctx, "ROLE")
		if role, ok := v.([]any); err == nil && ok && len(role) > 0 && fmt.Sprint(role[0]) == "slave" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("restarted %s never became a replica: %v %v", victim.Name, v, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	time.Sleep(time.Second)
	ops := l.finish()
	checkClean(t, "old master back as replica", ops, len(l.masters))
	if addr := targetOf(t, c, s); addr != promoted.Addr {
		t.Errorf("slot %d routes to %s; want the promoted %s", s, addr, promoted.Addr)
	}
	lost := readBack(t, c, ops, len(l.masters))
	for i, n := range lost {
		if n > 0 {
			t.Errorf("shard %d: %d acknowledged writes missing after the old master returned", i, n)
		}
	}
}
