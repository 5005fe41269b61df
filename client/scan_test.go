package client

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/slotrouter/slotrouter/internal/redistest"
	"github.com/slotrouter/slotrouter/slots"
)

const scanKeys = 10000

// writeScanKeys writes scanKeys keys over all slots, pipelined.
func writeScanKeys(t *testing.T, ctx context.Context, c *Client) []string {
	t.Helper()
	keys := make([]string, scanKeys)
	p := c.Pipeline()
	for i := range keys {
		keys[i] = fmt.Sprintf("scan:%d", i)
		p.Do("SET", keys[i], i)
		if p.Len() == 1000 || i == len(keys)-1 {
			if _, err := p.Exec(ctx); err != nil {
				t.Fatal(err)
			}
		}
	}
	return keys
}

// missing lists the keys Scan did not return.
func missing(keys []string, got map[string]int) []string {
	var out []string
	for _, k := range keys {
		if got[k] == 0 {
			out = append(out, k)
		}
	}
	return out
}

func TestScanSurvivesKill9(t *testing.T) {
	cl := startCluster(t, redistest.ClusterOptions{Masters: 3, Replicas: 1})
	c := newTestClient(t, cl, Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	keys := writeScanKeys(t, ctx, c)
	// Only replicated keys survive a kill -9: wait until every replica has
	// all its master's keys.
	waitFor(t, 20*time.Second, "replicas caught up", func() error {
		for _, m := range cl.Masters() {
			want := mustDoServer(t, m, "DBSIZE")
			for _, r := range cl.ReplicasOf(m) {
				if got := mustDoServer(t, r, "DBSIZE"); got != want {
					return notYet("%s has %v keys, its master %v", r.Name, got, want)
				}
			}
		}
		return nil
	})

	got := map[string]int{}
	var victim *redistest.Server
	start := time.Now()
	var killedAt time.Time
	for k, err := range c.Scan(ctx, ScanOptions{Match: "scan:*"}) {
		if err != nil {
			t.Fatalf("Scan after %d keys: %v", len(got), err)
		}
		got[k]++
		if len(got) == 1000 && victim == nil {
			// Kill the master being walked right now, mid-walk.
			victim = serverByAddr(t, cl, c.router.Masters()[0].Addr)
			victim.Kill()
			killedAt = time.Now()
		}
	}
	if victim == nil {
		t.Fatal("the scan ended before the kill")
	}
	dups := 0
	for _, n := range got {
		dups += n - 1
	}
	t.Logf("killed %s after 1000 keys; Scan returned %d distinct keys (%d repeats) in %v, %v after the kill",
		victim.Name, len(got), dups, time.Since(start).Round(time.Millisecond), time.Since(killedAt).Round(time.Millisecond))
	if m := missing(keys, got); len(m) > 0 {
		t.Fatalf("Scan missed %d of %d keys, e.g. %v", len(m), len(keys), m[:min(5, len(m))])
	}
}

func TestScanSurvivesSlotMigration(t *testing.T) {
	cl := startCluster(t, redistest.ClusterOptions{Masters: 3})
	c := newTestClient(t, cl, Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	keys := writeScanKeys(t, ctx, c)

	// Keys move from the last master walked to the first one, after the
	// first one's walk: one slot completes its migration during the scan,
	// another is left half-way (keys moved, slot not yet reassigned).
	legs := c.router.Masters()
	first, last := serverByAddr(t, cl, legs[0].Addr), serverByAddr(t, cl, legs[len(legs)-1].Addr)
	var moving []int
	for _, k := range keys {
		s := int(slots.Of(k))
		if m := cl.MasterOf(s); m.ID == last.ID && (len(moving) == 0 || moving[0] != s) {
			moving = append(moving, s)
			if len(moving) == 2 {
				break
			}
		}
	}
	got := map[string]int{}
	moved := 0
	for k, err := range c.Scan(ctx, ScanOptions{Count: 50}) {
		if err != nil {
			t.Fatalf("Scan after %d keys: %v", len(got), err)
		}
		got[k]++
		if len(got) == scanKeys/2 && moved == 0 {
			moved += cl.MigrateSlot(moving[0], last, first)
			cl.BeginMigration(moving[1], last, first)
			moved += cl.MoveKeys(moving[1], last, first)
		}
	}
	cl.FinishMigration(moving[1], last, first)
	if moved == 0 {
		t.Fatal("no key moved during the scan")
	}
	t.Logf("moved %d keys of slots %v from %s to %s mid-scan; %d distinct keys returned", moved, moving, last.Name, first.Name, len(got))
	if m := missing(keys, got); len(m) > 0 {
		t.Fatalf("Scan missed %d of %d keys, e.g. %v", len(m), len(keys), m[:min(5, len(m))])
	}

	t.Run("HSCAN SSCAN ZSCAN follow their key", func(t *testing.T) {
		key := keyIn(slots.Slot(moving[0]+1), "coll")
		slot := int(slots.Of(key))
		from := cl.MasterOf(slot)
		to := first
		if from.ID == first.ID {
			to = last
		}
		h, s, z := key+":h", key+":s", key+":z"
		p := c.Pipeline()
		for i := range 2000 {
			p.Do("HSET", h, fmt.Sprint("f", i), i)
			p.Do("SADD", s, fmt.Sprint("m", i))
			p.Do("ZADD", z, i, fmt.Sprint("m", i))
		}
		if _, err := p.Exec(ctx); err != nil {
			t.Fatal(err)
		}
		fields, members, scored := map[string]bool{}, map[string]bool{}, map[string]bool{}
		for fv, err := range c.HScan(ctx, h, ScanOptions{Count: 20}) {
			if err != nil {
				t.Fatal(err)
			}
			if fv.Value != fv.Field[1:] {
				t.Fatalf("HSCAN pair %+v", fv)
			}
			fields[fv.Field] = true
			if len(fields) == 300 && from != nil {
				cl.MigrateSlot(slot, from, to) // the key moves mid-walk
				from = nil
			}
		}
		for m, err := range c.SScan(ctx, s, ScanOptions{Match: "m1*"}) {
			if err != nil {
				t.Fatal(err)
			}
			members[m] = true
		}
		for ms, err := range c.ZScan(ctx, z, ScanOptions{}) {
			if err != nil {
				t.Fatal(err)
			}
			if fmt.Sprint("m", ms.Score) != ms.Member {
				t.Fatalf("ZSCAN pair %+v", ms)
			}
			scored[ms.Member] = true
		}
		if len(fields) != 2000 || len(members) != 1111 || len(scored) != 2000 {
			t.Fatalf("HSCAN %d fields, SSCAN MATCH m1* %d members, ZSCAN %d members", len(fields), len(members), len(scored))
		}
		zsets := map[string]bool{} // at least once: repeats are allowed
		for k, err := range c.Scan(ctx, ScanOptions{Type: "zset"}) {
			if err != nil {
				t.Fatal(err)
			}
			zsets[k] = true
		}
		if len(zsets) != 1 || !zsets[z] {
			t.Fatalf("Scan TYPE zset = %v, want only %q", zsets, z)
		}
	})
	t.Run("ForEachMaster", func(t *testing.T) {
		var total int64
		sizes := make(chan int64, 8)
		err := c.ForEachMaster(ctx, func(ctx context.Context, l Leg) error {
			n, err := l.Do(ctx, "DBSIZE").Int64()
			sizes <- n
			return err
		})
		close(sizes)
		for n := range sizes {
			total += n
		}
		if err != nil || total != scanKeys+3 {
			t.Fatalf("ForEachMaster DBSIZE total %d, %v", total, err)
		}
	})
}
