package client

import (
	"context"
	"errors"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/slotrouter/slotrouter/internal/redistest"
	"github.com/slotrouter/slotrouter/slots"
)

// busyScript holds the server for ARGV[1] microseconds, then returns ARGV[2].
const busyScript = `local t0 = redis.call('TIME')
local start = t0[1] * 1000000 + t0[2]
while true do
  local t = redis.call('TIME')
  if t[1] * 1000000 + t[2] - start >= tonumber(ARGV[1]) then break end
end
return ARGV[2]`

// busyArgs is the command that runs busyScript for run, then returns ret.
func busyArgs(run time.Duration, ret string) []any {
	return []any{"EVAL", busyScript, 0, strconv.Itoa(int(run / time.Microsecond)), ret}
}

// A script that runs longer than HealthTimeout used to fail after
// HealthTimeout with "health ... no reply within" although it ran, and took
// every call queued behind it down too. Now the pipe counts as alive while
// a command that may take long is outstanding, so the script and the call
// behind it succeed, and a script longer than its caller's deadline fails
// only at that deadline.
func TestSlowScriptOutlivesHealthTimeout(t *testing.T) {
	srv := redistest.StartServer(t, redistest.ServerOptions{})
	const health = 300 * time.Millisecond
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	c := standaloneClient(t, srv, Options{HealthTimeout: health})
	if err := c.Do(ctx, "SET", "behind", "v").Err(); err != nil {
		t.Fatal(err)
	}
	run := 4 * health
	var wg sync.WaitGroup
	var behind Result
	wg.Add(1)
	go func() {
		defer wg.Done()
		time.Sleep(run / 4) // queued behind the script on the same pipe
		cctx, ccancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer ccancel()
		behind = c.Do(cctx, "GET", "behind")
	}()
	sctx, scancel := context.WithTimeout(context.Background(), 10*time.Second)
	start := time.Now()
	r := c.Do(sctx, busyArgs(run, "done")...)
	took := time.Since(start)
	scancel()
	wg.Wait()
	if s, err := r.Text(); err != nil || s != "done" {
		t.Fatalf("script of %v with HealthTimeout %v: %s %v (after %v)", run, health, r, err, took)
	}
	if s, err := behind.Text(); err != nil || s != "v" {
		t.Fatalf("the call queued behind the script: %s %v", behind, err)
	}
	if took < run {
		t.Fatalf("script returned after %v, before it could have run %v", took, run)
	}

	// Longer than the caller's deadline: it fails at that deadline, not
	// at HealthTimeout.
	const callerDL = 3 * health
	sctx, scancel = context.WithTimeout(context.Background(), callerDL)
	defer scancel()
	start = time.Now()
	err := c.Do(sctx, busyArgs(2*callerDL, "late")...).Err()
	took = time.Since(start)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("want the caller's deadline, got %v after %v", err, took)
	}
	if took < callerDL-5*time.Millisecond {
		t.Fatalf("returned after %v, before the caller's deadline %v", took, callerDL)
	}
	// The pipe survived: the next call on it is answered once the script ends.
	if s, err := c.Do(ctx, "GET", "behind").Text(); err != nil || s != "v" {
		t.Fatalf("after the abandoned script: %q %v", s, err)
	}
}

// tableWithout is the default command table minus the named commands, so a
// real server's command looks unknown and must be learnt.
func tableWithout(names ...string) *slots.Table {
	var keep []*slots.Command
	for cmd := range slots.DefaultTable().Commands {
		if !slices.Contains(names, cmd.Name) {
			keep = append(keep, cmd)
		}
	}
	return slots.NewTable(keep...)
}

// Learning an unknown command used to run COMMAND INFO under the first
// caller's ctx, and every other caller of that command waited for it
// whatever its own deadline (2.23 s for a 100 ms deadline). Now each caller
// waits only as long as its own ctx allows.
func TestLearningHonoursEachDeadline(t *testing.T) {
	srv := redistest.StartServer(t, redistest.ServerOptions{})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	c := standaloneClient(t, srv, Options{})
	if err := c.Do(ctx, "SET", "learn:k", "v").Err(); err != nil {
		t.Fatal(err)
	}
	c.cmds.Store(tableWithout("getex"))
	// Hold the server for a while so COMMAND INFO is slow to answer.
	const busy = 1500 * time.Millisecond
	go func() {
		bctx, bcancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer bcancel()
		_, _ = srv.Do(bctx, "EVAL", busyScript, "0", strconv.Itoa(int(busy/time.Microsecond)), "x")
	}()
	time.Sleep(100 * time.Millisecond) // the script is running
	// The first caller, with a long ctx, starts the learning.
	firstDone := make(chan Result, 1)
	go func() {
		fctx, fcancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer fcancel()
		firstDone <- c.Do(fctx, "GETEX", "learn:k")
	}()
	time.Sleep(20 * time.Millisecond)
	// A second caller with a 100 ms deadline must not wait for the answer.
	const dl = 100 * time.Millisecond
	sctx, scancel := context.WithTimeout(context.Background(), dl)
	defer scancel()
	sc := startSchedClock()
	start := time.Now()
	err := c.Do(sctx, "GETEX", "learn:k").Err()
	took := time.Since(start)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("want the caller's deadline, got %v", err)
	}
	checkOverrun(t, "the caller with a 100 ms deadline", took-dl, sc)
	if s, err := (<-firstDone).Text(); err != nil || s != "v" {
		t.Fatalf("the first caller: %q %v", s, err)
	}
	// The learning taught the table the command.
	if s, err := c.Do(ctx, "GETEX", "learn:k").Text(); err != nil || s != "v" {
		t.Fatalf("GETEX after the learning: %q %v", s, err)
	}
	if c.cmds.Load().Lookup([][]byte{[]byte("getex")}) == nil {
		t.Fatal("getex was not learnt")
	}
}
