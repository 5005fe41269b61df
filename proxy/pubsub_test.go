package proxy

import (
	"context"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/slotrouter/slotrouter/client"
	"github.com/slotrouter/slotrouter/internal/redistest"
	"github.com/slotrouter/slotrouter/slots"
)

// publishUntil publishes until got reports the message arrived: a
// subscription added to a running one is confirmed before the server has
// necessarily applied it, so one PUBLISH could race it.
func publishUntil(t *testing.T, publish func() error, got <-chan string, want string) {
	t.Helper()
	deadline := time.After(10 * time.Second)
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	require.NoError(t, publish())
	for {
		select {
		case m := <-got:
			require.Equal(t, want, m)
			return
		case <-tick.C:
			require.NoError(t, publish())
		case <-deadline:
			t.Fatalf("message %q never arrived", want)
		}
	}
}

// TestPubSubGoRedis: go-redis's Subscribe, PSubscribe and SSubscribe
// through the session's subscribe mode, RESP2 and RESP3.
func TestPubSubGoRedis(t *testing.T) {
	srv := newServer(t, Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for _, proto := range []int{2, 3} {
		rdb := goRedis(t, srv, proto)
		ch := fmt.Sprintf("news%d", proto)
		for _, tc := range []struct {
			name string
			sub  func() *redis.PubSub
			pub  func(string) error
			want string
		}{
			{"subscribe", func() *redis.PubSub { return rdb.Subscribe(ctx, ch) },
				func(p string) error { return rdb.Publish(ctx, ch, p).Err() }, ch + "|"},
			{"psubscribe", func() *redis.PubSub { return rdb.PSubscribe(ctx, ch+"*") },
				func(p string) error { return rdb.Publish(ctx, ch+".x", p).Err() }, ch + ".x|" + ch + "*"},
			{"ssubscribe", func() *redis.PubSub { return rdb.SSubscribe(ctx, ch+"{s}") },
				func(p string) error { return rdb.SPublish(ctx, ch+"{s}", p).Err() }, ch + "{s}|"},
		} {
			t.Run(fmt.Sprintf("resp%d/%s", proto, tc.name), func(t *testing.T) {
				ps := tc.sub()
				defer ps.Close()
				got := make(chan string, 100)
				go func() {
					for {
						m, err := ps.ReceiveMessage(ctx)
						if err != nil {
							return
						}
						got <- m.Channel + "|" + m.Pattern + "|" + m.Payload
					}
				}()
				publishUntil(t, func() error { return tc.pub("hello") }, got, tc.want+"|hello")
			})
		}
	}
}

// TestPubSubProtocol: confirmations, counts, the commands RESP2 subscribe
// mode allows, and RESP3 pushes, byte for byte as redis-server 7.0.15.
func TestPubSubProtocol(t *testing.T) {
	srv := newServer(t, Options{})
	addr := listen(t, srv)
	r := dialRaw(t, addr)
	require.Equal(t, "*3\r\n$11\r\nunsubscribe\r\n$-1\r\n:0\r\n", r.do("UNSUBSCRIBE"))
	r.send("SUBSCRIBE a b\r\n")
	require.Equal(t, "*3\r\n$9\r\nsubscribe\r\n$1\r\na\r\n:1\r\n", r.reply())
	require.Equal(t, "*3\r\n$9\r\nsubscribe\r\n$1\r\nb\r\n:2\r\n", r.reply())
	require.Equal(t, "*3\r\n$10\r\npsubscribe\r\n$2\r\np*\r\n:3\r\n", r.do("PSUBSCRIBE p*"))
	require.Equal(t, "*3\r\n$10\r\nssubscribe\r\n$4\r\ns{1}\r\n:1\r\n", r.do("SSUBSCRIBE s{1}"))
	require.Equal(t, "-ERR Can't execute 'get': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / QUIT / RESET are allowed in this context\r\n", r.do("GET x"))
	require.Equal(t, "*2\r\n$4\r\npong\r\n$0\r\n\r\n", r.do("PING"))

	pub := dialRaw(t, addr)
	deliver := func(cmd, want string) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for time.Now().Before(deadline) {
			pub.do(cmd)
			r.c.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
			line, err := r.rd.Peek(1)
			if err == nil && len(line) == 1 {
				require.Equal(t, want, r.reply())
				return
			}
		}
		t.Fatalf("%s: nothing delivered", cmd)
	}
	deliver("PUBLISH a m1", "*3\r\n$7\r\nmessage\r\n$1\r\na\r\n$2\r\nm1\r\n")
	deliver("PUBLISH px m2", "*4\r\n$8\r\npmessage\r\n$2\r\np*\r\n$2\r\npx\r\n$2\r\nm2\r\n")
	deliver("SPUBLISH s{1} m3", "*3\r\n$8\r\nsmessage\r\n$4\r\ns{1}\r\n$2\r\nm3\r\n")

	r.send("UNSUBSCRIBE\r\n")
	require.Equal(t, "*3\r\n$11\r\nunsubscribe\r\n$1\r\na\r\n:2\r\n", r.reply())
	require.Equal(t, "*3\r\n$11\r\nunsubscribe\r\n$1\r\nb\r\n:1\r\n", r.reply())
	require.Equal(t, "*3\r\n$12\r\npunsubscribe\r\n$2\r\np*\r\n:0\r\n", r.do("PUNSUBSCRIBE p*"))
	require.Equal(t, "*3\r\n$12\r\nsunsubscribe\r\n$4\r\ns{1}\r\n:0\r\n", r.do("SUNSUBSCRIBE s{1}"))
	// Out of subscribe mode: ordinary commands again.
	require.Equal(t, "$-1\r\n", r.do("GET pubsub:nokey"))

	// RESP3: confirmations and messages are pushes; other commands work.
	require.True(t, strings.HasPrefix(r.do("HELLO 3"), "%7"))
	require.Equal(t, ">3\r\n$9\r\nsubscribe\r\n$1\r\nc\r\n:1\r\n", r.do("SUBSCRIBE c"))
	require.Equal(t, "_\r\n", r.do("GET pubsub:nokey"))
	deliver("PUBLISH c m4", ">3\r\n$7\r\nmessage\r\n$1\r\nc\r\n$2\r\nm4\r\n")
	require.Equal(t, "+RESET\r\n", r.do("RESET"))
	require.Equal(t, "$-1\r\n", r.do("GET pubsub:nokey"))
}

// logRecorder is a slog.Handler that keeps the messages it is given.
type logRecorder struct {
	mu   sync.Mutex
	msgs []string
}

func (l *logRecorder) Enabled(context.Context, slog.Level) bool { return true }
func (l *logRecorder) Handle(_ context.Context, r slog.Record) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.msgs = append(l.msgs, r.Message)
	return nil
}
func (l *logRecorder) WithAttrs([]slog.Attr) slog.Handler { return l }
func (l *logRecorder) WithGroup(string) slog.Handler      { return l }

func (l *logRecorder) count(prefix string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, m := range l.msgs {
		if strings.HasPrefix(m, prefix) {
			n++
		}
	}
	return n
}

// TestPubSubFailoverThroughProxy: a go-redis SSubscribe through the
// in-process dialer keeps receiving across kill -9 of the master owning its
// shard channel. The interruption is logged by the proxy, never sent to the
// go-redis client as a message, and every message published once the
// channel flows again arrives, in order.
func TestPubSubFailoverThroughProxy(t *testing.T) {
	cl := redistest.StartCluster(t, redistest.ClusterOptions{Masters: 3, Replicas: 1})
	c := newClient(t, cl, client.Options{})
	logs := &logRecorder{}
	srv := New(c, Options{Logger: slog.New(logs)})
	t.Cleanup(func() { srv.Close() })
	rdb := goRedis(t, srv, 3)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()

	victim := cl.Masters()[0]
	var ch string
	for i := 0; ch == ""; i++ {
		if k := fmt.Sprintf("psfo{%d}", i); cl.MasterOf(int(slots.Of(k))) == victim {
			ch = k
		}
	}
	ps := rdb.SSubscribe(ctx, ch)
	defer ps.Close()
	if _, err := ps.Receive(ctx); err != nil { // the confirmation
		t.Fatal(err)
	}
	type got struct {
		seq int
		at  time.Time
	}
	recv := make(chan got, 10000)
	recvErr := make(chan error, 1)
	go func() {
		for {
			m, err := ps.ReceiveMessage(ctx)
			if err != nil {
				recvErr <- err
				return
			}
			if m.Channel != ch {
				recvErr <- fmt.Errorf("message on %q, want %q", m.Channel, ch)
				return
			}
			n, err := strconv.Atoi(m.Payload)
			if err != nil {
				recvErr <- fmt.Errorf("payload %q", m.Payload)
				return
			}
			recv <- got{n, time.Now()}
		}
	}()
	// A publisher on its own session, every 5 ms; failures during the
	// failover are expected and skipped.
	pub := goRedis(t, srv, 2)
	var seq atomic.Int64
	var amu sync.Mutex
	acked := map[int]bool{}
	stop := make(chan struct{})
	pubDone := make(chan struct{})
	go func() {
		defer close(pubDone)
		for {
			select {
			case <-stop:
				return
			case <-time.After(5 * time.Millisecond):
			}
			pctx, pcancel := context.WithTimeout(ctx, time.Second)
			n := seq.Add(1)
			if pub.SPublish(pctx, ch, n).Err() == nil {
				amu.Lock()
				acked[int(n)] = true
				amu.Unlock()
			}
			pcancel()
		}
	}()
	defer func() {
		close(stop)
		<-pubDone
	}()
	// waitFor returns the first message numbered above n.
	waitFor := func(n int64, within time.Duration) got {
		t.Helper()
		deadline := time.After(within)
		for {
			select {
			case g := <-recv:
				if int64(g.seq) > n {
					return g
				}
			case err := <-recvErr:
				t.Fatalf("go-redis ReceiveMessage: %v", err)
			case <-deadline:
				t.Fatalf("no message numbered above %d within %v", n, within)
			}
		}
	}
	waitFor(0, 10*time.Second)

	killAt := time.Now()
	victim.Kill()
	p := cl.WaitPromotion(ctx, victim)
	resumed := waitFor(seq.Load(), 10*time.Second)
	t.Logf("kill -9 -> promotion %v; promotion -> first message published after it arrives %v",
		p.First.Sub(killAt).Round(time.Millisecond), resumed.at.Sub(p.First).Round(time.Millisecond))

	// From here on the order holds and no acknowledged message is lost.
	from := int(seq.Load())
	received := map[int]bool{}
	last := waitFor(int64(from), 10*time.Second).seq
	received[last] = true
	for last < from+100 {
		g := waitFor(0, 10*time.Second)
		require.Greater(t, g.seq, last, "messages out of order after the failover")
		last = g.seq
		received[last] = true
	}
	amu.Lock()
	for n := from + 1; n <= last; n++ {
		if acked[n] && !received[n] {
			t.Errorf("acknowledged message %d (published after the channel flowed again) never arrived", n)
		}
	}
	amu.Unlock()
	deadline := time.Now().Add(10 * time.Second)
	for logs.count("proxy: subscription interrupted") == 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	require.Positive(t, logs.count("proxy: subscription interrupted"), "the interruption was not logged")
}
