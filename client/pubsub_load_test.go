package client

import (
	"context"
	"strconv"
	"sync"
	"testing"
	"time"
)

// psLoad publishes a numbered message every 5 ms (200/s) on each channel
// and records which acknowledged messages the subscription received, and
// when, plus every interruption it reported.
type psLoad struct {
	sub     *Subscription
	sharded bool

	mu    sync.Mutex
	acked map[string][]psAck
	recv  map[string]map[int]time.Time
	gaps  []*Gap
	errs  int

	stop     chan struct{}
	pubs     sync.WaitGroup
	rcancel  context.CancelFunc
	received chan struct{}
}

type psAck struct {
	seq  int
	sent time.Time // when the publish was sent: the server ran it
	at   time.Time // between sent and at, when it was acknowledged
}

const psEvery = 5 * time.Millisecond

func startPSLoad(t *testing.T, c *Client, sub *Subscription, sharded bool, chans []string) *psLoad {
	t.Helper()
	l := &psLoad{sub: sub, sharded: sharded, acked: map[string][]psAck{}, recv: map[string]map[int]time.Time{},
		stop: make(chan struct{}), received: make(chan struct{})}
	for _, ch := range chans {
		l.recv[ch] = map[int]time.Time{}
	}
	ctx, cancel := context.WithCancel(context.Background())
	l.rcancel = cancel
	go l.receive(ctx)
	for _, ch := range chans {
		l.pubs.Add(1)
		go l.publish(c, ch)
	}
	t.Cleanup(l.halt)
	return l
}

func (l *psLoad) publish(c *Client, ch string) {
	defer l.pubs.Done()
	tick := time.NewTicker(psEvery)
	defer tick.Stop()
	for seq := 0; ; seq++ {
		select {
		case <-l.stop:
			return
		case <-tick.C:
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		sent := time.Now()
		var err error
		if l.sharded {
			err = c.SPublish(ctx, ch, strconv.Itoa(seq)).Err()
		} else {
			err = c.Publish(ctx, ch, strconv.Itoa(seq)).Err()
		}
		cancel()
		l.mu.Lock()
		if err == nil {
			l.acked[ch] = append(l.acked[ch], psAck{seq: seq, sent: sent, at: time.Now()})
		} else {
			l.errs++
		}
		l.mu.Unlock()
	}
}

func (l *psLoad) receive(ctx context.Context) {
	defer close(l.received)
	for {
		m, err := l.sub.Receive(ctx)
		if err != nil {
			return
		}
		now := time.Now()
		l.mu.Lock()
		if m.Gap != nil {
			l.gaps = append(l.gaps, m.Gap)
		} else if seq, err := strconv.Atoi(m.Payload); err == nil && l.recv[m.Channel] != nil {
			if _, dup := l.recv[m.Channel][seq]; !dup {
				l.recv[m.Channel][seq] = now
			}
		}
		l.mu.Unlock()
	}
}

// halt stops publishing, lets deliveries in flight arrive (at most 2 s),
// then stops receiving. Safe to call twice.
func (l *psLoad) halt() {
	select {
	case <-l.stop:
		return
	default:
	}
	close(l.stop)
	l.pubs.Wait()
	deadline := time.Now().Add(2 * time.Second)
	for time.Now().Before(deadline) && !l.allReceivedOrGapped() {
		time.Sleep(10 * time.Millisecond)
	}
	l.rcancel()
	<-l.received
}

func (l *psLoad) allReceivedOrGapped() bool {
	for ch := range l.recv {
		if len(l.missing(ch)) > 0 {
			return false
		}
	}
	return true
}

// missing lists the acknowledged messages on ch that were not received.
func (l *psLoad) missing(ch string) []psAck {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []psAck
	for _, a := range l.acked[ch] {
		if _, ok := l.recv[ch][a.seq]; !ok {
			out = append(out, a)
		}
	}
	return out
}

// gapsOn lists the interruptions reported for ch.
func (l *psLoad) gapsOn(ch string) []*Gap {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []*Gap
	for _, g := range l.gaps {
		for _, c := range g.Channels {
			if c == ch {
				out = append(out, g)
				break
			}
		}
	}
	return out
}

// waitRecv waits for the first message on ch received at or after t.
func (l *psLoad) waitRecv(tb testing.TB, ch string, after time.Time, within time.Duration) time.Time {
	tb.Helper()
	deadline := time.Now().Add(within)
	for time.Now().Before(deadline) {
		l.mu.Lock()
		var first time.Time
		for _, at := range l.recv[ch] {
			if !at.Before(after) && (first.IsZero() || at.Before(first)) {
				first = at
			}
		}
		l.mu.Unlock()
		if !first.IsZero() {
			return first
		}
		time.Sleep(5 * time.Millisecond)
	}
	tb.Fatalf("no message on %s received within %v after %s", ch, within, after.Format("15:04:05.000"))
	return time.Time{}
}

// unexplained lists the acknowledged messages on ch that were lost outside
// every reported gap (the server ran the publish between sent and at; a
// window that overlaps a gap is covered): those lost silently.
func (l *psLoad) unexplained(ch string) []psAck {
	gaps := l.gapsOn(ch)
	var out []psAck
	for _, a := range l.missing(ch) {
		covered := false
		for _, g := range gaps {
			if !a.at.Before(g.Start) && !a.sent.After(g.End) {
				covered = true
			}
		}
		if !covered {
			out = append(out, a)
		}
	}
	return out
}

func (l *psLoad) counts(ch string) (acked, received int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.acked[ch]), len(l.recv[ch])
}
