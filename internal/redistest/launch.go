package redistest

import (
	"fmt"
	"os"
	"sync"
	"testing"
)

// Launch starts a cluster for a program rather than a test (the benchmark
// in bench/, tools): the same nodes, configuration and readiness checks as
// StartCluster, in a temporary directory that Close removes. Close must be
// called; until then the redis-server processes keep running.
//
// A missing redis-server is an error here, not a skip. Methods of the
// returned cluster that would fail a test (Kill, WaitPromoted, ...) panic
// with a *LaunchError instead; Try turns that back into an error.
func Launch(o ClusterOptions) (*Cluster, error) {
	dir, err := os.MkdirTemp("", "redistest-")
	if err != nil {
		return nil, err
	}
	tb := &launchTB{name: "launch", dir: dir}
	var c *Cluster
	if err := tb.run(func() { c = StartCluster(tb, o) }); err != nil {
		tb.cleanup()
		return nil, err
	}
	return c, nil
}

// Close stops every node of a cluster made by Launch and removes its files.
// For a cluster made by StartCluster it does nothing: the test's cleanup
// owns it.
func (c *Cluster) Close() {
	if tb, ok := c.t.(*launchTB); ok {
		tb.cleanup()
	}
}

// Try runs f, which may call methods of a launched cluster, and returns the
// failure they would have reported to a test.
func (c *Cluster) Try(f func()) error {
	if tb, ok := c.t.(*launchTB); ok {
		return tb.run(f)
	}
	f()
	return nil
}

// LaunchError is a harness failure outside a test. Err is the error the
// harness failed with, when it had one (errors.Is(err, ErrBadOptions) works).
type LaunchError struct {
	Msg string
	Err error
}

func (e *LaunchError) Error() string { return "redistest: launch: " + e.Msg }

func (e *LaunchError) Unwrap() error { return e.Err }

// launchTB stands in for testing.TB outside tests. Only the methods the
// harness calls are implemented; the embedded nil interface supplies the
// unexported one testing.TB requires, so any other method panics, which
// would be a bug in this file.
type launchTB struct {
	testing.TB

	name string
	dir  string

	mu       sync.Mutex
	cleanups []func()
	failed   bool
	done     bool
}

func (l *launchTB) run(f func()) (err error) {
	defer func() {
		if r := recover(); r != nil {
			le, ok := r.(*LaunchError)
			if !ok {
				panic(r)
			}
			err = le
		}
	}()
	f()
	return nil
}

func (l *launchTB) fail(msg string, args ...any) {
	l.mu.Lock()
	l.failed = true
	l.mu.Unlock()
	le := &LaunchError{Msg: msg}
	for _, a := range args {
		if err, ok := a.(error); ok {
			le.Err = err
			break
		}
	}
	panic(le)
}

func (l *launchTB) Helper()                           {}
func (l *launchTB) Name() string                      { return l.name }
func (l *launchTB) Log(args ...any)                   {}
func (l *launchTB) Logf(format string, args ...any)   {}
func (l *launchTB) Fatal(args ...any)                 { l.fail(fmt.Sprint(args...), args...) }
func (l *launchTB) Fatalf(format string, args ...any) { l.fail(fmt.Sprintf(format, args...), args...) }
func (l *launchTB) FailNow()                          { l.fail("failed") }
func (l *launchTB) Skip(args ...any)                  { l.fail(fmt.Sprint(args...)) }
func (l *launchTB) Skipf(format string, args ...any)  { l.fail(fmt.Sprintf(format, args...)) }
func (l *launchTB) SkipNow()                          { l.fail("skipped") }
func (l *launchTB) Error(args ...any)                 { l.markFailed() }
func (l *launchTB) Errorf(format string, args ...any) { l.markFailed() }
func (l *launchTB) Fail()                             { l.markFailed() }

func (l *launchTB) markFailed() {
	l.mu.Lock()
	l.failed = true
	l.mu.Unlock()
}

func (l *launchTB) Failed() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.failed
}

func (l *launchTB) TempDir() string {
	d, err := os.MkdirTemp(l.dir, "node")
	if err != nil {
		l.fail("temp dir: " + err.Error())
	}
	return d
}

func (l *launchTB) Cleanup(f func()) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.cleanups = append(l.cleanups, f)
}

// cleanup runs the registered cleanups last-first, as testing does, once.
func (l *launchTB) cleanup() {
	l.mu.Lock()
	if l.done {
		l.mu.Unlock()
		return
	}
	l.done = true
	fs := l.cleanups
	l.cleanups = nil
	l.mu.Unlock()
	for i := len(fs) - 1; i >= 0; i-- {
		_ = l.run(fs[i]) // a failing cleanup must not stop the others
	}
	_ = os.RemoveAll(l.dir)
}
