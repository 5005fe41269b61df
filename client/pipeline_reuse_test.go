package client

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/slotrouter/slotrouter/internal/redistest"
	"github.com/slotrouter/slotrouter/slots"
)

// One Pipeline reused across Execs keeps results in order and carries no
// state from one Exec into the next, also when a slot moves between them
// (its commands get MOVED and are resent alone) and when, during a
// migration, some commands are sent with ASKING.
func TestPipelineReuseAcrossRedirects(t *testing.T) {
	cl := redistest.StartCluster(t, redistest.ClusterOptions{Masters: 3})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c, err := New(ctx, Options{Addrs: cl.Addrs()})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	keys := make([]string, 300)
	for i := range keys {
		keys[i] = fmt.Sprint("pk:", i)
	}
	p := c.Pipeline()
	check := func(round string, want func(i int) string) {
		t.Helper()
		for _, k := range keys {
			p.Do("GET", k)
		}
		res, err := p.Exec(ctx)
		if err != nil {
			t.Fatalf("%s: %v", round, err)
		}
		if len(res) != len(keys) || p.Len() != 0 {
			t.Fatalf("%s: %d results, %d left queued", round, len(res), p.Len())
		}
		for i, r := range res {
			if v, err := r.Text(); err != nil || v != want(i) {
				t.Fatalf("%s: result %d = %s %v, want %q", round, i, r, err, want(i))
			}
		}
	}
	for i, k := range keys {
		p.Do("SET", k, i)
	}
	if _, err := p.Exec(ctx); err != nil {
		t.Fatal(err)
	}
	check("after SET", func(i int) string { return fmt.Sprint(i) })

	// Move the slot of keys[0] (and every other key in it) to another master.
	slot := int(slots.Of(keys[0]))
	src := cl.MasterOf(slot)
	var dst *redistest.Server
	for _, m := range cl.Masters() {
		if m != src {
			dst = m
			break
		}
	}
	cl.MigrateSlot(slot, src, dst)
	check("after MOVED", func(i int) string { return fmt.Sprint(i) })

	// Half-way migration of another key's slot: keys already moved answer
	// ASK on the source.
	slot2 := int(slots.Of(keys[1]))
	src2 := cl.MasterOf(slot2)
	dst2 := dst
	if dst2 == src2 {
		dst2 = src
	}
	cl.BeginMigration(slot2, src2, dst2)
	cl.MoveKeys(slot2, src2, dst2)
	check("during migration", func(i int) string { return fmt.Sprint(i) })
	cl.FinishMigration(slot2, src2, dst2)

	// A bad argument fails only its own command.
	for i, k := range keys {
		if i == 5 {
			p.Do("GET", struct{}{})
			continue
		}
		p.Do("SET", k, "v"+fmt.Sprint(i))
	}
	res, err := p.Exec(ctx)
	var ae *ArgError
	if !errors.As(err, &ae) || !errors.As(res[5].Err(), &ae) {
		t.Fatalf("want the ArgError of command 5, got %v / %v", err, res[5].Err())
	}
	for i, r := range res {
		if i != 5 && r.Err() != nil {
			t.Fatalf("command %d: %v", i, r.Err())
		}
	}
	check("after partial failure", func(i int) string {
		if i == 5 {
			return "5"
		}
		return "v" + fmt.Sprint(i)
	})
}
