package proxy

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestSessionLocalCommands: the connection-state commands are answered by
// the proxy itself, with redis-server's bytes.
func TestSessionLocalCommands(t *testing.T) {
	srv := newServer(t, Options{})
	r := dialRaw(t, listen(t, srv))
	require.Equal(t, "+PONG\r\n", r.do("PING"))
	require.Equal(t, "$2\r\nhi\r\n", r.do("PING hi"))
	require.Equal(t, "$5\r\nhello\r\n", r.do("ECHO hello"))
	require.Equal(t, "+OK\r\n", r.do("SELECT 0"))
	require.True(t, strings.HasPrefix(r.do("SELECT 1"), "-ERR DB index is out of range"))
	require.Equal(t, "$-1\r\n", r.do("CLIENT GETNAME"))
	require.Equal(t, "+OK\r\n", r.do("CLIENT SETNAME app-1"))
	require.Equal(t, "$5\r\napp-1\r\n", r.do("CLIENT GETNAME"))
	require.True(t, strings.HasPrefix(r.do("CLIENT SETNAME 'a b'"), "-ERR Client names cannot contain spaces"))
	id := r.do("CLIENT ID")
	require.Regexp(t, `^:\d+\r\n$`, id)
	require.Equal(t, "+OK\r\n", r.do("CLIENT SETINFO LIB-NAME x"))
	for _, cmd := range []string{"CLUSTER NODES", "READONLY", "ASKING", "READWRITE", "CLUSTER SLOTS"} {
		got := r.do(cmd)
		require.True(t, strings.HasPrefix(got, "-ERR "+strings.Fields(cmd)[0]+" is not supported by the slotrouter proxy"), "%s: %q", cmd, got)
	}
	require.True(t, strings.HasPrefix(r.do("MONITOR"), "-ERR MONITOR is not supported"))
	require.True(t, strings.HasPrefix(r.do("CLIENT KILL ID 1"), "-ERR CLIENT KILL is not supported"))

	// Unknown commands get the server's error; the session goes on.
	require.True(t, strings.HasPrefix(r.do("NOSUCHCOMMAND a b"), "-ERR unknown command"), "unknown command")
	require.Equal(t, "+PONG\r\n", r.do("PING"))

	// HELLO switches the protocol; the reply is a map in RESP3.
	hello := r.do("HELLO 3")
	require.True(t, strings.HasPrefix(hello, "%7\r\n$6\r\nserver\r\n$5\r\nredis\r\n"), hello)
	require.Contains(t, hello, "$5\r\nproto\r\n:3\r\n")
	require.Equal(t, "_\r\n", r.do("GET proxy:nokey"))
	r.do("DEL proxy:h")
	require.Equal(t, ":1\r\n", r.do("HSET proxy:h f v"))
	require.Equal(t, "%1\r\n$1\r\nf\r\n$1\r\nv\r\n", r.do("HGETALL proxy:h"))
	require.True(t, strings.HasPrefix(r.do("HELLO 4"), "-NOPROTO"))
	require.True(t, strings.HasPrefix(r.do("HELLO 2"), "*14\r\n"))
	require.Equal(t, "*2\r\n$1\r\nf\r\n$1\r\nv\r\n", r.do("HGETALL proxy:h"))

	// RESET: back to RESP2, no name.
	r.do("HELLO 3")
	require.Equal(t, "+RESET\r\n", r.do("RESET"))
	require.Equal(t, "$-1\r\n", r.do("CLIENT GETNAME"))
	require.Equal(t, "$-1\r\n", r.do("GET proxy:nokey"))

	require.Equal(t, "+OK\r\n", r.do("QUIT"))
	require.True(t, r.closed())
}

// TestSessionPipelineOrder: a client's pipelined requests, ordinary and
// local mixed, are answered in order, in one batch.
func TestSessionPipelineOrder(t *testing.T) {
	srv := newServer(t, Options{})
	r := dialRaw(t, listen(t, srv))
	var req, want strings.Builder
	for i := range 300 {
		switch i % 3 {
		case 0:
			fmt.Fprintf(&req, "SET po%d %d\r\n", i, i)
			want.WriteString("+OK\r\n")
		case 1:
			fmt.Fprintf(&req, "GET po%d\r\n", i-1)
			fmt.Fprintf(&want, "$%d\r\n%d\r\n", len(fmt.Sprint(i-1)), i-1)
		case 2:
			fmt.Fprintf(&req, "ECHO e%d\r\n", i)
			fmt.Fprintf(&want, "$%d\r\ne%d\r\n", len(fmt.Sprint(i))+1, i)
		}
	}
	r.send(req.String())
	var got strings.Builder
	for range 300 {
		got.WriteString(r.reply())
	}
	require.Equal(t, want.String(), got.String())
}

func TestSessionAuth(t *testing.T) {
	srv := newServer(t, Options{Password: "sekret", Users: map[string]string{"app": "pw"}})
	addr := listen(t, srv)
	r := dialRaw(t, addr)
	require.Equal(t, "-NOAUTH Authentication required.\r\n", r.do("GET x"))
	require.True(t, strings.HasPrefix(r.do("HELLO 3"), "-NOAUTH HELLO must be called"))
	require.Equal(t, "-WRONGPASS invalid username-password pair or user is disabled.\r\n", r.do("AUTH nope"))
	require.Equal(t, "+OK\r\n", r.do("AUTH sekret"))
	require.Equal(t, "+PONG\r\n", r.do("PING"))

	r2 := dialRaw(t, addr)
	require.Equal(t, "-WRONGPASS invalid username-password pair or user is disabled.\r\n", r2.do("AUTH app nope"))
	require.True(t, strings.HasPrefix(r2.do("HELLO 3 AUTH app pw SETNAME n1"), "%7\r\n"))
	require.Equal(t, "$2\r\nn1\r\n", r2.do("CLIENT GETNAME"))
	require.Equal(t, "+RESET\r\n", r2.do("RESET"))
	require.Equal(t, "-NOAUTH Authentication required.\r\n", r2.do("PING"))

	// Before AUTH, requests are held to Redis's small limits.
	r3 := dialRaw(t, addr)
	r3.send("*11\r\n")
	require.Equal(t, "-ERR Protocol error: unauthenticated multibulk length\r\n", r3.reply())
	require.True(t, r3.closed())

	// Without credentials configured, AUTH says so as redis-server does.
	open := dialRaw(t, listen(t, newServer(t, Options{})))
	require.True(t, strings.HasPrefix(open.do("AUTH x"), "-ERR AUTH <password> called without any password configured"))
}

// TestSessionBadInput: malformed and oversized requests get Redis's
// protocol error and a disconnect; other sessions are untouched.
func TestSessionBadInput(t *testing.T) {
	srv := newServer(t, Options{})
	addr := listen(t, srv)
	bystander := dialRaw(t, addr)
	require.Equal(t, "+OK\r\n", bystander.do("SET bad:by 1"))

	for _, tc := range []struct{ in, want string }{
		{"*2\r\n$3\r\nGET\r\n:1\r\n", "-ERR Protocol error: expected '$', got ':'\r\n"},
		{"*1\r\n$-5\r\n", "-ERR Protocol error: invalid bulk length\r\n"},
		{"*1\r\n$536870913\r\n", "-ERR Protocol error: invalid bulk length\r\n"},
		{"*x\r\n", "-ERR Protocol error: invalid multibulk length\r\n"},
		{"*3000000000\r\n", "-ERR Protocol error: invalid multibulk length\r\n"},
		{"SET \"a b\"c\r\n", "-ERR Protocol error: unbalanced quotes in request\r\n"},
		{"*1\r\n" + "$" + strings.Repeat("1", 70000) + "\r\n", "-ERR Protocol error: too big bulk count string\r\n"},
		{strings.Repeat("x", 70000), "-ERR Protocol error: too big inline request\r\n"},
		// A pipelined good request before the bad one is still answered.
		{"PING\r\n*1\r\n$3\r\nGETX\r\n", "+PONG\r\n-ERR Protocol error: bulk not terminated by CRLF\r\n"},
	} {
		r := dialRaw(t, addr)
		r.send(tc.in)
		var got strings.Builder
		for range strings.Count(tc.want, "\r\n") {
			got.WriteString(r.reply())
		}
		require.Equal(t, tc.want, got.String(), "input %.40q", tc.in)
		require.True(t, r.closed(), "input %.40q: connection not closed", tc.in)
	}
	// A huge bulk header costs nothing until its bytes come: the session
	// waits for them without allocating 512 MB.
	big := dialRaw(t, addr)
	big.send("*3\r\n$3\r\nSET\r\n$7\r\nbad:big\r\n$536870912\r\nabc")
	require.Equal(t, "$1\r\n1\r\n", bystander.do("GET bad:by"))
	require.Equal(t, "+PONG\r\n", bystander.do("PING"))
}

// TestSessionMaxClients: one session over the limit is refused as
// redis-server refuses it; the others keep working, and a freed slot is
// reusable.
func TestSessionMaxClients(t *testing.T) {
	srv := newServer(t, Options{MaxClients: 3})
	addr := listen(t, srv)
	var conns []*rawConn
	for range 3 {
		r := dialRaw(t, addr)
		require.Equal(t, "+PONG\r\n", r.do("PING"))
		conns = append(conns, r)
	}
	extra := dialRaw(t, addr)
	require.Equal(t, "-ERR max number of clients reached\r\n", extra.reply())
	require.True(t, extra.closed())
	require.Equal(t, "+PONG\r\n", conns[0].do("PING"))
	conns[2].do("QUIT")
	require.Eventually(t, func() bool { return srv.Sessions() == 2 }, 5*time.Second, 5*time.Millisecond)
	again := dialRaw(t, addr)
	require.Equal(t, "+PONG\r\n", again.do("PING"))
}

// TestSessionSlowReader: a client that sends and never reads is cut off
// after WriteTimeout; a session next to it is not delayed.
func TestSessionSlowReader(t *testing.T) {
	srv := newServer(t, Options{WriteTimeout: 500 * time.Millisecond})
	addr := listen(t, srv)
	other := dialRaw(t, addr)
	val := strings.Repeat("v", 1<<20)
	other.send(encode("SET", "slow:big", val))
	require.Equal(t, "+OK\r\n", other.reply())

	hog := dialRaw(t, addr)
	require.Eventually(t, func() bool { return srv.Sessions() == 2 }, 5*time.Second, time.Millisecond)
	began := time.Now()
	done := make(chan struct{})
	go func() {
		defer close(done)
		// 20 MB of replies asked for per write; none read.
		req := []byte(strings.Repeat("GET slow:big\r\n", 20))
		for time.Since(began) < 10*time.Second {
			hog.c.SetWriteDeadline(time.Now().Add(time.Second))
			if _, err := hog.c.Write(req); err != nil {
				return
			}
		}
	}()
	require.Eventually(t, func() bool { return srv.Sessions() == 1 }, 10*time.Second, 10*time.Millisecond,
		"the non-reading session was not disconnected")
	took := time.Since(began)
	t.Logf("non-reading client disconnected %v after it started", took.Round(time.Millisecond))
	require.GreaterOrEqual(t, took, 500*time.Millisecond, "disconnected before WriteTimeout")
	for range 20 {
		start := time.Now()
		require.Equal(t, "+PONG\r\n", other.do("PING"))
		require.Less(t, time.Since(start), time.Second)
	}
	<-done
}

// TestSessionDrain: Shutdown lets a command in flight finish and closes
// idle sessions; no new connection is accepted.
func TestSessionDrain(t *testing.T) {
	srv := newServer(t, Options{})
	addr := listen(t, srv)
	busy := dialRaw(t, addr)
	idle := dialRaw(t, addr)
	require.Equal(t, "+PONG\r\n", idle.do("PING"))
	key := fmt.Sprintf("drain:%d", time.Now().UnixNano())
	busy.send("BLPOP " + key + " 1\r\n") // in flight for 1 s
	require.Eventually(t, func() bool { return srv.Sessions() == 2 }, 5*time.Second, time.Millisecond)
	time.Sleep(100 * time.Millisecond) // let the BLPOP reach the server

	var wg sync.WaitGroup
	wg.Add(1)
	var shutErr error
	go func() {
		defer wg.Done()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		shutErr = srv.Shutdown(ctx)
	}()
	require.True(t, idle.closed(), "idle session not closed by Shutdown")
	require.Equal(t, "*-1\r\n", busy.reply(), "the BLPOP in flight must finish")
	require.True(t, busy.closed())
	wg.Wait()
	require.NoError(t, shutErr)
	_, err := srv.DialContext(context.Background(), "tcp", "x")
	require.ErrorIs(t, err, ErrServerClosed)
}
