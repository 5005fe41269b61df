package client

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"testing/iotest"
)

func readAll(t testing.TB, data []byte) ([]Result, error) {
	t.Helper()
	rd := newRespReader(bytes.NewReader(data))
	var out []Result
	for range 100000 {
		r, err := rd.readReply()
		if err != nil {
			if err == io.EOF {
				return out, nil
			}
			return out, err
		}
		out = append(out, r)
	}
	t.Fatal("too many replies")
	return nil, nil
}

func TestRespReaderTypes(t *testing.T) {
	cases := []struct {
		in   string
		want string // Result.String()
		kind Kind
	}{
		{"+OK\r\n", `"OK"`, KindString},
		{"-MOVED 3999 127.0.0.1:6381\r\n", "(error) MOVED 3999 127.0.0.1:6381", KindError},
		{":-42\r\n", "(integer) -42", KindInt},
		{":9223372036854775807\r\n", "(integer) 9223372036854775807", KindInt},
		{":-9223372036854775808\r\n", "(integer) -9223372036854775808", KindInt},
		{"$5\r\nhe\r\no\r\n", `"he\r\no"`, KindBulk},
		{"$0\r\n\r\n", `""`, KindBulk},
		{"$-1\r\n", "(nil)", KindNil},
		{"*-1\r\n", "(nil)", KindNil},
		{"*0\r\n", "[]", KindArray},
		{"*3\r\n$1\r\na\r\n:1\r\n*2\r\n$-1\r\n-ERR x\r\n", `["a", (integer) 1, [(nil), (error) ERR x]]`, KindArray},
		{"_\r\n", "(nil)", KindNil},
		{",1.5\r\n", "(double) 1.5", KindDouble},
		{",inf\r\n", "(double) +Inf", KindDouble},
		{"#t\r\n", "true", KindBool},
		{"%1\r\n+a\r\n:1\r\n", `["a", (integer) 1]`, KindMap},
		{"~1\r\n+a\r\n", `["a"]`, KindSet},
		{">2\r\n+x\r\n+y\r\n", `["x", "y"]`, KindPush},
		{"=8\r\ntxt:abcd\r\n", `"abcd"`, KindBulk},
		{"!9\r\nERR bloop\r\n", "(error) ERR bloop", KindError},
		{"(123456789012345678901234567890\r\n", `"123456789012345678901234567890"`, KindBulk},
		{"|1\r\n+ttl\r\n:3\r\n:7\r\n", "(integer) 7", KindInt},
	}
	for _, c := range cases {
		got, err := readAll(t, []byte(c.in))
		if err != nil || len(got) != 1 {
			t.Fatalf("%q: %v %v", c.in, got, err)
		}
		if got[0].String() != c.want || got[0].Kind() != c.kind {
			t.Errorf("%q: got %s (%v), want %s (%v)", c.in, got[0], got[0].Kind(), c.want, c.kind)
		}
	}
}

func TestRespReaderSplitReads(t *testing.T) {
	// One byte per Read must parse exactly like one big read.
	data := []byte("*2\r\n$3\r\nfoo\r\n:12\r\n+OK\r\n$-1\r\n" + "$70000\r\n" + strings.Repeat("z", 70000) + "\r\n")
	rd := newRespReader(iotest.OneByteReader(bytes.NewReader(data)))
	want := []string{`["foo", (integer) 12]`, `"OK"`, "(nil)"}
	for _, w := range want {
		r, err := rd.readReply()
		if err != nil || r.String() != w {
			t.Fatalf("got %s %v want %s", r, err, w)
		}
	}
	r, err := rd.readReply()
	if err != nil || len(r.str) != 70000 || strings.Trim(r.str, "z") != "" {
		t.Fatalf("big bulk: len %d err %v", len(r.str), err)
	}
}

func TestRespReaderProtocolErrors(t *testing.T) {
	bad := []string{
		"?\r\n",
		"\r\n",
		"+OK\n",
		":12a\r\n",
		":99999999999999999999\r\n",
		"$-2\r\n",
		"$3\r\nfooXX",
		"$536870913\r\n",
		"*16777217\r\n",
		"*-2\r\n",
		"~-1\r\n",
		",x\r\n",
		"#x\r\n",
		"=2\r\nab\r\n",
		"_x\r\n",
		strings.Repeat("*1\r\n", maxDepth+2) + ":1\r\n",
	}
	for _, in := range bad {
		_, err := readAll(t, []byte(in))
		var pe *ProtocolError
		if !errors.As(err, &pe) {
			t.Errorf("%q: want *ProtocolError, got %v", in, err)
		}
	}
	// A line longer than maxLineLen.
	_, err := readAll(t, []byte("+"+strings.Repeat("a", maxLineLen+10)+"\r\n"))
	var pe *ProtocolError
	if !errors.As(err, &pe) {
		t.Errorf("long line: %v", err)
	}
}

// A huge declared length with little data behind it must not allocate the
// declared size.
func TestRespReaderNoUpfrontAllocation(t *testing.T) {
	for _, in := range []string{"$536870000\r\nabc", "*16000000\r\n:1\r\n"} {
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		_, err := readAll(t, []byte(in))
		runtime.ReadMemStats(&after)
		if !errors.Is(err, io.ErrUnexpectedEOF) {
			t.Fatalf("%q: want ErrUnexpectedEOF, got %v", in[:12], err)
		}
		if d := after.TotalAlloc - before.TotalAlloc; d > 8<<20 {
			t.Errorf("%q: allocated %d bytes", in[:12], d)
		}
	}
}

func TestRespReaderTruncated(t *testing.T) {
	_, err := readAll(t, []byte("*2\r\n$3\r\nfo"))
	if !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("want ErrUnexpectedEOF, got %v", err)
	}
}

func TestRespDoubleSpecials(t *testing.T) {
	got, err := readAll(t, []byte(",-inf\r\n,nan\r\n"))
	if err != nil {
		t.Fatal(err)
	}
	if f, _ := got[0].Float64(); !math.IsInf(f, -1) {
		t.Errorf("-inf: %v", f)
	}
	if f, _ := got[1].Float64(); !math.IsNaN(f) {
		t.Errorf("nan: %v", f)
	}
}

func TestRespRealServerCaptures(t *testing.T) {
	files, _ := filepath.Glob("../testdata/resp/*.resp")
	if len(files) == 0 {
		t.Fatal("no captures in testdata/resp")
	}
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		rs, err := readAll(t, data)
		if err != nil || len(rs) == 0 {
			t.Errorf("%s: %d replies, %v", f, len(rs), err)
		}
	}
}

func FuzzReader(f *testing.F) {
	files, _ := filepath.Glob("../testdata/resp/*.resp")
	for _, file := range files {
		data, err := os.ReadFile(file)
		if err == nil && len(data) < 4096 {
			f.Add(data)
		}
	}
	for _, s := range []string{"+OK\r\n", "$-1\r\n", "*1\r\n*1\r\n:1\r\n", ",1.5\r\n#t\r\n_\r\n", "%1\r\n+a\r\n:1\r\n", ">1\r\n+x\r\n", "|1\r\n+a\r\n+b\r\n:1\r\n", "=5\r\ntxt:a\r\n", "!3\r\nERR\r\n", "(12\r\n", "*3\r\n$1\r\na\r\n$0\r\n\r\n:1\r\n", "%1\r\n$1\r\nk\r\n$1\r\nv\r\n"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		rd := newRespReader(bytes.NewReader(data))
		// The same bytes in small chunks with a timeout before each one
		// must parse to the same replies: a resumed parse is the parse.
		resumed := newRespReader(&flaky{data: bytes.Clone(data), chunk: 1 + len(data)%7})
		for range 1000 {
			r, err := rd.readReply()
			r2, _, err2 := readPast(resumed, 4*len(data)+8)
			if (err == nil) != (err2 == nil) || (err == nil && r.String() != r2.String()) {
				t.Fatalf("resumed parse differs: %s %v vs %s %v", r, err, r2, err2)
			}
			if err != nil {
				return
			}
			_ = r.String()
			_, _ = r.Slice()
			_, _ = r.Value()
			if r.isAggregate() {
				checkViews(t, r) // packed or not, every view agrees
			}
		}
	})
}

// The run of short bulk strings is read straight from the buffer
// (bulkRun); what it leaves to the general path (a nil, an integer, a long
// string, a nested array, a string split across reads, the last element)
// must come out exactly as the general path alone makes it, which one byte
// per Read forces.
func TestBulkRunMatchesGeneralPath(t *testing.T) {
	var buf bytes.Buffer
	buf.WriteString("*9\r\n$3\r\nfoo\r\n$0\r\n\r\n$-1\r\n:42\r\n$300\r\n" + strings.Repeat("x", 300) + "\r\n")
	buf.WriteString("*3\r\n$1\r\na\r\n$2\r\nbb\r\n$3\r\nccc\r\n$007\r\nleading\r\n$5\r\nhello\r\n$4\r\nlast\r\n")
	buf.WriteString("%2\r\n$1\r\nk\r\n$1\r\nv\r\n$2\r\nk2\r\n$2\r\nv2\r\n")
	for j := range 3000 {
		if j == 0 {
			buf.WriteString("*3000\r\n")
		}
		e := fmt.Sprintf("e%d", j)
		fmt.Fprintf(&buf, "$%d\r\n%s\r\n", len(e), e)
	}
	data := buf.Bytes()
	fast := newRespReader(bytes.NewReader(data))
	slow := newRespReader(iotest.OneByteReader(bytes.NewReader(data)))
	for i := range 2 {
		a, err := fast.readReply()
		if err != nil {
			t.Fatalf("reply %d, buffered: %v", i, err)
		}
		b, err := slow.readReply()
		if err != nil {
			t.Fatalf("reply %d, one byte per read: %v", i, err)
		}
		if a.String() != b.String() {
			t.Fatalf("reply %d differs:\n%s\n%s", i, a, b)
		}
	}
	a, errA := fast.readReply()
	b, errB := slow.readReply()
	last, _ := a.at(2999)
	if errA != nil || errB != nil || a.String() != b.String() || a.Len() != 3000 || last.str != "e2999" {
		t.Fatalf("long array: %v %v, %d elements", errA, errB, a.Len())
	}

	// A malformed element inside a run fails as the general path fails it.
	for _, bad := range []string{"*3\r\n$1\r\na\r\n$2\r\nbbX\r\n$1\r\nc\r\n", "*3\r\n$1\r\na\r\n$1x\r\nb\r\n$1\r\nc\r\n"} {
		_, errA := newRespReader(bytes.NewReader([]byte(bad))).readReply()
		_, errB := newRespReader(iotest.OneByteReader(bytes.NewReader([]byte(bad)))).readReply()
		var pa, pb *ProtocolError
		if !errors.As(errA, &pa) || !errors.As(errB, &pb) || pa.Reason != pb.Reason {
			t.Fatalf("%q: %v vs %v", bad, errA, errB)
		}
	}

	// The reply cap trips at the same element either way.
	var arr bytes.Buffer
	arr.WriteString("*100\r\n")
	for range 100 {
		arr.WriteString("$10\r\n0123456789\r\n")
	}
	for _, rd := range []*respReader{newRespReader(bytes.NewReader(arr.Bytes())), newRespReader(iotest.OneByteReader(bytes.NewReader(arr.Bytes())))} {
		// Room for 50 elements and the 51st's payload but not its Result:
		// the general path charges the payload, then fails on the Result.
		rd.limit = 50*(10+resultSize) + 40
		_, err := rd.readReply()
		var tl *ReplyTooLargeError
		if !errors.As(err, &tl) || rd.used != 51*(10+resultSize) {
			t.Fatalf("cap: %v, used %d", err, rd.used)
		}
	}
}
