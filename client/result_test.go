package client

import (
	"errors"
	"io"
	"reflect"
	"strings"
	"testing"
)

func parseOne(t *testing.T, s string) Result {
	t.Helper()
	rs, err := readAll(t, []byte(s))
	if err != nil || len(rs) != 1 {
		t.Fatalf("%q: %v %v", s, rs, err)
	}
	return rs[0]
}

func TestResultAccessors(t *testing.T) {
	if s, err := parseOne(t, "+OK\r\n").Text(); s != "OK" || err != nil {
		t.Errorf("Text: %q %v", s, err)
	}
	if b, err := parseOne(t, "$3\r\nabc\r\n").Bytes(); string(b) != "abc" || err != nil {
		t.Errorf("Bytes: %q %v", b, err)
	}
	if n, err := parseOne(t, ":7\r\n").Int64(); n != 7 || err != nil {
		t.Errorf("Int64: %d %v", n, err)
	}
	if n, err := parseOne(t, "$3\r\n-12\r\n").Int64(); n != -12 || err != nil {
		t.Errorf("Int64 of bulk: %d %v", n, err)
	}
	if f, err := parseOne(t, "$4\r\n2.25\r\n").Float64(); f != 2.25 || err != nil {
		t.Errorf("Float64: %v %v", f, err)
	}
	if s, err := parseOne(t, ":12\r\n").Text(); s != "12" || err != nil {
		t.Errorf("Text of int: %q %v", s, err)
	}
	for in, want := range map[string]bool{":1\r\n": true, ":0\r\n": false, "+OK\r\n": true, "#f\r\n": false} {
		if b, err := parseOne(t, in).Bool(); b != want || err != nil {
			t.Errorf("Bool(%q) = %v %v", in, b, err)
		}
	}
	arr := parseOne(t, "*4\r\n$1\r\na\r\n:2\r\n$-1\r\n*1\r\n-ERR in\r\n")
	sl, err := arr.Slice()
	if err != nil || len(sl) != 4 || sl[0] != "a" || sl[1] != int64(2) || sl[2] != nil {
		t.Fatalf("Slice: %#v %v", sl, err)
	}
	nested, ok := sl[3].([]any)
	var re *Error
	if !ok || len(nested) != 1 || !errors.As(nested[0].(error), &re) || re.Error() != "ERR in" {
		t.Errorf("nested: %#v", sl[3])
	}
	rs, err := arr.Results()
	if err != nil || len(rs) != 4 || rs[2].Err() != ErrNil {
		t.Errorf("Results: %v %v", rs, err)
	}
	strs, err := parseOne(t, "*3\r\n$1\r\na\r\n$-1\r\n:5\r\n").Strings()
	if err != nil || !reflect.DeepEqual(strs, []string{"a", "", "5"}) {
		t.Errorf("Strings: %q %v", strs, err)
	}
	v, err := parseOne(t, "%1\r\n$1\r\nk\r\n*1\r\n:1\r\n").Value()
	if err != nil || !reflect.DeepEqual(v, map[string]any{"k": []any{int64(1)}}) {
		t.Errorf("Value of map: %#v %v", v, err)
	}
}

func TestResultErrors(t *testing.T) {
	nilRes := parseOne(t, "$-1\r\n")
	if !nilRes.IsNil() || !errors.Is(nilRes.Err(), ErrNil) {
		t.Errorf("nil: %v", nilRes.Err())
	}
	if _, err := nilRes.Text(); !errors.Is(err, ErrNil) {
		t.Errorf("Text of nil: %v", err)
	}
	moved := parseOne(t, "-MOVED 3999 127.0.0.1:6381\r\n")
	var re *Error
	if !errors.As(moved.Err(), &re) || re.Error() != "MOVED 3999 127.0.0.1:6381" || re.Prefix() != "MOVED" {
		t.Fatalf("MOVED: %v", moved.Err())
	}
	if !errors.Is(moved.Err(), ErrMoved) || errors.Is(moved.Err(), ErrAsk) {
		t.Error("errors.Is by prefix")
	}
	cd := parseOne(t, "-CLUSTERDOWN The cluster is down\r\n")
	if !errors.Is(cd.Err(), ErrClusterDown) {
		t.Error("CLUSTERDOWN kind")
	}
	if (&Error{msg: "NOSPACE"}).Prefix() != "NOSPACE" {
		t.Error("prefix without space")
	}
	if _, err := moved.Int64(); !errors.As(err, &re) {
		t.Errorf("Int64 of error reply: %v", err)
	}
	var te *ReplyTypeError
	if _, err := parseOne(t, "$3\r\nabc\r\n").Int64(); !errors.As(err, &te) || te.Text != "abc" {
		t.Errorf("Int64 of text: %v", err)
	}
	if _, err := parseOne(t, ":1\r\n").Slice(); !errors.As(err, &te) || te.Got != KindInt {
		t.Errorf("Slice of int: %v", err)
	}
	tr := errResult(io.ErrUnexpectedEOF)
	if tr.Err() != io.ErrUnexpectedEOF || tr.Kind() != KindInvalid {
		t.Errorf("transport: %v", tr.Err())
	}
	if _, err := tr.Text(); err != io.ErrUnexpectedEOF {
		t.Errorf("Text of transport error: %v", err)
	}
	if (Result{}).Err() == nil {
		t.Error("zero Result must not look like success")
	}
	if KindMap.String() != "map" || Kind(200).String() != "kind(200)" {
		t.Error("Kind.String")
	}
}

// Replies must not alias the reader's buffer, which is reused.
func TestResultsDoNotAliasBuffer(t *testing.T) {
	rd := newRespReader(strings.NewReader("$3\r\nabc\r\n*1\r\n$3\r\ndef\r\n+XYZ\r\n$3\r\nghi\r\n"))
	var got []Result
	for range 4 {
		r, err := rd.readReply()
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, r)
	}
	for i := range rd.buf {
		rd.buf[i] = '#'
	}
	want := []string{`"abc"`, `["def"]`, `"XYZ"`, `"ghi"`}
	for i, w := range want {
		if got[i].String() != w {
			t.Errorf("reply %d = %s, want %s", i, got[i], w)
		}
	}
}

func TestStaticSimpleStringsDoNotAllocate(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts are meaningless under -race")
	}
	data := []byte("+OK\r\n+PONG\r\n+QUEUED\r\n")
	rd := newRespReader(nil)
	allocs := testing.AllocsPerRun(100, func() {
		rd.r, rd.w = 0, copy(rd.buf, data)
		for range 3 {
			if _, err := rd.readReply(); err != nil {
				t.Fatal(err)
			}
		}
	})
	if allocs != 0 {
		t.Errorf("allocs = %v", allocs)
	}
}
