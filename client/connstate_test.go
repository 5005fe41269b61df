package client

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/slotrouter/slotrouter/internal/redistest"
	"github.com/slotrouter/slotrouter/slots"
)

// connStateCalls are the connection-state commands of the issue, as a user
// would type them, with the API each error must name.
var connStateCalls = []struct {
	args []any
	use  string
}{
	{[]any{"MULTI"}, "Client.TxPipeline"},
	{[]any{"EXEC"}, "Client.TxPipeline"},
	{[]any{"DISCARD"}, "Client.TxPipeline"},
	{[]any{"WATCH", "k"}, "Client.Watch"},
	{[]any{"UNWATCH"}, "Client.Watch"},
	{[]any{"SUBSCRIBE", "ch"}, "use Client.Subscribe/PSubscribe/SSubscribe"},
	{[]any{"PSUBSCRIBE", "ch*"}, "use Client.Subscribe/PSubscribe/SSubscribe"},
	{[]any{"SSUBSCRIBE", "ch"}, "use Client.Subscribe/PSubscribe/SSubscribe"},
	{[]any{"UNSUBSCRIBE"}, "use Client.Subscribe/PSubscribe/SSubscribe"},
	{[]any{"PUNSUBSCRIBE"}, "use Client.Subscribe/PSubscribe/SSubscribe"},
	{[]any{"SUNSUBSCRIBE"}, "use Client.Subscribe/PSubscribe/SSubscribe"},
	{[]any{"SELECT", 1}, "Options.DB"},
	{[]any{"HELLO", 3}, "Options.Protocol"},
	{[]any{"AUTH", "pw"}, "Options.Username"},
	{[]any{"CLIENT", "SETNAME", "x"}, "Options.ClientName"},
	{[]any{"CLIENT", "TRACKING", "ON"}, "Client.Conn"},
	{[]any{"CLIENT", "CACHING", "YES"}, "Client.Conn"},
	{[]any{"CLIENT", "REPLY", "OFF"}, "Client.Conn"},
	{[]any{"CLIENT", "NO-EVICT", "ON"}, "Client.Conn"},
	{[]any{"READONLY"}, "Options.ReadPolicy"},
	{[]any{"READWRITE"}, "Options.ReadPolicy"},
	{[]any{"ASKING"}, "ASKING itself"},
	{[]any{"RESET"}, "Client.Conn"},
	{[]any{"MONITOR"}, "Conn.Receive"},
	{[]any{"QUIT"}, "Client.Close"},
	{[]any{"WAIT", 1, 100}, "Client.Conn"},
}

// The classification must cover exactly the commands that change the
// connection: a flag change in a new table must not silently let one
// through (or start refusing PUBLISH).
func TestConnStateClassifiesTheTable(t *testing.T) {
	var got []string
	slots.DefaultTable().Commands(func(c *slots.Command) bool {
		if connStateUse(c) != "" {
			got = append(got, c.Name)
		}
		return true
	})
	slices.Sort(got)
	want := []string{"asking", "auth", "client|caching", "client|no-evict", "client|reply", "client|setname",
		"client|tracking", "discard", "exec", "hello", "monitor", "multi", "psubscribe", "punsubscribe", "quit",
		"readonly", "readwrite", "reset", "select", "ssubscribe", "subscribe", "sunsubscribe", "unsubscribe",
		"unwatch", "wait", "watch"}
	// client|no-touch and waitaof are newer than the generated 7.0 table:
	// they are classified by name once COMMAND INFO teaches them.
	if !slices.Equal(got, want) {
		t.Fatalf("classified %v\nwant       %v", got, want)
	}
	for _, name := range []string{"client|no-touch", "waitaof"} {
		c := &slots.Command{Name: name, Flags: slots.Noscript | slots.NoKeys}
		if connStateUse(c) == "" {
			t.Errorf("%s not classified", name)
		}
	}
	for _, name := range []string{"publish", "spublish", "get", "set", "blpop", "eval", "client|list", "pubsub|channels"} {
		c := slots.DefaultTable().Lookup(argsOf(strings.Split(strings.ToUpper(name), "|")...))
		if c == nil {
			t.Fatalf("%s not in the table", name)
		}
		if use := connStateUse(c); use != "" {
			t.Errorf("%s classified as connection state (%s)", name, use)
		}
	}
}

func argsOf(s ...string) [][]byte {
	out := make([][]byte, len(s))
	for i := range s {
		out[i] = []byte(s[i])
	}
	return out
}

// Every connection-state command is refused through Do, DoOn and Pipeline
// while other callers hammer the same shared connections, and none of
// their replies is ever wrong: the server never saw the refused commands.
func TestConnStateRefusedOnBusyConnection(t *testing.T) {
	cl := startCluster(t, redistest.ClusterOptions{Masters: 3})
	c := newTestClient(t, cl, Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	stop := make(chan struct{})
	var wg sync.WaitGroup
	var checked, wrong atomic.Int64
	var firstWrong atomic.Value
	for w := range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				key := fmt.Sprintf("busy:%d:%d", w, i%50)
				val := strconv.Itoa(w*1_000_000 + i)
				check := func(what string, r Result, want string) {
					got, err := r.Text()
					checked.Add(1)
					if err != nil || got != want {
						wrong.Add(1)
						firstWrong.CompareAndSwap(nil, fmt.Sprintf("%s %s: got %q, %v; want %q", what, key, got, err, want))
					}
				}
				check("SET", c.Do(ctx, "SET", key, val), "OK")
				check("GET", c.Do(ctx, "GET", key), val)
				n := c.Do(ctx, "INCR", key)
				v, _ := strconv.Atoi(val)
				check("INCR", n, strconv.Itoa(v+1))
			}
		}()
	}

	masters := cl.Masters()
	for round := range 5 {
		for _, call := range connStateCalls {
			name := fmt.Sprint(call.args)
			checkRefused := func(via string, err error) {
				t.Helper()
				if !errors.Is(err, ErrConnState) {
					t.Fatalf("round %d %s %s: err %v, want ErrConnState", round, via, name, err)
				}
				if !strings.Contains(err.Error(), call.use) {
					t.Fatalf("%s %s: %q does not name %q", via, name, err, call.use)
				}
			}
			checkRefused("Do", c.Do(ctx, call.args...).Err())
			checkRefused("DoOn", c.DoOn(ctx, masters[round%len(masters)].Addr, call.args...).Err())
			p := c.Pipeline()
			p.Do("SET", "pipe:"+name, "v")
			p.Do(call.args...)
			p.Do("GET", "pipe:"+name)
			res, _ := p.Exec(ctx)
			checkRefused("Pipeline", res[1].Err())
			if got, err := res[2].Text(); err != nil || got != "v" {
				t.Fatalf("pipeline neighbour of %s: %q, %v", name, got, err)
			}
		}
	}
	// Keep the load going a little after the last refusal.
	deadline := time.Now().Add(300 * time.Millisecond)
	for time.Now().Before(deadline) && checked.Load() < 3000 {
		time.Sleep(10 * time.Millisecond)
	}
	close(stop)
	wg.Wait()
	if n := wrong.Load(); n > 0 {
		t.Fatalf("%d of %d replies wrong; first: %v", n, checked.Load(), firstWrong.Load())
	}
	if checked.Load() == 0 {
		t.Fatal("the load made no calls")
	}
	for _, m := range masters {
		v, err := m.Do(ctx, "INFO", "commandstats")
		if err != nil {
			t.Fatal(err)
		}
		// (Not HELLO: the harness's own go-redis connections send it.)
		for _, cmd := range []string{"multi", "exec", "watch", "select", "subscribe", "client|reply", "wait", "readwrite", "monitor"} {
			if strings.Contains(v.(string), "cmdstat_"+cmd+":") {
				t.Errorf("%s ran %s", m.Name, cmd)
			}
		}
	}
	t.Logf("%d replies checked, all correct", checked.Load())
}
