package client

import (
	"bytes"
	"context"
	"fmt"
	"reflect"
	"runtime"
	"strings"
	"testing"
	"testing/iotest"
	"time"

	"github.com/slotrouter/slotrouter/internal/redistest"
)

func bulk(s string) string { return fmt.Sprintf("$%d\r\n%s\r\n", len(s), s) }

// parseThreeWays parses in as one reply read whole, one byte per Read, and
// in 3-byte chunks with a timeout before each: a packed array must come out
// the same however its bytes arrive and wherever a parse resumes.
func parseThreeWays(t *testing.T, in string) Result {
	t.Helper()
	var out []Result
	for _, rd := range []*respReader{
		newRespReader(strings.NewReader(in)),
		newRespReader(iotest.OneByteReader(strings.NewReader(in))),
		newRespReader(&flaky{data: []byte(in), chunk: 3}),
	} {
		r, _, err := readPast(rd, 4*len(in)+8)
		if err != nil {
			t.Fatalf("%q: %v", in, err)
		}
		out = append(out, r)
	}
	for _, r := range out[1:] {
		if r.String() != out[0].String() || r.packed() != out[0].packed() {
			t.Fatalf("%q parses differently by chunk: %s (packed %v) vs %s (packed %v)", in, out[0], out[0].packed(), r, r.packed())
		}
	}
	return out[0]
}

// checkViews checks that every way of reading an aggregate's elements
// agrees, packed or not.
func checkViews(t *testing.T, r Result) {
	t.Helper()
	rs, err := r.Results()
	if err != nil || len(rs) != r.Len() {
		t.Fatalf("Results: %d elements, Len %d, %v", len(rs), r.Len(), err)
	}
	n := 0
	for i, e := range r.All() {
		if i != n || e.String() != rs[i].String() || e.Kind() != rs[i].Kind() {
			t.Fatalf("All()[%d] = %s, Results()[%d] = %s", i, e, n, rs[n])
		}
		if a, ok := r.at(i); !ok || a.String() != e.String() {
			t.Fatalf("at(%d) = %s %v, want %s", i, a, ok, e)
		}
		n++
	}
	if n != len(rs) {
		t.Fatalf("All yielded %d of %d", n, len(rs))
	}
	if _, ok := r.at(n); ok {
		t.Fatalf("at(%d) past the end found an element", n)
	}
	for range r.All() {
		break // an early break must not panic
	}
	if !r.packed() {
		return
	}
	strs, err := r.Strings()
	if err != nil || len(strs) != len(rs) {
		t.Fatalf("Strings: %d, %v", len(strs), err)
	}
	for i, s := range strs {
		if rs[i].Kind() != KindBulk || s != rs[i].str {
			t.Fatalf("Strings()[%d] = %q, element %s", i, s, rs[i])
		}
	}
}

func TestPackedArrays(t *testing.T) {
	long := func(n int) string { return strings.Repeat("x", n-1) + "y" }
	cases := []struct {
		name   string
		in     string
		kind   Kind
		packed bool
		want   []string // elements' Text (packed or not); nil: not checked
	}{
		{"short strings", "*3\r\n" + bulk("a") + bulk("") + bulk("ccc"), KindArray, true, []string{"a", "", "ccc"}},
		{"length byte boundaries", "*4\r\n" + bulk(long(127)) + bulk(long(128)) + bulk(long(255)) + bulk(long(slabMax)), KindArray, true, []string{long(127), long(128), long(255), long(slabMax)}},
		{"one element", "*1\r\n" + bulk("only"), KindArray, true, []string{"only"}},
		{"long string last", "*3\r\n" + bulk("a") + bulk("b") + bulk(long(slabMax+1)), KindArray, false, []string{"a", "b", long(slabMax + 1)}},
		{"long string first", "*2\r\n" + bulk(long(1000)) + bulk("b"), KindArray, false, []string{long(1000), "b"}},
		{"integer in the middle", "*3\r\n" + bulk("a") + ":7\r\n" + bulk("b"), KindArray, false, []string{"a", "7", "b"}},
		{"nil first", "*2\r\n$-1\r\n" + bulk("b"), KindArray, false, nil},
		{"simple string", "*2\r\n" + bulk("a") + "+OK\r\n", KindArray, false, []string{"a", "OK"}},
		{"error element", "*2\r\n" + bulk("a") + "-ERR no\r\n", KindArray, false, nil},
		{"blob error element", "*2\r\n" + bulk("a") + "!6\r\nERR no\r\n", KindArray, false, nil},
		{"verbatim and big number", "*3\r\n" + bulk("a") + "=8\r\ntxt:abcd\r\n(123456789012345678901234567890\r\n", KindArray, true, []string{"a", "abcd", "123456789012345678901234567890"}},
		{"map", "%2\r\n" + bulk("k1") + bulk("v1") + bulk("k2") + bulk("v2"), KindMap, true, []string{"k1", "v1", "k2", "v2"}},
		{"set", "~2\r\n" + bulk("m1") + bulk("m2"), KindSet, true, []string{"m1", "m2"}},
		{"push stays unpacked", ">3\r\n" + bulk("message") + bulk("ch") + bulk("hi"), KindPush, false, []string{"message", "ch", "hi"}},
		{"empty", "*0\r\n", KindArray, false, []string{}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := parseThreeWays(t, tc.in)
			if r.Kind() != tc.kind || r.packed() != tc.packed {
				t.Fatalf("kind %v packed %v, want %v packed %v", r.Kind(), r.packed(), tc.kind, tc.packed)
			}
			checkViews(t, r)
			if tc.want == nil {
				return
			}
			got, err := r.Strings()
			if err != nil || !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("Strings = %q %v, want %q", got, err, tc.want)
			}
		})
	}

	// Nested: the outer array holds arrays, so it is not packed; each inner
	// one is. The map's Value pairs keys with values.
	r := parseThreeWays(t, "*3\r\n*2\r\n"+bulk("a")+bulk("b")+"*0\r\n*1\r\n"+bulk("c"))
	inner, _ := r.at(0)
	if r.packed() || !inner.packed() || r.String() != `[["a", "b"], [], ["c"]]` {
		t.Fatalf("nested: %s (outer packed %v, inner packed %v)", r, r.packed(), inner.packed())
	}
	checkViews(t, r)
	checkViews(t, inner)
	// An array inside a packing array packs into a scratch of its own:
	// "a", in the outer one's, must survive it.
	r = parseThreeWays(t, "*3\r\n"+bulk("a")+"*2\r\n"+bulk("b")+bulk("c")+bulk("d"))
	if r.packed() || r.String() != `["a", ["b", "c"], "d"]` {
		t.Fatalf("array inside a packing array: %s", r)
	}
	// Past the scratch: 20,000 elements of 0 to 20 bytes (about 250 KB).
	var big strings.Builder
	var want []string
	fmt.Fprintf(&big, "*20000\r\n")
	for i := range 20000 {
		e := strings.Repeat(string(rune('a'+i%26)), i%21)
		want = append(want, e)
		big.WriteString(bulk(e))
	}
	r = parseThreeWays(t, big.String())
	if got, err := r.Strings(); !r.packed() || err != nil || !reflect.DeepEqual(got, want) {
		t.Fatalf("20,000 elements: packed %v, %d elements, %v", r.packed(), len(got), err)
	}
	checkViews(t, r)
	m, err := parseThreeWays(t, "%2\r\n"+bulk("k1")+bulk("v1")+bulk("k2")+bulk("v2")).Value()
	if err != nil || !reflect.DeepEqual(m, map[string]any{"k1": "v1", "k2": "v2"}) {
		t.Fatalf("map Value = %#v %v", m, err)
	}
	s, err := parseThreeWays(t, "*2\r\n"+bulk("a")+bulk("b")).Slice()
	if err != nil || !reflect.DeepEqual(s, []any{"a", "b"}) {
		t.Fatalf("Slice = %#v %v", s, err)
	}
}

// A packed array that outgrows its scratch is sized for its announced
// count, but a header announcing 16 million elements followed by 80 KB of
// them costs at most packFirst (1 MiB) beyond the 64 KB scratch (allocated
// when the pool has none), not the 80 MB the count asks for.
func TestPackedArrayHostileCount(t *testing.T) {
	in := "*16000000\r\n" + strings.Repeat(bulk("abc"), 20_000)
	rd := newRespReader(strings.NewReader(in))
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	_, err := rd.readReply()
	runtime.ReadMemStats(&after)
	if err == nil {
		t.Fatal("a truncated array parsed")
	}
	if got := after.TotalAlloc - before.TotalAlloc; got > packFirst+packScratch+16<<10 {
		t.Fatalf("20,000 elements of a 16M-element header allocated %d bytes", got)
	}
	if f := rd.stack[0]; !f.packing || f.packed != 20_000 || f.scratch != nil || cap(f.pack) > packFirst {
		t.Fatalf("frame: packing %v, %d elements, %d bytes of buffer", f.packing, f.packed, cap(f.pack))
	}
}

// An LRANGE-shaped reply (10,000 elements of 3 to 7 bytes) read with
// Strings costs about a string header per element plus its bytes, as the
// leanest client would: under 32 bytes per element in all, against 131
// when every element was a Result of its own.
func TestPackedArrayAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation figures are meaningless under -race")
	}
	const n = 10_000
	var buf bytes.Buffer
	fmt.Fprintf(&buf, "*%d\r\n", n)
	payload := 0
	for j := range n {
		e := fmt.Sprintf("0:%d", j)
		payload += len(e)
		buf.WriteString(bulk(e))
	}
	data := buf.Bytes()
	src := bytes.NewReader(data)
	rd := newRespReader(src)
	const runs = 20
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	for range runs {
		src.Reset(data)
		res, err := rd.readReply()
		if err != nil {
			t.Fatal(err)
		}
		if s, err := res.Strings(); err != nil || len(s) != n || s[n-1] != "0:9999" {
			t.Fatalf("Strings: %d, %v", len(s), err)
		}
	}
	runtime.ReadMemStats(&after)
	per := float64(after.TotalAlloc-before.TotalAlloc) / runs / n
	t.Logf("LRANGE-shaped reply with Strings: %.1f bytes allocated per element (payload %.1f per element)", per, float64(payload)/n)
	if per > 32 {
		t.Errorf("allocated %.1f bytes per element, want <= 32", per)
	}
}

// Against a real server: lists, hashes and sets of every element size
// around the packing limits come back whole and in order, as a packed
// reply or, where an element is too long to pack, as a plain one.
func TestPackedRepliesRealServer(t *testing.T) {
	srv := redistest.StartServer(t, redistest.ServerOptions{})
	n := testNode(t, srv.Addr, nil)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	sizes := []int{0, 1, 7, 127, 128, 129, 255, slabMax}
	var want []string
	for i := range 3000 {
		sz := sizes[i%len(sizes)]
		want = append(want, fmt.Sprintf("%06d", i)[:min(sz, 6)]+strings.Repeat("e", max(sz-6, 0)))
	}
	for lo := 0; lo < len(want); lo += 500 {
		args := []any{"RPUSH", "packed:list"}
		for _, e := range want[lo : lo+500] {
			args = append(args, e)
		}
		mustDo(t, n, args...)
	}
	for _, withLong := range []bool{false, true} {
		exp := want
		if withLong {
			mustDo(t, n, "LSET", "packed:list", 1500, strings.Repeat("L", slabMax+1))
			exp = append([]string(nil), want...)
			exp[1500] = strings.Repeat("L", slabMax+1)
		}
		r, err := do(ctx, n, "LRANGE", "packed:list", 0, -1)
		if err != nil {
			t.Fatal(err)
		}
		if r.packed() == withLong {
			t.Fatalf("LRANGE (an element over %d bytes: %v): packed %v", slabMax, withLong, r.packed())
		}
		got, err := r.Strings()
		if err != nil || !reflect.DeepEqual(got, exp) {
			t.Fatalf("LRANGE (long element %v): %d elements, %v", withLong, len(got), err)
		}
		checkViews(t, r)
	}

	mustDo(t, n, "HSET", "packed:hash", "f1", "v1", "f2", "", "f3", strings.Repeat("v", 200))
	h, err := do(ctx, n, "HGETALL", "packed:hash")
	if err != nil || !h.packed() {
		t.Fatalf("HGETALL: %s %v", h, err)
	}
	hv, _ := h.Value()
	if hs, _ := h.Strings(); len(hs) != 6 {
		t.Fatalf("HGETALL: %q (%#v)", hs, hv)
	}
	checkViews(t, h)

	mustDo(t, n, "SADD", "packed:set", "a", "b", "c")
	mustDo(t, n, "SET", "packed:k", "v")
	mg, err := do(ctx, n, "MGET", "packed:k", "packed:missing", "packed:k")
	if err != nil || mg.packed() || mg.String() != `["v", (nil), "v"]` {
		t.Fatalf("MGET with a missing key: %s %v (packed %v)", mg, err, mg.packed())
	}
	sm, err := do(ctx, n, "SORT", "packed:set", "ALPHA")
	if got, _ := sm.Strings(); err != nil || !sm.packed() || !reflect.DeepEqual(got, []string{"a", "b", "c"}) {
		t.Fatalf("SORT: %s %v", sm, err)
	}
}
