package client

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/slotrouter/slotrouter/internal/redistest"
)

// clientConns counts the server's client connections other than the one
// asking.
func clientConns(t *testing.T, srv *redistest.Server) int {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	v, err := srv.Do(ctx, "CLIENT", "LIST")
	if err != nil {
		t.Fatal(err)
	}
	return strings.Count(fmt.Sprint(v), "\n") - 1
}

// pollUntil polls cond until it holds or d passes.
func pollUntil(d time.Duration, cond func() bool) bool {
	for end := time.Now().Add(d); ; time.Sleep(5 * time.Millisecond) {
		if cond() {
			return true
		}
		if time.Now().After(end) {
			return false
		}
	}
}

// Close used to leave an in-flight BLPOP running until it ended by itself
// (4 s); it now interrupts every call in flight, blocking ones, scripts and
// callers waiting for room included, and they return ErrClosed at once.
func TestCloseInterruptsInFlight(t *testing.T) {
	srv := redistest.StartServer(t, redistest.ServerOptions{})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	c := standaloneClient(t, srv, Options{MaxInflight: 2})
	if err := c.Do(ctx, "PING").Err(); err != nil {
		t.Fatal(err)
	}
	calls := map[string][]any{
		"BLPOP":  {"BLPOP", "close:q", 0},
		"EVAL":   busyArgs(3*time.Second, "x"),
		"GET":    {"GET", "close:k"}, // queued behind the script
		"queued": {"GET", "close:k"}, // waits for room: MaxInflight is 2
	}
	type outcome struct {
		name string
		err  error
		at   time.Time
	}
	out := make(chan outcome, len(calls))
	for _, name := range []string{"BLPOP", "EVAL", "GET", "queued"} {
		go func() {
			err := c.Do(context.Background(), calls[name]...).Err()
			out <- outcome{name, err, time.Now()}
		}()
		time.Sleep(50 * time.Millisecond)
	}
	closed := time.Now()
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	for range calls {
		select {
		case o := <-out:
			if !errors.Is(o.err, ErrClosed) {
				t.Errorf("%s: want ErrClosed, got %v", o.name, o.err)
			}
			if d := o.at.Sub(closed); d > overrunCap {
				t.Errorf("%s returned %v after Close", o.name, d)
			}
		case <-time.After(2 * time.Second):
			t.Fatal("a call in flight was not interrupted by Close")
		}
	}
	if err := c.Do(ctx, "PING").Err(); !errors.Is(err, ErrClosed) {
		t.Fatalf("after Close: %v", err)
	}
	if !pollUntil(5*time.Second, func() bool { return clientConns(t, srv) == 0 }) {
		t.Fatalf("%d connections left open after Close", clientConns(t, srv))
	}
}

// Do racing Close: whatever wins, every call returns, nothing stays open
// (a node added as the map was swapped used to leak its connection and
// health timer), and no goroutine outlives the client.
func TestDoCloseRaceLeaksNothing(t *testing.T) {
	a := redistest.StartServer(t, redistest.ServerOptions{})
	b := redistest.StartServer(t, redistest.ServerOptions{})
	base := runtime.NumGoroutine()
	for round := range 10 {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		c, err := New(ctx, Options{Addrs: []string{a.Addr}})
		if err != nil {
			cancel()
			t.Fatal(err)
		}
		var wg sync.WaitGroup
		for i := range 8 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for j := 0; ; j++ {
					var err error
					switch (i + j) % 3 {
					case 0:
						err = c.Do(ctx, "SET", fmt.Sprint("race:", i), j).Err()
					case 1:
						err = c.DoOn(ctx, b.Addr, "GET", "x").Err() // a node only this call adds
					default:
						err = c.Do(ctx, "BLPOP", fmt.Sprint("race:q", i), 0.01).Err()
					}
					if errors.Is(err, ErrClosed) {
						return
					}
					if err != nil && !errors.Is(err, ErrNil) {
						t.Errorf("round %d: %v", round, err)
						return
					}
				}
			}()
		}
		time.Sleep(time.Duration(round) * 5 * time.Millisecond)
		_ = c.Close()
		wg.Wait()
		cancel()
	}
	for _, s := range []*redistest.Server{a, b} {
		if !pollUntil(5*time.Second, func() bool { return clientConns(t, s) == 0 }) {
			t.Errorf("%s: %d connections left open", s.Addr, clientConns(t, s))
		}
	}
	if !pollUntil(5*time.Second, func() bool { return runtime.NumGoroutine() <= base }) {
		buf := make([]byte, 1<<16)
		t.Fatalf("%d goroutines before, %d after closing every client:\n%s", base, runtime.NumGoroutine(), buf[:runtime.Stack(buf, true)])
	}
}

// standaloneClient connects to one plain server (role-probed) and closes the
// client at cleanup.
func standaloneClient(t *testing.T, srv *redistest.Server, o Options) *Client {
	t.Helper()
	o.Addrs = []string{srv.Addr}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	c, err := New(ctx, o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}
