package client

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/slotrouter/slotrouter/internal/redistest"
)

// Helpers for the Sentinel, role-probe and DNS tests. Every write is a
// script that stores and returns the run_id of the server that executed it,
// so each acknowledged write names the node that took it, a record that a
// later resync cannot erase (the client keeps it).

const whoScript = `local i = redis.call('INFO', 'server')
local id = string.match(i, 'run_id:(%x+)')
redis.call('SET', KEYS[1], id)
return id`

// ack is one write: when it was sent, when its reply came, and the run_id
// of the server that ran it ("" when it failed).
type ack struct {
	key        string
	start, end time.Time
	runID      string
	err        error
}

// writer writes continuously through one client from a few goroutines.
type writer struct {
	c    *Client
	stop chan struct{}
	wg   sync.WaitGroup

	mu   sync.Mutex
	acks []ack
}

func startWriter(t *testing.T, c *Client, workers int) *writer {
	w := &writer{c: c, stop: make(chan struct{})}
	for i := range workers {
		w.wg.Add(1)
		go w.run(i)
	}
	t.Cleanup(w.halt)
	return w
}

func (w *writer) run(id int) {
	w.every(2*time.Millisecond, func(seq int) { w.write("w:" + strconv.Itoa(id) + ":" + strconv.Itoa(seq)) })
}

// every calls f with 0, 1, 2, ... every d until halt; the caller did wg.Add.
func (w *writer) every(d time.Duration, f func(seq int)) {
	defer w.wg.Done()
	tick := time.NewTicker(d)
	defer tick.Stop()
	for seq := 0; ; seq++ {
		select {
		case <-w.stop:
			return
		case <-tick.C:
		}
		f(seq)
	}
}

// write runs one write with a 2 s deadline and records it.
func (w *writer) write(key string) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	a := ack{key: key, start: time.Now()}
	a.runID, a.err = w.c.Do(ctx, "EVAL", whoScript, 1, key).Text()
	a.end = time.Now()
	w.mu.Lock()
	w.acks = append(w.acks, a)
	w.mu.Unlock()
}

func (w *writer) halt() {
	select {
	case <-w.stop:
	default:
		close(w.stop)
	}
	w.wg.Wait()
}

func (w *writer) snapshot() []ack {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]ack(nil), w.acks...)
}

// waitAck waits until a write acknowledged after `after` was run by runID,
// and returns the earliest such acknowledgement time.
func (w *writer) waitAck(t *testing.T, runID string, after time.Time, within time.Duration) time.Time {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		var first time.Time
		for _, a := range w.snapshot() {
			if a.err == nil && a.runID == runID && a.end.After(after) && (first.IsZero() || a.end.Before(first)) {
				first = a.end
			}
		}
		if !first.IsZero() {
			return first
		}
		if time.Now().After(deadline) {
			t.Fatalf("no write acknowledged by %s within %v after %s; last errors: %v",
				runID, within, after.Format("15:04:05.000"), w.lastErrors(3))
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func (w *writer) lastErrors(n int) []error {
	var out []error
	acks := w.snapshot()
	for i := len(acks) - 1; i >= 0 && len(out) < n; i-- {
		if acks[i].err != nil {
			out = append(out, acks[i].err)
		}
	}
	return out
}

// stats counts acknowledged and failed writes.
func stats(acks []ack) (ok, failed int) {
	for _, a := range acks {
		if a.err == nil {
			ok++
		} else {
			failed++
		}
	}
	return ok, failed
}

func runID(t *testing.T, s *redistest.Server) string {
	t.Helper()
	info := infoOf(t, s, "server")
	id := info["run_id"]
	if id == "" {
		t.Fatalf("%s: no run_id in INFO server", s.Name)
	}
	return id
}

func infoOf(t *testing.T, s *redistest.Server, section string) map[string]string {
	t.Helper()
	var out map[string]string
	// A pooled connection to a restarted server fails once: retry.
	waitFor(t, 5*time.Second, s.Name+" INFO "+section, func() error {
		var err error
		out, err = infoErr(s, section)
		return err
	})
	return out
}

func infoErr(s *redistest.Server, section string) (map[string]string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	v, err := s.Do(ctx, "INFO", section)
	if err != nil {
		return nil, err
	}
	text, _ := v.(string)
	out := map[string]string{}
	for _, line := range strings.Split(text, "\r\n") {
		if k, val, ok := strings.Cut(line, ":"); ok {
			out[k] = val
		}
	}
	return out, nil
}

func mustDoServer(t *testing.T, s *redistest.Server, args ...any) any {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	v, err := s.Do(ctx, args...)
	if err != nil {
		t.Fatalf("%s: %v: %v", s.Name, args, err)
	}
	return v
}

// checkStoredOn verifies that every write acknowledged by runID is stored on
// srv with that run_id: acknowledged writes were kept by the master that
// took them.
func checkStoredOn(t *testing.T, srv *redistest.Server, runID string, acks []ack, after time.Time) int {
	t.Helper()
	var keys []any
	for _, a := range acks {
		if a.err == nil && a.runID == runID && a.start.After(after) {
			keys = append(keys, a.key)
		}
	}
	for i := 0; i < len(keys); i += 500 {
		batch := keys[i:min(i+500, len(keys))]
		v := mustDoServer(t, srv, append([]any{"MGET"}, batch...)...)
		vals, _ := v.([]any)
		for j, val := range vals {
			if s, _ := val.(string); s != runID {
				t.Errorf("%s: key %v acknowledged by %s holds %v", srv.Name, batch[j], runID, val)
				return 0
			}
		}
	}
	return len(keys)
}

// waitFor polls f until it returns nil or within passes.
func waitFor(t *testing.T, within time.Duration, what string, f func() error) {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		err := f()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("waiting for %s: %v", what, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

var errNotYet = errors.New("not yet")

func notYet(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{errNotYet}, args...)...)
}
