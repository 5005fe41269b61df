package client

import (
	"errors"
	"math"
	"strings"
	"testing"
)

func TestCommandEncoding(t *testing.T) {
	cmd, err := newCommand([]any{"SET", []byte("k\r\ney"), -12, int8(-1), int16(2), int32(3), int64(math.MinInt64),
		uint(4), uint8(5), uint16(6), uint32(7), uint64(math.MaxUint64), float32(1.5), 0.1, math.Inf(-1), true, false, ""})
	if err != nil {
		t.Fatal(err)
	}
	defer cmd.release()
	want := []string{"SET", "k\r\ney", "-12", "-1", "2", "3", "-9223372036854775808", "4", "5", "6", "7",
		"18446744073709551615", "1.5", "0.1", "-inf", "1", "0", ""}
	var enc strings.Builder
	enc.WriteString("*18\r\n")
	for i, w := range want {
		if string(cmd.args[i]) != w {
			t.Errorf("arg %d = %q, want %q", i, cmd.args[i], w)
		}
		enc.WriteString("$" + itoa(len(w)) + "\r\n" + w + "\r\n")
	}
	if string(cmd.buf) != enc.String() {
		t.Errorf("encoded %q\nwant %q", cmd.buf, enc.String())
	}
	if string(cmd.name()) != "SET" {
		t.Errorf("name %q", cmd.name())
	}
	// The views must be capped so appending to one cannot clobber the next.
	if cap(cmd.args[1]) != len(cmd.args[1]) {
		t.Error("arg view not capped")
	}
}

func itoa(n int) string {
	if n == 0 {
		return "0"
	}
	var b []byte
	for ; n > 0; n /= 10 {
		b = append([]byte{byte('0' + n%10)}, b...)
	}
	return string(b)
}

func TestCommandArgErrors(t *testing.T) {
	type custom struct{}
	for i, args := range [][]any{
		{"GET", nil},
		{"SET", "k", custom{}},
		{"SET", "k", map[string]int{}},
		{"SET", "k", []string{"a"}},
		{},
	} {
		cmd, err := newCommand(args)
		var ae *ArgError
		if cmd != nil || !errors.As(err, &ae) {
			t.Fatalf("case %d: cmd %v err %v", i, cmd, err)
		}
		if len(args) > 0 && ae.Index != len(args)-1 {
			t.Errorf("case %d: index %d", i, ae.Index)
		}
		if ae.Error() == "" || (len(args) > 0 && ae.Type == "") {
			t.Errorf("case %d: empty text", i)
		}
	}
	_, err := newCommand([]any{"SET", "k", struct{ A int }{}})
	if !strings.Contains(err.Error(), "struct") {
		t.Errorf("type name missing: %v", err)
	}
}

func TestCommandPoolDropsHugeBuffers(t *testing.T) {
	cmd, err := newCommand([]any{"SET", "k", strings.Repeat("x", 2*maxPooledCommandBuf)})
	if err != nil {
		t.Fatal(err)
	}
	cmd.release() // must not pool a 128 KiB buffer
	for range 10 {
		c, _ := newCommand([]any{"PING"})
		if cap(c.buf) > maxPooledCommandBuf {
			t.Fatalf("pooled huge buffer (cap %d)", cap(c.buf))
		}
		defer c.release()
	}
}

// newCommand must not box or copy on the caller's side: the only heap work
// is the pooled command, so steady state is zero allocations.
func TestCommandAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts are meaningless under -race")
	}
	key := strings.Repeat("k", 16)
	n := 42
	allocs := testing.AllocsPerRun(1000, func() {
		cmd, err := newCommand([]any{"SET", key, n, 1.5, true})
		if err != nil {
			t.Fatal(err)
		}
		cmd.release()
	})
	if allocs != 0 {
		t.Errorf("newCommand allocs = %v, want 0", allocs)
	}
}

func BenchmarkCommand(b *testing.B) {
	key := "user:1000:profile"
	b.ReportAllocs()
	for b.Loop() {
		cmd, _ := newCommand([]any{"SET", key, "value-of-sixteen", "EX", 60})
		cmd.release()
	}
}
