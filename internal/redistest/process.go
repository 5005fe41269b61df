package redistest

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Running reports whether the process is alive (it may be stopped).
func (s *Server) Running() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.proc != nil
}

// Stopped reports whether the process is suspended by Stop.
func (s *Server) Stopped() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.proc != nil && s.stopped
}

// live reports whether the server can answer commands.
func (s *Server) live() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.proc != nil && !s.stopped
}

// Kill sends SIGKILL (after SIGCONT if stopped) and waits until the process
// is reaped, so the port is free when Kill returns. Killing a dead server is
// a no-op.
func (s *Server) Kill() {
	s.mu.Lock()
	p, stopped := s.proc, s.stopped
	s.proc, s.stopped = nil, false
	s.mu.Unlock()
	if p == nil {
		return
	}
	if stopped {
		_ = p.cmd.Process.Signal(syscall.SIGCONT)
	}
	_ = p.cmd.Process.Signal(syscall.SIGKILL)
	select {
	case <-p.done:
	case <-time.After(exitTimeout):
		s.t.Errorf("redistest: %s (pid %d) did not exit %v after SIGKILL", s.Name, p.cmd.Process.Pid, exitTimeout)
	}
}

// Stop suspends the process with SIGSTOP and waits until the kernel reports
// it stopped: the server then neither answers clients nor cluster pings.
func (s *Server) Stop() {
	s.mu.Lock()
	p := s.proc
	if p != nil {
		s.stopped = true
	}
	s.mu.Unlock()
	if p == nil {
		s.t.Fatalf("redistest: Stop: %s is not running", s.Name)
		return
	}
	if err := p.cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		s.t.Fatalf("redistest: SIGSTOP %s: %v", s.Name, err)
	}
	s.waitProcState(p, func(st byte) bool { return st == 'T' || st == 't' }, "stopped")
}

// Cont resumes a process suspended by Stop.
func (s *Server) Cont() {
	s.mu.Lock()
	p := s.proc
	s.stopped = false
	s.mu.Unlock()
	if p == nil {
		s.t.Fatalf("redistest: Cont: %s is not running", s.Name)
		return
	}
	if err := p.cmd.Process.Signal(syscall.SIGCONT); err != nil {
		s.t.Fatalf("redistest: SIGCONT %s: %v", s.Name, err)
	}
	s.waitProcState(p, func(st byte) bool { return st != 'T' && st != 't' }, "running")
}

// waitProcState polls /proc/<pid>/stat: signal delivery is asynchronous and
// tests measure what happens after the process is really (un)suspended.
func (s *Server) waitProcState(p *process, ok func(byte) bool, what string) {
	path := fmt.Sprintf("/proc/%d/stat", p.cmd.Process.Pid)
	deadline := time.Now().Add(5 * time.Second)
	for attempt := 0; time.Now().Before(deadline); attempt++ {
		b, err := os.ReadFile(path)
		if err != nil {
			return // no procfs (or process gone): nothing more to wait for
		}
		// Format: pid (comm) state ...; comm may contain spaces.
		if i := strings.LastIndexByte(string(b), ')'); i >= 0 && i+2 < len(b) && ok(b[i+2]) {
			return
		}
		time.Sleep(pollDelay(attempt))
	}
	s.t.Fatalf("redistest: %s did not become %s", s.Name, what)
}

// Restart kills the process if it runs and starts it again on the same port
// with the same directory and config, so a cluster node keeps its nodes.conf
// (and identity). Bind failures (port briefly busy) are retried until a
// deadline.
func (s *Server) Restart(t testing.TB) {
	t.Helper()
	s.Kill()
	deadline := time.Now().Add(readyTimeout)
	for {
		err := s.launch()
		if err == nil {
			return
		}
		if !errors.Is(err, errBind) || time.Now().After(deadline) {
			t.Fatalf("redistest: restart %s: %v", s.Name, err)
		}
	}
}
