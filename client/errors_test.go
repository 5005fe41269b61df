package client

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/slotrouter/slotrouter/internal/redistest"
	"github.com/slotrouter/slotrouter/router"
	"github.com/slotrouter/slotrouter/slots"
)

// Every error a caller meets matches something in this package: CROSSSLOT
// from the client and from the server alike, a node failure, Close. (A
// client-side CROSSSLOT used to match only slots.ErrCrossSlot, connection
// failures only *router.NodeError, and router.ErrClosed differed from
// ErrClosed.)
func TestErrorVocabulary(t *testing.T) {
	cl := startCluster(t, redistest.ClusterOptions{Masters: 3})
	c := newTestClient(t, cl, Options{})
	a, b := keyIn(100, "vocab"), keyIn(16000, "vocab")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	// CROSSSLOT decided by the client, before anything is sent (MGET
	// across slots is split, SUNION cannot be)...
	err := c.Do(ctx, "SUNION", a, b).Err()
	if !errors.Is(err, ErrCrossSlot) {
		t.Fatalf("client-side CROSSSLOT: %v does not match ErrCrossSlot", err)
	}
	// ...also for a splittable command when the caller refuses splits...
	strict := newTestClient(t, cl, Options{RefuseCrossSlot: true})
	if err := strict.Do(ctx, "MGET", a, b).Err(); !errors.Is(err, ErrCrossSlot) {
		t.Fatalf("client-side CROSSSLOT under RefuseCrossSlot: %v does not match ErrCrossSlot", err)
	}
	// ...and answered by a server.
	n := c.node(cl.MasterOf(100).Addr)
	r, err := do(ctx, n, "MGET", a, b)
	if err != nil || !errors.Is(r.Err(), ErrCrossSlot) {
		t.Fatalf("server-side CROSSSLOT: %s %v", r, err)
	}
	if errors.Is(r.Err(), ErrMoved) {
		t.Fatal("CROSSSLOT matches ErrMoved")
	}

	// A node that stops answering: the caller's deadline, as a NodeError
	// (or a RetryError) naming the cause, matching the deadline.
	victim := cl.MasterOf(100)
	victim.Stop()
	defer victim.Cont()
	sctx, scancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer scancel()
	err = c.Do(sctx, "SET", a, "v").Err()
	var ne *NodeError
	var re *RetryError
	if !errors.Is(err, context.DeadlineExceeded) || (!errors.As(err, &ne) && !errors.As(err, &re)) {
		t.Fatalf("stopped node: %v (%T)", err, err)
	}
	victim.Cont()

	c.Close()
	err = c.Do(ctx, "GET", a).Err()
	if !errors.Is(err, ErrClosed) || !errors.Is(err, router.ErrClosed) {
		t.Fatalf("after Close: %v", err)
	}
	if ErrCrossSlot != slots.ErrCrossSlot {
		t.Fatal("ErrCrossSlot is not the slots package's")
	}
}
