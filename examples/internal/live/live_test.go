package live

import (
	"errors"
	"flag"
	"testing"
	"time"
)

func TestCountsResetEachLine(t *testing.T) {
	var st counts
	st.record(nil)
	st.record(errors.New("first"))
	st.record(nil)
	st.record(errors.New("READONLY You can't write against a read only replica."))
	if ok, fail := st.ok.Swap(0), st.fail.Swap(0); ok != 2 || fail != 2 {
		t.Fatalf("ok %d fail %d, want 2 and 2", ok, fail)
	}
	if got, want := st.withLastError("x"), "x  last error: READONLY You can't write against a read only replica."; got != want {
		t.Fatalf("line %q, want %q", got, want)
	}
	if got := st.withLastError("y"); got != "y" {
		t.Fatalf("second line %q: the last error must be reported once", got)
	}
}

func TestRegisterFlags(t *testing.T) {
	fs := flag.NewFlagSet("x", flag.ContinueOnError)
	f := RegisterFlags(fs)
	if f.Rate != 200 || f.Duration != time.Minute || f.Timeout != 2*time.Second {
		t.Fatalf("defaults %+v", *f)
	}
	if err := fs.Parse([]string{"-rate", "5", "-duration", "0", "-timeout", "300ms"}); err != nil {
		t.Fatal(err)
	}
	if f.Rate != 5 || f.Duration != 0 || f.Timeout != 300*time.Millisecond {
		t.Fatalf("parsed %+v", *f)
	}
}

func TestContextEndsAfterDuration(t *testing.T) {
	ctx, stop := Context(50 * time.Millisecond)
	defer stop()
	select {
	case <-ctx.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("context still live 5 s after a 50 ms duration")
	}
	ctx, stop = Context(0)
	if ctx.Err() != nil {
		t.Fatal("duration 0 must run until interrupted")
	}
	stop()
	if ctx.Err() == nil {
		t.Fatal("stop did not end the context")
	}
}
