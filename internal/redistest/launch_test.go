package redistest

import (
	"context"
	"errors"
	"net"
	"os"
	"testing"
	"time"
)

// Launch works outside a test: the cluster serves, harness failures come
// back as errors through Try, and Close stops every node and removes the
// files.
func TestLaunchAndClose(t *testing.T) {
	Require(t)
	c, err := Launch(ClusterOptions{Masters: 2})
	if err != nil {
		t.Fatal(err)
	}
	closed := false
	defer func() {
		if !closed {
			c.Close()
		}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, s := range c.Servers() {
		if _, err := s.Do(ctx, "PING"); err != nil {
			t.Fatalf("%s: %v", s.Addr, err)
		}
	}
	if m := c.MasterOf(0); m == nil {
		t.Fatal("no master for slot 0")
	}

	err = c.Try(func() { c.t.Fatalf("boom %d", 1) })
	var le *LaunchError
	if !errors.As(err, &le) || le.Msg != "boom 1" {
		t.Fatalf("Try: want LaunchError boom 1, got %v", err)
	}
	if err := c.Try(func() {}); err != nil {
		t.Fatalf("Try of a passing func: %v", err)
	}

	dir := c.t.(*launchTB).dir
	addrs := c.Addrs()
	c.Close()
	closed = true
	c.Close() // idempotent
	for _, a := range addrs {
		if conn, err := net.DialTimeout("tcp", a, time.Second); err == nil {
			_ = conn.Close()
			t.Errorf("%s still accepts connections after Close", a)
		}
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("%s not removed: %v", dir, err)
	}
}

// Bad options are an error, not a panic, and leave nothing behind.
func TestLaunchBadOptions(t *testing.T) {
	Require(t)
	_, err := Launch(ClusterOptions{Masters: -1})
	var le *LaunchError
	if !errors.As(err, &le) || !errors.Is(err, ErrBadOptions) {
		t.Fatalf("want a LaunchError wrapping ErrBadOptions, got %v", err)
	}
}
