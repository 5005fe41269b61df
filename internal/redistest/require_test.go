package redistest

import (
	"fmt"
	"net"
	"strings"
	"testing"
	"time"
)

// recordTB records Skip/Fatal instead of ending the test, so the decision
// of requireBinary can be checked.
type recordTB struct {
	testing.TB
	skipped, failed string
}

func (r *recordTB) Helper()           {}
func (r *recordTB) Skip(args ...any)  { r.skipped = strings.TrimSpace(sprint(args)) }
func (r *recordTB) Fatal(args ...any) { r.failed = strings.TrimSpace(sprint(args)) }
func sprint(args []any) string        { return fmt.Sprint(args...) }

func TestRequireMissingBinary(t *testing.T) {
	const name = "redis-server-that-does-not-exist"
	t.Setenv(RequiredEnv, "")
	r := &recordTB{TB: t}
	if p := requireBinary(r, name); p != "" || r.failed != "" || !strings.Contains(r.skipped, name+" not found on PATH") {
		t.Fatalf("without %s: path %q skipped %q failed %q", RequiredEnv, p, r.skipped, r.failed)
	}
	t.Setenv(RequiredEnv, "1")
	r = &recordTB{TB: t}
	if requireBinary(r, name); r.skipped != "" || !strings.Contains(r.failed, RequiredEnv+"=1") {
		t.Fatalf("with %s=1: skipped %q failed %q", RequiredEnv, r.skipped, r.failed)
	}
}

// failedTB reports the test as failed and records Logf, to check what the
// cleanup prints for a failed test.
type failedTB struct {
	testing.TB
	logs []string
}

func (f *failedTB) Failed() bool { return true }
func (f *failedTB) Logf(format string, args ...any) {
	f.logs = append(f.logs, fmt.Sprintf(format, args...))
}

func TestCleanupDumpsLogOnFailure(t *testing.T) {
	f := &failedTB{TB: t}
	s := StartServer(f, ServerOptions{})
	if !strings.Contains(s.LogTail(100), "Ready to accept connections") {
		t.Fatalf("log tail lacks the ready line:\n%s", s.LogTail(100))
	}
	s.Stop() // cleanup must also reap a stopped process
	s.cleanup()
	if s.Running() {
		t.Fatal("process still running after cleanup")
	}
	if len(f.logs) != 1 || !strings.Contains(f.logs[0], s.Addr) || !strings.Contains(f.logs[0], "Ready to accept connections") {
		t.Fatalf("cleanup of a failed test logged %q", f.logs)
	}
}

func TestStartRetriesOnBindFailure(t *testing.T) {
	bin := Require(t)
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	taken := busy.Addr().(*net.TCPAddr).Port
	s := newServer(t, bin, "retry", "127.0.0.1", t.TempDir(), "")
	s.render = func(port int) string { return joinConfig(baseConfig(s, port), nil) }
	calls := 0
	err = s.start(func() (int, error) {
		calls++
		if calls == 1 {
			return taken, nil // lost the race: someone else listens there
		}
		return freePort("127.0.0.1", nil)
	})
	if err != nil {
		t.Fatal(err)
	}
	if calls != 2 || s.Port == taken {
		t.Fatalf("calls=%d port=%d (taken %d)", calls, s.Port, taken)
	}
	if err := s.ping(time.Second); err != nil {
		t.Fatal(err)
	}
}
