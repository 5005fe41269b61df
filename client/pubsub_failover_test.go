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

// checkGaps asserts that ch lost nothing outside its reported gaps, and
// returns them.
func checkGaps(t *testing.T, l *psLoad, ch string) []*Gap {
	t.Helper()
	acked, received := l.counts(ch)
	gaps := l.gapsOn(ch)
	for _, g := range gaps {
		t.Logf("%s: gap %v (%s -> %s) from %s to %s, cause: %v", ch, g.Duration().Round(time.Millisecond),
			g.From, g.To, g.Start.Format("15:04:05.000"), g.End.Format("15:04:05.000"), g.Cause)
	}
	t.Logf("%s: %d acknowledged publishes, %d received, %d missing (all inside reported gaps unless listed below)",
		ch, acked, received, len(l.missing(ch)))
	if bad := l.unexplained(ch); len(bad) > 0 {
		t.Errorf("%s: %d acknowledged messages lost outside any reported gap, first seq %d sent %s acked %s",
			ch, len(bad), bad[0].seq, bad[0].sent.Format("15:04:05.000"), bad[0].at.Format("15:04:05.000"))
	}
	return gaps
}

// subscribeLoad subscribes to sharded chans, starts publishing on each and
// waits until every one delivers.
func subscribeLoad(t *testing.T, c *Client, chans []string) (*Subscription, *psLoad) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	sub, err := c.SSubscribe(ctx, chans...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sub.Close() })
	l := startPSLoad(t, c, sub, true, chans)
	for _, ch := range chans {
		l.waitRecv(t, ch, time.Now(), 5*time.Second)
	}
	return sub, l
}

// watchView records when the client's view first routes ch's slot away
// from old; the returned func waits for that moment.
func watchView(ctx context.Context, c *Client, ch, old string) func(*testing.T) time.Time {
	at := make(chan time.Time, 1)
	go func() {
		a := router.Attempt{Slot: slots.Of(ch), HasSlot: true}
		for ctx.Err() == nil {
			if addr, err := c.Router().Target(&a); err == nil && addr != old {
				at <- time.Now()
				return
			}
			time.Sleep(time.Millisecond)
		}
	}()
	return func(t *testing.T) time.Time {
		t.Helper()
		select {
		case v := <-at:
			return v
		case <-ctx.Done():
			t.Fatalf("the client's view never routed %s away from %s", ch, old)
			return time.Time{}
		}
	}
}

// Three sharded channels on three masters, 200 messages/s each. kill -9 of
// one master: its channel flows again within 150 ms of the replica's
// promotion, the interruption is reported with its window, and the other
// two channels lose nothing.
func TestPubSubShardedKill(t *testing.T) {
	cl := startCluster(t, redistest.ClusterOptions{Masters: 3, Replicas: 1})
	c := newTestClient(t, cl, Options{})
	masters := cl.Masters()
	var chans []string
	for _, m := range masters {
		chans = append(chans, keyIn(slotOwnedBy(t, cl, m, 0), "ps"))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	_, l := subscribeLoad(t, c, chans)

	victim := masters[0]
	viewAt := watchView(ctx, c, chans[0], victim.Addr)
	killAt := time.Now()
	victim.Kill()
	p := cl.WaitPromotion(ctx, victim)
	resumed := l.waitRecv(t, chans[0], p.First, 10*time.Second)
	view := viewAt(t)
	for _, ch := range chans {
		l.waitRecv(t, ch, resumed.Add(time.Second), 5*time.Second)
	}
	l.halt()

	t.Logf("kill -9 -> promotion %v; promotion -> first message on the failed shard's channel %v (promotion -> client view %v)",
		p.First.Sub(killAt).Round(time.Millisecond), resumed.Sub(p.First).Round(time.Millisecond), view.Sub(p.First).Round(time.Millisecond))
	if d := resumed.Sub(p.First); d > 150*time.Millisecond {
		t.Errorf("messages flowed again %v after the promotion, want <= 150ms", d)
	}
	gaps := checkGaps(t, l, chans[0])
	if len(gaps) == 0 {
		t.Fatalf("no interruption reported on %s", chans[0])
	}
	// The gap must cover the kill. Its end is when the promoted replica
	// confirmed the subscription, which can come a few ms before the
	// harness, polling, sees the promotion (p.First); every message lost
	// outside a reported gap is counted by checkGaps above.
	if g := gaps[0]; g.From != victim.Addr || g.To != p.Master.Addr || g.Start.Before(killAt.Add(-2*time.Second)) || g.End.Before(killAt) {
		t.Errorf("gap %+v: want from %s to %s, starting at most 2s (a ping) before the kill and ending after it", g, victim.Addr, p.Master.Addr)
	}
	for _, ch := range chans[1:] {
		if gaps := checkGaps(t, l, ch); len(gaps) > 0 {
			t.Errorf("%s on a healthy master reported %d interruptions", ch, len(gaps))
		}
		if m := l.missing(ch); len(m) > 0 {
			t.Errorf("%s on a healthy master lost %d acknowledged messages", ch, len(m))
		}
	}
}

// Migrating a sharded channel's slot to another master: the old master
// sends sunsubscribe, the subscription follows the slot, delivery resumes
// within 1 s of the migration's end and the gap is reported.
func TestPubSubShardedMigration(t *testing.T) {
	cl := startCluster(t, redistest.ClusterOptions{Masters: 3})
	c := newTestClient(t, cl, Options{})
	masters := cl.Masters()
	src, dst := masters[0], masters[1]
	slot := slotOwnedBy(t, cl, src, 0)
	chans := []string{keyIn(slot, "mig"), keyIn(slotOwnedBy(t, cl, masters[2], 0), "stay")}
	_, l := subscribeLoad(t, c, chans)

	cl.MigrateSlot(int(slot), src, dst)
	end := time.Now()
	resumed := l.waitRecv(t, chans[0], end, 5*time.Second)
	for _, ch := range chans {
		l.waitRecv(t, ch, resumed.Add(500*time.Millisecond), 5*time.Second)
	}
	l.halt()

	t.Logf("migration end -> first message on the moved channel %v", resumed.Sub(end).Round(time.Millisecond))
	if d := resumed.Sub(end); d > time.Second {
		t.Errorf("delivery resumed %v after the migration ended, want <= 1s", d)
	}
	gaps := checkGaps(t, l, chans[0])
	if len(gaps) == 0 {
		t.Fatalf("the move of %s was not reported", chans[0])
	}
	if g := gaps[0]; !errors.Is(g.Cause, ErrSubscriptionMoved) || g.From != src.Addr || g.To != dst.Addr {
		t.Errorf("gap %+v: want ErrSubscriptionMoved from %s to %s", g, src.Addr, dst.Addr)
	}
	if n := subscribers(t, cl, true, chans[0]); n != 1 {
		t.Errorf("%d subscribers of %s after the move, want 1", n, chans[0])
	}
	if len(l.missing(chans[1])) > 0 || len(l.gapsOn(chans[1])) > 0 {
		t.Errorf("%s, on an unrelated master, lost messages or reported a gap", chans[1])
	}
}

// A reader that stops: with 1,000 sharded channels on its subscription and
// its buffer full, another subscription on the same client keeps receiving
// everything and commands keep answering promptly; the stopped reader
// later finds exactly how many messages it lost, in a report.
func TestPubSubSlowReader(t *testing.T) {
	cl := startCluster(t, redistest.ClusterOptions{Masters: 3})
	const buffer, channels, rounds = 256, 1000, 3
	c := newTestClient(t, cl, Options{PubSub: PubSubOptions{Buffer: buffer}})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var many []string
	for i := range channels {
		many = append(many, "ch:"+itoa(i))
	}
	stalled, err := c.SSubscribe(ctx, many...)
	if err != nil {
		t.Fatal(err)
	}
	defer stalled.Close()
	for _, ch := range []string{many[0], many[999]} {
		if n := subscribers(t, cl, true, ch); n != 1 {
			t.Fatalf("%d subscribers of %s, want 1", n, ch)
		}
	}
	other, err := c.SSubscribe(ctx, "other")
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	l := startPSLoad(t, c, other, true, []string{"other"})

	var worst time.Duration
	for r := range rounds {
		for _, ch := range many {
			mustPublish(t, c, true, ch, itoa(r))
		}
		start := time.Now()
		if err := c.Do(ctx, "GET", "k").Err(); err != nil && !errors.Is(err, ErrNil) {
			t.Fatal(err)
		}
		worst = max(worst, time.Since(start))
	}
	l.waitRecv(t, "other", time.Now(), 5*time.Second)
	l.halt()
	published := channels * rounds
	t.Logf("stalled reader: %d published; GET during the flood took at most %v", published, worst)
	if worst > 200*time.Millisecond {
		t.Errorf("a GET took %v while a subscription's reader was stalled", worst)
	}
	if m := l.missing("other"); len(m) > 0 || len(l.gapsOn("other")) > 0 {
		t.Errorf("the other subscription lost %d messages", len(m))
	}

	// Now read: the buffered messages, then one report of the drops.
	got, dropped := 0, 0
	rctx, rcancel := context.WithTimeout(ctx, 10*time.Second)
	defer rcancel()
	for got+dropped < published {
		m, err := stalled.Receive(rctx)
		if err != nil {
			t.Fatalf("after %d messages and %d reported drops of %d: %v", got, dropped, published, err)
		}
		if m.Gap == nil {
			got++
			continue
		}
		if !errors.Is(m.Gap.Cause, ErrSlowReader) || m.Gap.End.Before(m.Gap.Start) {
			t.Fatalf("report %+v", m.Gap)
		}
		dropped += m.Gap.Dropped
	}
	t.Logf("stalled reader: %d buffered messages, %d reported dropped", got, dropped)
	if got != buffer || dropped != published-buffer {
		t.Errorf("got %d messages and %d drops, want %d and %d", got, dropped, buffer, published-buffer)
	}
	// It still works.
	mustPublish(t, c, true, many[500], "after")
	if m := receiveN(t, stalled, 1)[0]; m.Channel != many[500] || m.Payload != "after" {
		t.Errorf("after the drops got %+v", m)
	}
}

// A master that hangs (SIGSTOP) closes nothing: the subscription notices
// through its pings or the new view, and flows again shortly after the
// replica's promotion; the other channel loses nothing.
func TestPubSubShardedHang(t *testing.T) {
	cl := startCluster(t, redistest.ClusterOptions{Masters: 3, Replicas: 1})
	// Its bound on re-subscribing was missed twice in full-suite runs
	// (289 and 315 ms) and never alone: the client's log says why, if
	// it happens again.
	c := newTestClient(t, cl, Options{Logger: testLogger(t)})
	masters := cl.Masters()
	chans := []string{keyIn(slotOwnedBy(t, cl, masters[0], 0), "hang"), keyIn(slotOwnedBy(t, cl, masters[1], 0), "ok")}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	_, l := subscribeLoad(t, c, chans)
	victim := masters[0]
	// The subscription's promise is measured from the client's own view
	// (how fast the router sees a promotion is the router's promise,
	// tested with commands).
	viewAt := watchView(ctx, c, chans[0], victim.Addr)
	stopAt := time.Now()
	victim.Stop()
	p := cl.WaitPromotion(ctx, victim)
	resumed := l.waitRecv(t, chans[0], p.First, 10*time.Second)
	view := viewAt(t)
	l.waitRecv(t, chans[1], resumed.Add(500*time.Millisecond), 5*time.Second)
	l.halt()
	gaps := checkGaps(t, l, chans[0])
	if len(gaps) == 0 || gaps[0].To != p.Master.Addr {
		t.Fatalf("want a reported gap ending on %s, got %d", p.Master.Addr, len(gaps))
	}
	// The publisher's own call to the hung master runs to its deadline, so
	// the first message says as much about it as about the subscription:
	// the promise checked is the subscription's, subscribed on the new
	// master soon after the promotion.
	t.Logf("SIGSTOP -> promotion %v; promotion -> client view %v; view -> subscribed on the new master %v; promotion -> first message %v",
		p.First.Sub(stopAt).Round(time.Millisecond), view.Sub(p.First).Round(time.Millisecond),
		gaps[0].End.Sub(view).Round(time.Millisecond), resumed.Sub(p.First).Round(time.Millisecond))
	if d := gaps[0].End.Sub(view); d > 200*time.Millisecond {
		t.Errorf("subscribed on the new master %v after the client's view named it, want <= 200ms", d)
	}
	if len(l.missing(chans[1])) > 0 || len(checkGaps(t, l, chans[1])) > 0 {
		t.Errorf("%s on a healthy master lost messages or reported a gap", chans[1])
	}
}
