package proxy

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"
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
