package clustertest

import (
	"fmt"
	"os"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/slotrouter/slotrouter/slots"
)

// TestMain fails the run if goroutines outlive the tests: every cluster
// must shut down completely in its Cleanup. Client libraries' idle
// goroutines are given a bounded grace period to exit too.
func TestMain(m *testing.M) {
	before := runtime.NumGoroutine()
	code := m.Run()
	if code == 0 {
		deadline := time.Now().Add(10 * time.Second)
		for runtime.NumGoroutine() > before && time.Now().Before(deadline) {
			time.Sleep(20 * time.Millisecond)
		}
		if leaked := ourGoroutines(); runtime.NumGoroutine() > before && leaked != "" {
			fmt.Fprintf(os.Stderr, "goroutine leak: %d before, %d after:\n%s\n", before, runtime.NumGoroutine(), leaked)
			code = 1
		}
	}
	os.Exit(code)
}

// ourGoroutines returns the stacks of goroutines running this package's
// code.
func ourGoroutines() string {
	buf := make([]byte, 1<<20)
	buf = buf[:runtime.Stack(buf, true)]
	var out []string
	for _, g := range strings.Split(string(buf), "\n\n") {
		if strings.Contains(g, "slotrouter/clustertest.") && !strings.Contains(g, "TestMain") && !strings.Contains(g, "ourGoroutines") {
			out = append(out, g)
		}
	}
	return strings.Join(out, "\n\n")
}

// keyOn returns a key whose slot node owns.
func keyOn(t testing.TB, c *Cluster, n *Node, prefix string) string {
	t.Helper()
	for i := 0; i < 100000; i++ {
		k := fmt.Sprintf("%s%d", prefix, i)
		if c.MasterOf(slots.Of(k)) == n {
			return k
		}
	}
	t.Fatalf("no key found on %s", n)
	return ""
}

// pollUntil retries f until it reports true or the deadline passes.
func pollUntil(t testing.TB, d time.Duration, what string, f func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !f() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", d, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
