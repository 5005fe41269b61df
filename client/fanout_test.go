package client

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/slotrouter/slotrouter/internal/redistest"
	"github.com/slotrouter/slotrouter/slots"
)

// One real 3-master x 1-replica cluster for every fan-out and multi-key
// scenario: each subtest states one user promise.
func TestFanoutClusterWide(t *testing.T) {
	cl := startCluster(t, redistest.ClusterOptions{Masters: 3, Replicas: 1})
	c := newTestClient(t, cl, Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	const n = 300
	want := make([]string, n)
	for i := range want {
		want[i] = fmt.Sprintf("fan:%d", i)
		if err := c.Do(ctx, "SET", want[i], i).Err(); err != nil {
			t.Fatal(err)
		}
	}
	slices.Sort(want)

	t.Run("DBSIZE sums every master", func(t *testing.T) {
		got, err := c.Do(ctx, "DBSIZE").Int64()
		if err != nil || got != n {
			t.Fatalf("DBSIZE = %d, %v; want %d", got, err, n)
		}
	})
	t.Run("KEYS concatenates every master", func(t *testing.T) {
		got, err := c.Do(ctx, "KEYS", "fan:*").Strings()
		if err != nil {
			t.Fatal(err)
		}
		slices.Sort(got)
		if !slices.Equal(got, want) {
			t.Fatalf("KEYS returned %d keys, want %d", len(got), n)
		}
		k, err := c.Do(ctx, "RANDOMKEY").Text()
		if _, found := slices.BinarySearch(want, k); err != nil || !found {
			t.Fatalf("RANDOMKEY = %q, %v", k, err)
		}
	})
	t.Run("SCRIPT LOAD reaches every node, SCRIPT EXISTS ANDs them", func(t *testing.T) {
		sha, err := c.Do(ctx, "SCRIPT", "LOAD", "return 'fanout'").Text()
		if err != nil {
			t.Fatal(err)
		}
		flags, err := c.Do(ctx, "SCRIPT", "EXISTS", sha, "0000000000000000000000000000000000000000").Slice()
		if err != nil || !slices.Equal(flags, []any{int64(1), int64(0)}) {
			t.Fatalf("SCRIPT EXISTS = %v, %v", flags, err)
		}
		for _, s := range cl.Servers() { // masters and replicas: all_nodes
			v, err := s.Do(ctx, "SCRIPT", "EXISTS", sha)
			if err != nil || fmt.Sprint(v) != "[1]" {
				t.Errorf("%s: SCRIPT EXISTS = %v, %v", s.Name, v, err)
			}
		}
		// A master missing the script turns the merged flag to 0.
		if _, err := cl.Masters()[0].Do(ctx, "SCRIPT", "FLUSH"); err != nil {
			t.Fatal(err)
		}
		if got, err := c.Do(ctx, "SCRIPT", "EXISTS", sha).Slice(); err != nil || !slices.Equal(got, []any{int64(0)}) {
			t.Fatalf("SCRIPT EXISTS after one master flushed = %v, %v", got, err)
		}
	})
	t.Run("FUNCTION LOAD and CONFIG SET reach every node", func(t *testing.T) {
		lib := "#!lua name=fanlib\nredis.register_function('fanf', function() return 7 end)"
		if name, err := c.Do(ctx, "FUNCTION", "LOAD", "REPLACE", lib).Text(); err != nil || name != "fanlib" {
			t.Fatalf("FUNCTION LOAD = %q, %v", name, err)
		}
		if err := c.Do(ctx, "CONFIG", "SET", "slowlog-max-len", "77").Err(); err != nil {
			t.Fatal(err)
		}
		for _, m := range cl.Masters() {
			if v, err := m.Do(ctx, "FCALL", "fanf", 0); err != nil || v != int64(7) {
				t.Errorf("%s: FCALL = %v, %v", m.Name, v, err)
			}
		}
		for _, s := range cl.Servers() {
			if v, err := s.Do(ctx, "CONFIG", "GET", "slowlog-max-len"); err != nil || fmt.Sprint(v) != "[slowlog-max-len 77]" {
				t.Errorf("%s: CONFIG GET = %v, %v", s.Name, v, err)
			}
		}
	})
	t.Run("per-node replies", func(t *testing.T) {
		nodes, err := c.Do(ctx, "INFO", "replication").Nodes()
		if err != nil || len(nodes) != 3 {
			t.Fatalf("INFO: %d nodes, %v", len(nodes), err)
		}
		for _, nr := range nodes {
			txt, _ := nr.Result.Text()
			if serverByAddr(t, cl, nr.Addr) == nil || !strings.Contains(txt, "role:master\r\n") {
				t.Errorf("INFO from %s is not a master's: %.60q", nr.Addr, txt)
			}
		}
		all, err := c.DoNodes(ctx, "CONFIG", "GET", "slowlog-max-len").Nodes()
		if err != nil || len(all) != 6 {
			t.Fatalf("DoNodes CONFIG GET: %d nodes, %v", len(all), err)
		}
		seen := map[string]bool{}
		masters := 0
		for _, nr := range all {
			seen[nr.Addr] = true
			if nr.Master {
				masters++
			}
			if v, _ := nr.Result.Strings(); !slices.Equal(v, []string{"slowlog-max-len", "77"}) {
				t.Errorf("%s: %v", nr.Addr, nr.Result)
			}
		}
		for _, s := range cl.Servers() {
			if !seen[s.Addr] {
				t.Errorf("DoNodes did not reach %s", s.Addr)
			}
		}
		if masters != 3 {
			t.Errorf("DoNodes marked %d nodes master, want 3", masters)
		}
		cross := c.DoOn(ctx, all[0].Addr, "MGET", keyIn(1, "a"), keyIn(2, "a")).Err()
		if !errors.Is(cross, ErrCrossSlot) {
			t.Errorf("DoOn of a cross-slot MGET: %v, want CROSSSLOT (DoOn never splits)", cross)
		}
		if masters, err := c.DoMasters(ctx, "CLIENT", "LIST").Nodes(); err != nil || len(masters) != 3 {
			t.Fatalf("DoMasters CLIENT LIST: %d nodes, %v", len(masters), err)
		}
		for _, cmd := range []struct {
			args  []any
			nodes int
		}{
			{[]any{"SLOWLOG", "GET"}, 6}, {[]any{"LATENCY", "LATEST"}, 6}, {[]any{"MEMORY", "STATS"}, 3},
		} {
			if rs, err := c.Do(ctx, cmd.args...).Nodes(); err != nil || len(rs) != cmd.nodes {
				t.Errorf("%v: %d nodes, %v; want %d", cmd.args, len(rs), err, cmd.nodes)
			}
		}
		var mu sync.Mutex
		visited := map[string]bool{}
		err = c.ForEachNode(ctx, func(ctx context.Context, l Leg) error {
			role, err := l.Do(ctx, "ROLE").Slice()
			if err == nil && (role[0] == "master") != l.Master() {
				err = fmt.Errorf("%s says %v", l.Addr(), role[0])
			}
			mu.Lock()
			visited[l.Addr()] = true
			mu.Unlock()
			return err
		})
		if err != nil || len(visited) != 6 {
			t.Fatalf("ForEachNode visited %d nodes: %v", len(visited), err)
		}
	})
	t.Run("MGET over 100 slots keeps key order and nils", func(t *testing.T) {
		args := []any{"MGET"}
		for i := range 100 {
			k := keyIn(slots.Slot(i*163), fmt.Sprintf("mget%d", i))
			args = append(args, k)
			if i%3 != 0 {
				if err := c.Do(ctx, "SET", k, i).Err(); err != nil {
					t.Fatal(err)
				}
			}
		}
		got, err := c.Do(ctx, args...).Results()
		if err != nil || len(got) != 100 {
			t.Fatalf("MGET: %d replies, %v", len(got), err)
		}
		for i, r := range got {
			if i%3 == 0 {
				if !r.IsNil() {
					t.Errorf("key %d: %v, want nil", i, r)
				}
			} else if v, _ := r.Int64(); v != int64(i) {
				t.Errorf("key %d: %v", i, r)
			}
		}
	})
	t.Run("a split keeps each slot's keys in the caller's order", func(t *testing.T) {
		// 7 slots, each named by several keys, the slots interleaved, and
		// every key twice: MSET sets each key's later value, as one
		// server would, only if each slot's share keeps the caller's order.
		mset, mget := []any{"MSET"}, []any{"MGET"}
		for round := range 2 {
			for i := range 30 {
				k := keyIn(slots.Slot((i*5%7)*2000+11), fmt.Sprintf("ord%d", i))
				mset = append(mset, k, 100*round+i)
				if round == 0 {
					mget = append(mget, k)
				}
			}
		}
		if err := c.Do(ctx, mset...).Err(); err != nil {
			t.Fatal(err)
		}
		got, err := c.Do(ctx, mget...).Results()
		if err != nil || len(got) != 30 {
			t.Fatalf("MGET: %d replies, %v", len(got), err)
		}
		for i, r := range got {
			if v, _ := r.Int64(); v != int64(100+i) {
				t.Errorf("key %d: %v, want %d", i, r, 100+i)
			}
		}
	})
	t.Run("DEL EXISTS MSET across slots", func(t *testing.T) {
		keys := []any{keyIn(1, "a"), keyIn(6000, "b"), keyIn(12000, "c"), keyIn(16000, "d")}
		mset := []any{"MSET"}
		for _, k := range keys[:3] {
			mset = append(mset, k, "v")
		}
		if s, err := c.Do(ctx, mset...).Text(); err != nil || s != "OK" {
			t.Fatalf("MSET = %q, %v", s, err)
		}
		if got, err := c.Do(ctx, append([]any{"EXISTS"}, keys...)...).Int64(); err != nil || got != 3 {
			t.Fatalf("EXISTS = %d, %v", got, err)
		}
		if got, err := c.Do(ctx, append([]any{"DEL"}, keys...)...).Int64(); err != nil || got != 3 {
			t.Fatalf("DEL = %d, %v; want 3", got, err)
		}
		if got, err := c.Do(ctx, append([]any{"UNLINK"}, keys...)...).Int64(); err != nil || got != 0 {
			t.Fatalf("UNLINK after DEL = %d, %v", got, err)
		}
		err := c.Do(ctx, "MSETNX", keys[0], "1", keys[1], "2").Err()
		if !errors.Is(err, ErrCrossSlot) {
			t.Fatalf("MSETNX across slots: %v, want CROSSSLOT", err)
		}
		strict := newTestClient(t, cl, Options{RefuseCrossSlot: true})
		if err := strict.Do(ctx, append([]any{"MGET"}, keys...)...).Err(); !errors.Is(err, ErrCrossSlot) {
			t.Fatalf("RefuseCrossSlot MGET: %v", err)
		}
		if err := strict.Do(ctx, "MGET", keyIn(9, "x"), keyIn(9, "y")).Err(); err != nil {
			t.Fatalf("RefuseCrossSlot one-slot MGET: %v", err)
		}
	})
	t.Run("pipeline splits and fans out too", func(t *testing.T) {
		before, err := c.Do(ctx, "DBSIZE").Int64()
		if err != nil {
			t.Fatal(err)
		}
		p := c.Pipeline()
		p.Do("SET", keyIn(100, "p"), "1")
		p.Do("MGET", keyIn(100, "p"), keyIn(9000, "p"))
		p.Do("DBSIZE")
		p.Do("GET", keyIn(100, "p"))
		res, err := p.Exec(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if s := res[1].String(); s != `["1", (nil)]` {
			t.Errorf("pipelined MGET = %s", s)
		}
		if v, _ := res[2].Int64(); v != before+1 {
			t.Errorf("pipelined DBSIZE = %v, want %d", res[2], before+1)
		}
		if s, _ := res[3].Text(); len(res) != 4 || s != "1" {
			t.Errorf("results %v", res)
		}
	})
	t.Run("commands learnt at run time follow their tips", func(t *testing.T) {
		lc := newTestClient(t, cl, Options{})
		var keep []*slots.Command
		for cmd := range slots.DefaultTable().Commands {
			if cmd.Name != "dbsize" && cmd.Name != "mget" {
				keep = append(keep, cmd)
			}
		}
		lc.cmds.Store(slots.NewTable(keep...)) // as a module's commands: unknown until asked
		var sum int64
		for _, m := range cl.Masters() {
			v, err := m.Do(ctx, "DBSIZE")
			if err != nil {
				t.Fatal(err)
			}
			sum += v.(int64)
		}
		if got, err := lc.Do(ctx, "DBSIZE").Int64(); err != nil || got != sum {
			t.Fatalf("learnt DBSIZE = %d, %v; want %d", got, err, sum)
		}
		got, err := lc.Do(ctx, "MGET", keyIn(100, "p"), keyIn(9000, "p")).Strings()
		if err != nil || !slices.Equal(got, []string{"1", ""}) {
			t.Fatalf("learnt MGET = %q, %v", got, err)
		}
	})
	t.Run("FLUSHALL empties every master", func(t *testing.T) {
		if err := c.Do(ctx, "FLUSHALL").Err(); err != nil {
			t.Fatal(err)
		}
		for _, m := range cl.Masters() {
			if v, err := m.Do(ctx, "DBSIZE"); err != nil || v != int64(0) {
				t.Errorf("%s: DBSIZE after FLUSHALL = %v, %v", m.Name, v, err)
			}
		}
	})
}

// A hung master (SIGSTOP) fails its leg at the caller's deadline; the call
// returns then, naming that node and carrying the other legs' replies.
func TestFanoutStoppedMasterLeg(t *testing.T) {
	// A long node timeout: the cluster must not fail the stopped master
	// (and so refuse every shard with CLUSTERDOWN) while the test runs.
	cl := startCluster(t, redistest.ClusterOptions{Masters: 3, NodeTimeout: 15 * time.Second})
	c := newTestClient(t, cl, Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	mget := []any{"MGET"}
	for i := range 30 {
		k := keyIn(slots.Slot(i*541), "s")
		mget = append(mget, k)
		if err := c.Do(ctx, "SET", k, i).Err(); err != nil {
			t.Fatal(err)
		}
	}
	victim := cl.Masters()[1]
	victim.Stop()
	defer victim.Cont()

	for _, args := range [][]any{{"DBSIZE"}, mget} {
		const deadline = 500 * time.Millisecond
		cctx, ccancel := context.WithTimeout(ctx, deadline)
		start := time.Now()
		res := c.Do(cctx, args...)
		took := time.Since(start)
		ccancel()
		var fe *FanoutError
		if !errors.As(res.Err(), &fe) {
			t.Fatalf("%v: %v, want a *FanoutError", args[0], res.Err())
		}
		if took > deadline+250*time.Millisecond {
			t.Errorf("%v returned %v after a %v deadline", args[0], took, deadline)
		}
		if !errors.Is(res.Err(), context.DeadlineExceeded) {
			t.Errorf("%v: %v does not match the deadline", args[0], res.Err())
		}
		if len(fe.Failed) == 0 || len(fe.Succeeded) == 0 {
			t.Fatalf("%v: %d failed, %d succeeded legs", args[0], len(fe.Failed), len(fe.Succeeded))
		}
		for _, f := range fe.Failed {
			if f.Addr != victim.Addr {
				t.Errorf("%v: failed leg names %s, the stopped master is %s", args[0], f.Addr, victim.Addr)
			}
		}
		for _, s := range fe.Succeeded {
			if s.Addr == victim.Addr || s.Result.failed() {
				t.Errorf("%v: succeeded leg %s: %v", args[0], s.Addr, s.Result)
			}
		}
		t.Logf("%v: returned after %v: %v", args[0], took.Round(time.Millisecond), fe)
	}
}

// One caller collects a pipeline round's shares node after node. A hung
// node first in the round holds it up to the deadline; the shares of the
// healthy nodes after it, whose replies arrived meanwhile, must still be
// delivered, not failed with the deadline.
func TestPipelineSharesAfterAHungNodeAreCollected(t *testing.T) {
	cl := startCluster(t, redistest.ClusterOptions{Masters: 3, NodeTimeout: 15 * time.Second})
	c := newTestClient(t, cl, Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	victim := cl.Masters()[0]
	var keys []string
	for _, m := range cl.Masters() { // the victim's key first: its share leads the round
		k := keyIn(slotOwnedBy(t, cl, m, 0), "collect")
		keys = append(keys, k)
		if err := c.Do(ctx, "SET", k, m.Addr).Err(); err != nil {
			t.Fatal(err)
		}
	}
	victim.Stop()
	defer victim.Cont()
	for round := range 5 {
		p := c.Pipeline()
		for _, k := range keys {
			p.Do("GET", k)
		}
		pctx, pcancel := context.WithTimeout(ctx, 300*time.Millisecond)
		start := time.Now()
		res, _ := p.Exec(pctx)
		took := time.Since(start)
		pcancel()
		if !errors.Is(res[0].Err(), context.DeadlineExceeded) {
			t.Fatalf("round %d: the hung node's GET: %v, want the deadline", round, res[0].Err())
		}
		for i, m := range cl.Masters()[1:] {
			if v, err := res[i+1].Text(); err != nil || v != m.Addr {
				t.Fatalf("round %d: healthy node %s's GET = %q, %v; want its reply (it arrived before the deadline)", round, m.Addr, v, err)
			}
		}
		if took > 300*time.Millisecond+250*time.Millisecond {
			t.Fatalf("round %d: Exec returned %v after a 300ms deadline", round, took)
		}
	}
}
