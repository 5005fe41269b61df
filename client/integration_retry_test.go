package client

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/slotrouter/slotrouter/internal/redistest"
)

// TestRetrySafety holds both sides of the retry rule on a connection that
// dies: a command that surely never reached the server (dial refused) is
// retried whatever it is; one that may have run (connection lost after the
// write) is retried only if read-only or marked Idempotent.
func TestRetrySafety(t *testing.T) {
	cl := startCluster(t, redistest.ClusterOptions{Masters: 3})
	c := newTestClient(t, cl, Options{})
	victim := cl.Masters()[0]
	s := slotOwnedBy(t, cl, victim, 700)
	key, roKey := keyIn(s, "maybe"), keyIn(s, "ro")
	mustDoOK(t, c, "SET", roKey, "r")

	// A script that never ends keeps the victim from reading anything more
	// on this connection (the client multiplexes one connection per node),
	// so the requests below are written and wait for a reply; then the
	// victim dies, so the reply never comes. (SIGSTOP would not do: the
	// harness's Kill sends SIGCONT first, and the node may answer before
	// SIGKILL lands.)
	busyCtx, cancelBusy := context.WithTimeout(context.Background(), 100*time.Millisecond)
	if err := c.Do(busyCtx, "EVAL", "while true do end", 1, keyIn(s, "busy")).Err(); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("endless script: %v; want it still running at its deadline", err)
	}
	cancelBusy()
	type outcome struct {
		err error
		val string
		at  time.Time
	}
	run := func(ctx context.Context, args ...any) chan outcome {
		ch := make(chan outcome, 1)
		go func() {
			res := c.Do(ctx, args...)
			v, _ := res.Text()
			ch <- outcome{res.Err(), v, time.Now()}
		}()
		return ch
	}
	plain := run(ctxFor(t, 30*time.Second), "SET", key, "plain")
	idem := run(Idempotent(ctxFor(t, 30*time.Second)), "SET", key, "idem")
	read := run(ctxFor(t, 30*time.Second), "GET", roKey)
	time.Sleep(200 * time.Millisecond)
	killedAt := time.Now()
	victim.Kill()

	// Maybe executed, not marked: the caller must decide, so it gets the
	// error at once and it says the command may have been sent.
	got := <-plain
	var ce *ConnError
	if got.err == nil || !errors.As(got.err, &ce) || !ce.Sent {
		t.Fatalf("plain SET on a dying connection: %v; want a *ConnError with Sent", got.err)
	}
	if d := got.at.Sub(killedAt); d > 2*time.Second {
		t.Fatalf("plain SET failed %v after the kill; want at once", d)
	}
	t.Logf("plain SET: %v", got.err)

	// Definitely not executed: the node is down, the dial is refused, and
	// even a plain write is retried until the node is back.
	refused := run(ctxFor(t, 30*time.Second), "SET", keyIn(s, "refused"), "x")
	time.Sleep(300 * time.Millisecond)
	victim.Restart(t)

	for name, ch := range map[string]chan outcome{"idempotent SET": idem, "GET": read, "plain SET after refusal": refused} {
		got := <-ch
		if got.err != nil && !errors.Is(got.err, ErrNil) {
			t.Fatalf("%s across the restart: %v; want retried to success", name, got.err)
		}
		t.Logf("%s succeeded %v after the kill", name, got.at.Sub(killedAt).Round(time.Millisecond))
	}
	// Persistence is off, so the restarted node lost roKey: the GET retried
	// and found nothing (nil is not an error). The writes that succeeded are there.
	if v, err := c.Do(ctxFor(t, 5*time.Second), "GET", key).Text(); err != nil || v != "idem" {
		t.Fatalf("GET %s = %q, %v; want the retried idempotent write", key, v, err)
	}
	if v, err := c.Do(ctxFor(t, 5*time.Second), "GET", keyIn(s, "refused")).Text(); err != nil || v != "x" {
		t.Fatalf("GET of the refused-then-retried write = %q, %v", v, err)
	}
}
