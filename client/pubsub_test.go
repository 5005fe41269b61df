package client

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/slotrouter/slotrouter/internal/redistest"
)

// receiveN reads n published messages (interruption reports fail the test).
func receiveN(t *testing.T, s *Subscription, n int) []*Message {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var out []*Message
	for len(out) < n {
		m, err := s.Receive(ctx)
		if err != nil {
			t.Fatalf("Receive after %d of %d messages: %v", len(out), n, err)
		}
		if m.Gap != nil {
			t.Fatalf("unexpected interruption: %+v", m.Gap)
		}
		out = append(out, m)
	}
	return out
}

func mustPublish(t *testing.T, c *Client, sharded bool, ch, msg string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	var n int64
	var err error
	if sharded {
		n, err = c.SPublish(ctx, ch, msg).Int64()
	} else {
		n, err = c.Publish(ctx, ch, msg).Int64()
	}
	// A classic PUBLISH counts only the receivers on the node it ran on.
	if err != nil || (sharded && n < 1) {
		t.Fatalf("publish %s %s: %d receivers, %v", ch, msg, n, err)
	}
}

// subscribers counts, over every node, the clients subscribed to ch.
func subscribers(t *testing.T, cl *redistest.Cluster, sharded bool, ch string) int64 {
	t.Helper()
	sub := "NUMSUB"
	if sharded {
		sub = "SHARDNUMSUB"
	}
	var total int64
	for _, s := range cl.Servers() {
		v, err := s.Do(context.Background(), "PUBSUB", sub, ch)
		if err != nil {
			t.Fatal(err)
		}
		if arr, ok := v.([]any); ok && len(arr) == 2 {
			n, _ := arr[1].(int64)
			total += n
		}
	}
	return total
}

// Classic, pattern and sharded subscriptions on one Subscription, under
// RESP2 and RESP3: every kind arrives with its fields, channels can be
// added and removed, the shared command connections keep working, and
// Close ends Receive.
func TestPubSubKinds(t *testing.T) {
	for _, resp3 := range []bool{false, true} {
		t.Run(fmt.Sprintf("resp3=%v", resp3), func(t *testing.T) {
			cl := startCluster(t, redistest.ClusterOptions{Masters: 3})
			// Short enough that a pong not understood ends a connection
			// within the idle wait below; long enough that a loaded
			// machine's stalls do not.
			const health = 750 * time.Millisecond
			c := newTestClient(t, cl, Options{HealthTimeout: health,
				PubSub: PubSubOptions{RESP3: resp3, PingInterval: 50 * time.Millisecond}})
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()

			s, err := c.Subscribe(ctx, "news")
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			if err := s.PSubscribe(ctx, "ev:*"); err != nil {
				t.Fatal(err)
			}
			// Sharded channels in three different slots, likely on
			// different masters: one connection per node serves them.
			sch := []string{keyIn(0, "a"), keyIn(8000, "b"), keyIn(16000, "c")}
			if err := s.SSubscribe(ctx, sch...); err != nil {
				t.Fatal(err)
			}
			mustPublish(t, c, false, "news", "n1")
			mustPublish(t, c, false, "ev:1", "e1")
			for i, ch := range sch {
				mustPublish(t, c, true, ch, fmt.Sprint("s", i))
			}
			got := map[string]*Message{}
			for _, m := range receiveN(t, s, 5) {
				got[m.Channel] = m
			}
			if m := got["news"]; m == nil || m.Payload != "n1" || m.Pattern != "" || m.Sharded {
				t.Errorf("classic message: %+v", m)
			}
			if m := got["ev:1"]; m == nil || m.Payload != "e1" || m.Pattern != "ev:*" {
				t.Errorf("pattern message: %+v", m)
			}
			for i, ch := range sch {
				if m := got[ch]; m == nil || m.Payload != fmt.Sprint("s", i) || !m.Sharded {
					t.Errorf("sharded message on %s: %+v", ch, m)
				}
			}
			// Idle connections are pinged, and the pongs (an array under
			// RESP2 in subscribed mode, +PONG under RESP3) are understood:
			// else the health timeout would end them and a gap would be
			// reported below.
			waitFor(t, 5*time.Second, "a ping on a subscription connection", func() error {
				for _, srv := range cl.Servers() {
					v, err := srv.Do(ctx, "CLIENT", "LIST")
					if err != nil {
						return err
					}
					if s, _ := v.(string); strings.Contains(s, "cmd=ping") {
						return nil
					}
				}
				return notYet("no ping seen")
			})
			time.Sleep(2 * health) // idle on purpose: long enough for a missed pong to end a connection
			if v, err := c.Do(ctx, "SET", "k", "v").Text(); err != nil || v != "OK" {
				t.Fatalf("command traffic beside the subscription: %q %v", v, err)
			}

			// Removing: no node counts us as a subscriber any more.
			if n := subscribers(t, cl, false, "news"); n != 1 {
				t.Fatalf("%d subscribers of news before Unsubscribe, want 1", n)
			}
			if err := s.Unsubscribe(ctx, "news"); err != nil {
				t.Fatal(err)
			}
			if err := s.SUnsubscribe(ctx, sch[0]); err != nil {
				t.Fatal(err)
			}
			if n := subscribers(t, cl, false, "news"); n != 0 {
				t.Errorf("%d subscribers of news after Unsubscribe", n)
			}
			if n, err := c.SPublish(ctx, sch[0], "x").Int64(); err != nil || n != 0 {
				t.Errorf("SPUBLISH after SUnsubscribe reached %d receivers (%v)", n, err)
			}
			mustPublish(t, c, true, sch[1], "still")
			if m := receiveN(t, s, 1)[0]; m.Channel != sch[1] || m.Payload != "still" {
				t.Errorf("after removals got %+v", m)
			}

			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			if _, err := s.Receive(ctx); !errors.Is(err, ErrSubscriptionClosed) {
				t.Fatalf("Receive after Close: %v", err)
			}
			if err := s.Subscribe(ctx, "more"); !errors.Is(err, ErrSubscriptionClosed) {
				t.Fatalf("Subscribe after Close: %v", err)
			}
			waitFor(t, 5*time.Second, "Close to reach the servers", func() error {
				if n := subscribers(t, cl, true, sch[1]); n != 0 {
					return notYet("%d subscribers of %s", n, sch[1])
				}
				return nil
			})
		})
	}
}

// A refused subscription (an ACL that forbids the channel) returns the
// server's error instead of retrying forever.
func TestPubSubRefused(t *testing.T) {
	cl := startCluster(t, redistest.ClusterOptions{Masters: 1})
	for _, s := range cl.Servers() {
		if _, err := s.Do(context.Background(), "ACL", "SETUSER", "limited", "on", ">pw", "~*", "&allowed", "+@all"); err != nil {
			t.Fatal(err)
		}
	}
	c := newTestClient(t, cl, Options{Username: "limited", Password: "pw"})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, err := c.Subscribe(ctx, "forbidden")
	var rerr *Error
	if !errors.As(err, &rerr) || rerr.Prefix() != "NOPERM" {
		t.Fatalf("Subscribe to a forbidden channel: %v", err)
	}
	s, err := c.SSubscribe(ctx, "allowed")
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	// Adding a forbidden channel to a working subscription: refused, not
	// kept as wanted (or it would be asked for again on every re-home),
	// and the rest keeps working.
	if err := s.Subscribe(ctx, "forbidden"); !errors.As(err, &rerr) || rerr.Prefix() != "NOPERM" {
		t.Fatalf("adding a forbidden channel: %v", err)
	}
	s.mu.Lock()
	kept := len(s.classic.chans)
	s.mu.Unlock()
	if kept != 0 {
		t.Errorf("the refused channel is still wanted")
	}
	mustPublish(t, c, true, "allowed", "ok")
	if m := receiveN(t, s, 1)[0]; m.Payload != "ok" {
		t.Fatalf("got %+v", m)
	}

	// Closing the client closes its subscriptions.
	_ = c.Close()
	waitFor(t, 5*time.Second, "the subscription to close with the client", func() error {
		rctx, rcancel := context.WithTimeout(ctx, 50*time.Millisecond)
		defer rcancel()
		if _, err := s.Receive(rctx); !errors.Is(err, ErrSubscriptionClosed) {
			return notYet("Receive: %v", err)
		}
		return nil
	})
}
