package sentinel

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/slotrouter/slotrouter/topology"
)

// fakeNet answers commands per address from a table the test edits as it goes.
type fakeNet struct {
	mu      sync.Mutex
	answers map[string]any // "addr CMD args" -> reply or error
	calls   []string
}

// errHang as an answer makes the command hang until its context ends (a SIGSTOPped node).
var errHang = errors.New("hang")

func newFake() *fakeNet { return &fakeNet{answers: map[string]any{}} }

func (f *fakeNet) set(key string, v any) {
	f.mu.Lock()
	f.answers[key] = v
	f.mu.Unlock()
}

func (f *fakeNet) exec(ctx context.Context, addr string, args ...any) (any, error) {
	parts := []string{addr}
	for _, a := range args {
		parts = append(parts, fmt.Sprint(a))
	}
	key := strings.Join(parts, " ")
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, key)
	v, ok := f.answers[key]
	if v == errHang {
		f.mu.Unlock()
		<-ctx.Done()
		f.mu.Lock()
		return nil, ctx.Err()
	}
	if !ok {
		return nil, errors.New("dial tcp " + addr + ": connection refused")
	}
	if err, isErr := v.(error); isErr {
		return nil, err
	}
	return v, nil
}

func replicaEntry(ip, port, flags string) []any {
	return []any{"name", ip + ":" + port, "ip", ip, "port", port, "runid", "x", "flags", flags,
		"master-link-status", "ok", "slave-repl-offset", "77"}
}

func quiet() *slog.Logger { return slog.New(slog.DiscardHandler) }

func TestDiscoverVerifiesMaster(t *testing.T) {
	f := newFake()
	const s1, s2, m, r1, r2, r3 = "10.0.0.1:26379", "10.0.0.2:26379", "10.0.1.1:6379", "10.0.1.2:6379", "10.0.1.3:6379", "10.0.1.4:6379"
	// s1 is down; s2 names m, which is still a replica (failover caught half-way).
	f.set(s2+" SENTINEL get-master-addr-by-name mymaster", []any{"10.0.1.1", "6379"})
	f.set(s2+" SENTINEL replicas mymaster", []any{
		replicaEntry("10.0.1.2", "6379", "slave"),
		replicaEntry("10.0.1.3", "6379", "s_down,slave"),
		replicaEntry("10.0.1.4", "6379", "slave,disconnected"),
		replicaEntry("10.0.1.1", "6379", "slave"), // the promoted node, still listed
		replicaEntry("?", "0", "slave"),
	})
	f.set(s2+" SENTINEL sentinels mymaster", []any{[]any{"name", "abc", "ip", "10.0.0.3", "port", "26379", "flags", "sentinel"}})
	f.set(m+" ROLE", []any{"slave", "10.0.1.9", int64(6379), "connected", int64(5)})

	src, err := New(Options{MasterName: "mymaster", Sentinels: []string{s1, s2}, Exec: f.exec, Reconcile: -1, Logger: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	ctx := context.Background()
	snap, err := src.Discover(ctx, nil, nil)
	var ue *UnverifiedError
	var nm *NotMasterError
	if snap != nil || !errors.As(err, &ue) || !errors.Is(err, ErrUnverified) || !errors.As(err, &nm) || nm.Addr != m {
		t.Fatalf("Discover with m still a replica = %v, %v; want *UnverifiedError with *NotMasterError", snap, err)
	}
	if len(ue.Attempts) != 2 || ue.Attempts[1].Master != m {
		t.Fatalf("attempts %+v", ue.Attempts)
	}

	f.set(m+" ROLE", []any{"master", int64(1234), []any{}})
	snap, err = src.Discover(ctx, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	sh := snap.Shards()
	if len(sh) != 1 || sh[0].Master.Addr != m || sh[0].Master.ReplOffset != 1234 || snap.Covered() != 16384 {
		t.Fatalf("snapshot %v", snap)
	}
	if len(sh[0].Replicas) != 1 || sh[0].Replicas[0].Addr != r1 || sh[0].Replicas[0].ReplOffset != 77 {
		t.Fatalf("replicas %v, want only %s (not %s s_down, %s disconnected, nor the master)", sh[0].Replicas, r1, r2, r3)
	}
	// The sentinel that answered goes first next time; the learnt one is appended.
	if got := src.Sentinels(); !slices.Equal(got, []string{s2, s1, "10.0.0.3:26379"}) {
		t.Fatalf("Sentinels() = %v", got)
	}
}

func TestOldSentinelSlavesFallback(t *testing.T) {
	f := newFake()
	const s1 = "10.0.0.1:26379"
	f.set(s1+" SENTINEL get-master-addr-by-name mymaster", []any{"10.0.1.1", "6379"})
	f.set(s1+" SENTINEL replicas mymaster", errors.New("ERR Unknown sentinel subcommand 'replicas'"))
	f.set(s1+" SENTINEL slaves mymaster", []any{replicaEntry("10.0.1.2", "6379", "slave")})
	f.set("10.0.1.1:6379 ROLE", []any{"master", int64(1), []any{}})
	src, err := New(Options{MasterName: "mymaster", Sentinels: []string{s1}, Exec: f.exec, Reconcile: -1, Logger: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	snap, err := src.Discover(context.Background(), nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if r := snap.Shards()[0].Replicas; len(r) != 1 || r[0].Addr != "10.0.1.2:6379" {
		t.Fatalf("replicas %v", r)
	}
}

// The router's Source and Notifier, spelt out so this package's tests do not depend on router.
var _ interface {
	Discover(context.Context, *topology.Snapshot, func(string) bool) (*topology.Snapshot, error)
	Changed() <-chan struct{}
} = (*Source)(nil)

func TestSuspectMasterIsStillVerified(t *testing.T) {
	f := newFake()
	const s1, m = "10.0.0.1:26379", "10.0.1.1:6379"
	f.set(s1+" SENTINEL get-master-addr-by-name mymaster", []any{"10.0.1.1", "6379"})
	f.set(s1+" SENTINEL replicas mymaster", []any{})
	f.set(m+" ROLE", errHang)
	src, err := New(Options{MasterName: "mymaster", Sentinels: []string{s1}, Exec: f.exec, Timeout: 5 * time.Second,
		SuspectTimeout: 50 * time.Millisecond, Reconcile: -1, Logger: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	start := time.Now()
	_, err = src.Discover(context.Background(), nil, func(addr string) bool { return addr == m })
	if !errors.Is(err, ErrUnverified) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("hung suspect master: %v, want unverified with a deadline error", err)
	}
	if took := time.Since(start); took > 2*time.Second {
		t.Fatalf("Discover took %v with a hung suspect master, want about Attempts x SuspectTimeout", took)
	}
}

func TestDiscoverUnknownMaster(t *testing.T) {
	f := newFake()
	f.set("10.0.0.1:26379 SENTINEL get-master-addr-by-name nope", nil)
	f.set("10.0.0.2:26379 SENTINEL get-master-addr-by-name nope", nil)
	src, err := New(Options{MasterName: "nope", Sentinels: []string{"10.0.0.1:26379", "10.0.0.2:26379"}, Exec: f.exec, Reconcile: -1, Logger: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	_, err = src.Discover(context.Background(), nil, nil)
	var ue *UnknownMasterError
	if !errors.As(err, &ue) || !errors.Is(err, ErrUnknownMaster) || len(ue.Sentinels) != 2 {
		t.Fatalf("Discover = %v, want *UnknownMasterError from both", err)
	}
}

func TestParseMasterAddr(t *testing.T) {
	for _, tt := range []struct {
		in   any
		addr string
		ok   bool
		bad  bool
	}{
		{[]any{"127.0.0.1", "30101"}, "127.0.0.1:30101", true, false},
		{[]any{"127.0.0.1", int64(30101)}, "127.0.0.1:30101", true, false},
		{[]any{"::1", "6379"}, "[::1]:6379", true, false},
		{nil, "", false, false},
		{[]any{}, "", false, false},
		{[]any{"127.0.0.1"}, "", false, true},
		{[]any{"127.0.0.1", "x"}, "", false, true},
		{[]any{"127.0.0.1", "0"}, "", false, true},
		{"127.0.0.1:6379", "", false, true},
	} {
		addr, ok, err := parseMasterAddr(tt.in)
		var re *ReplyError
		if addr != tt.addr || ok != tt.ok || errors.As(err, &re) != tt.bad {
			t.Errorf("parseMasterAddr(%#v) = %q %v %v", tt.in, addr, ok, err)
		}
	}
}

func TestRelevant(t *testing.T) {
	s := &Source{o: Options{MasterName: "mymaster"}}
	for _, tt := range []struct {
		ch, payload string
		want        bool
	}{
		{"+switch-master", "mymaster 127.0.0.1 30101 127.0.0.1 30102", true},
		{"+switch-master", "other 127.0.0.1 30101 127.0.0.1 30102", false},
		{"+odown", "master mymaster 127.0.0.1 30101 #quorum 3/2", true},
		{"+sdown", "master mymasterx 127.0.0.1 30101", false},
		{"+sdown", "slave 127.0.0.1:30102 127.0.0.1 30102 @ mymaster 127.0.0.1 30101", true},
		{"-sdown", "slave 127.0.0.1:30102 127.0.0.1 30102 @ other 127.0.0.1 30101", false},
		{"+sdown", "", false},
	} {
		if got := s.relevant(tt.ch, tt.payload); got != tt.want {
			t.Errorf("relevant(%q, %q) = %v", tt.ch, tt.payload, got)
		}
	}
}

func TestEventsSignalAndCloseStops(t *testing.T) {
	events := make(chan [2]string)
	var mu sync.Mutex
	subscribed := map[string]int{}
	sub := func(ctx context.Context, addr string, channels []string, fn func(string, string)) error {
		mu.Lock()
		subscribed[addr]++
		mu.Unlock()
		if addr == "10.0.0.2:26379" {
			return errors.New("connection refused") // retried with back-off
		}
		for {
			select {
			case <-ctx.Done():
				return ctx.Err()
			case e := <-events:
				fn(e[0], e[1])
			}
		}
	}
	src, err := New(Options{MasterName: "mymaster", Sentinels: []string{"10.0.0.1:26379", "10.0.0.2:26379"},
		Exec: newFake().exec, Subscribe: sub, Reconcile: -1, Logger: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	drain := func() {
		for {
			select {
			case <-src.Changed():
			default:
				return
			}
		}
	}
	time.Sleep(50 * time.Millisecond)
	drain()
	events <- [2]string{"+sdown", "master other 1.2.3.4 6379"}
	events <- [2]string{"+switch-master", "mymaster 127.0.0.1 30101 127.0.0.1 30102"}
	select {
	case <-src.Changed():
	case <-time.After(2 * time.Second):
		t.Fatal("no Changed after +switch-master")
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		mu.Lock()
		n := subscribed["10.0.0.2:26379"]
		mu.Unlock()
		if n >= 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("failing subscription not retried")
		}
		time.Sleep(10 * time.Millisecond)
	}
	done := make(chan struct{})
	go func() { src.Close(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Close did not stop the watchers")
	}
	if _, err := src.Discover(context.Background(), nil, nil); !errors.Is(err, ErrClosed) {
		t.Fatalf("Discover after Close = %v", err)
	}
}

func TestReconcileSignalsDifference(t *testing.T) {
	f := newFake()
	const s1 = "10.0.0.1:26379"
	f.set(s1+" SENTINEL get-master-addr-by-name mymaster", []any{"10.0.1.1", "6379"})
	f.set(s1+" SENTINEL replicas mymaster", []any{})
	f.set(s1+" SENTINEL sentinels mymaster", []any{})
	f.set("10.0.1.1:6379 ROLE", []any{"master", int64(1), []any{}})
	src, err := New(Options{MasterName: "mymaster", Sentinels: []string{s1}, Exec: f.exec, Reconcile: 20 * time.Millisecond, Logger: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	if _, err := src.Discover(context.Background(), nil, nil); err != nil {
		t.Fatal(err)
	}
	// Same view: reconciliation stays quiet.
	time.Sleep(100 * time.Millisecond)
	for len(src.Changed()) > 0 {
		<-src.Changed()
	}
	select {
	case <-src.Changed():
		t.Fatal("Changed although nothing changed")
	case <-time.After(100 * time.Millisecond):
	}
	f.set(s1+" SENTINEL get-master-addr-by-name mymaster", []any{"10.0.1.2", "6379"})
	select {
	case <-src.Changed():
	case <-time.After(2 * time.Second):
		t.Fatal("missed switch not caught by reconciliation")
	}
}

func TestOptionsValidation(t *testing.T) {
	exec := newFake().exec
	for _, o := range []Options{
		{},
		{MasterName: "m", Exec: exec},
		{MasterName: "m", Sentinels: []string{"h:1"}},
		{Sentinels: []string{"h:1"}, Exec: exec},
		{MasterName: "m", Sentinels: []string{"h"}, Exec: exec},
	} {
		if _, err := New(o); !errors.Is(err, ErrInvalidOptions) {
			t.Errorf("New(%+v) = %v, want ErrInvalidOptions", o, err)
		}
	}
}
