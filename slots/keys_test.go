package slots

import (
	"errors"
	"reflect"
	"strings"
	"testing"
)

func args(s ...string) [][]byte {
	out := make([][]byte, len(s))
	for i, a := range s {
		out[i] = []byte(a)
	}
	return out
}

func TestKnownKeySlots(t *testing.T) {
	for _, k := range knownSlots(t) {
		if got := Of(k.key); got != k.slot {
			t.Errorf("Of(%q) = %d, server said %d", k.key, got, k.slot)
		}
	}
}

func keysOf(c *Command, a [][]byte, routing bool) []string {
	var pos []int
	if routing {
		pos = c.AppendRoutingKeys(nil, a)
	} else {
		pos = c.AppendKeys(nil, a)
	}
	var out []string
	for _, p := range pos {
		out = append(out, string(a[p]))
	}
	return out
}

// TestKeysWhereTheServerErrors pins our answer for invocations the server
// refuses (GETKEYS "Invalid arguments", or the command itself would fail):
// no keys, so the router sends them anywhere and the node reports the error.
func TestKeysWhereTheServerErrors(t *testing.T) {
	for _, line := range []string{
		"EVAL s 3 k1 k2",      // numkeys > args
		"EVAL s -1 k1",        // negative numkeys
		"EVAL s 01 k1",        // not canonical: EVAL says "not an integer"
		"EVAL s +1 k1",        // ditto
		"EVAL s 1x k1",        // ditto
		"ZUNIONSTORE dst 0 a", // numkeys 0 where keys are mandatory
		"ZUNIONSTORE dst 3 a b",
		"XREAD STREAMS a",              // one argument cannot be split into keys and IDs
		"XREAD COUNT 1",                // no STREAMS
		"MIGRATE h p k 0 5000 KEYS a",  // KEYS needs the empty key
		"MIGRATE h p \"\" 0 5000 KEYS", // KEYS with nothing after it
		"BITOP AND",
	} {
		a := splitArgs(t, line)
		c := DefaultTable().Lookup(a)
		if c == nil {
			t.Fatalf("%s: unknown", line)
		}
		if got := keysOf(c, a, true); len(got) != 0 {
			t.Errorf("%s: keys %q, want none", line, got)
		}
	}
}

func TestKeysExamples(t *testing.T) {
	for _, tc := range []struct {
		line          string
		keys, routing string
	}{
		{"GET k", "k", "k"},
		{"MSET a 1 b 2", "a b", "a b"},
		{"EVAL s 2 k1 k2 a1", "k1 k2", "k1 k2"},
		{"XREAD COUNT 2 BLOCK 0 STREAMS s1 s2 0 $", "s1 s2", "s1 s2"},
		{"SORT k BY w_* GET o_* STORE dst", "k dst", "k dst"},
		{"SORT k STORE d1 STORE d2", "k d2", "k d2"},
		{"SORT_RO k BY w_*", "k", "k"},
		{"MIGRATE h p \"\" 0 5000 AUTH2 u keys KEYS k1 k2", "k1 k2", "k1 k2"},
		{"MIGRATE h p k 0 5000", "k", "k"},
		{"GEORADIUS k 15 37 200 km STORE d1 STOREDIST d2", "k d1 d2", "k d1 d2"},
		{"OBJECT ENCODING k", "k", "k"},
		{"SPUBLISH ch msg", "", "ch"},
		{"SSUBSCRIBE c1 c2", "", "c1 c2"},
		{"PING", "", ""},
	} {
		a := splitArgs(t, tc.line)
		c := DefaultTable().Lookup(a)
		got := strings.Join(keysOf(c, a, false), " ")
		routing := strings.Join(keysOf(c, a, true), " ")
		if got != tc.keys || routing != tc.routing {
			t.Errorf("%s: keys %q routing %q, want %q and %q", tc.line, got, routing, tc.keys, tc.routing)
		}
	}
}

func TestLookup(t *testing.T) {
	tab := DefaultTable()
	for _, tc := range []struct{ line, want string }{
		{"get k", "get"},
		{"GeT k", "get"},
		{"OBJECT ENCODING k", "object|encoding"},
		{"object Encoding k", "object|encoding"},
		{"OBJECT", "object"},
		{"OBJECT NOSUCH k", ""},
		{"NOSUCH", ""},
		{"CLUSTER INFO", "cluster|info"},
		{"GET", "get"}, // wrong arity is still GET
	} {
		c := tab.Lookup(splitArgs(t, tc.line))
		got := ""
		if c != nil {
			got = c.Name
		}
		if got != tc.want {
			t.Errorf("Lookup(%s) = %q, want %q", tc.line, got, tc.want)
		}
	}
	if c := tab.Lookup(nil); c != nil {
		t.Errorf("Lookup(nil) = %v", c.Name)
	}
	long := args(strings.Repeat("x", 200), "y")
	if c := tab.Lookup(long); c != nil {
		t.Errorf("Lookup(long) = %v", c.Name)
	}
}

func TestSlot(t *testing.T) {
	tab := DefaultTable()
	s, ok, err := tab.Slot(args("GET", "{user1000}.following"))
	if err != nil || !ok || s != 3443 {
		t.Errorf("GET: %d %v %v", s, ok, err)
	}
	s, ok, err = tab.Slot(args("MSET", "{t}a", "1", "{t}b", "2", "{t}a", "3"))
	if err != nil || !ok || s != Of("t") {
		t.Errorf("MSET same tag: %d %v %v", s, ok, err)
	}
	_, _, err = tab.Slot(args("MSET", "a", "1", "b", "2"))
	if !errors.Is(err, ErrCrossSlot) || err.Error() != "CROSSSLOT Keys in request don't hash to the same slot" {
		t.Errorf("MSET a b: %v", err)
	}
	var cse CrossSlotError
	if !errors.As(err, &cse) {
		t.Errorf("errors.As CrossSlotError failed for %v", err)
	}
	if _, _, err := tab.Slot(args("SSUBSCRIBE", "a", "b")); !errors.Is(err, ErrCrossSlot) {
		t.Errorf("SSUBSCRIBE a b: %v", err)
	}
	s, ok, err = tab.Slot(args("SPUBLISH", "news", "x"))
	if err != nil || !ok || s != Of("news") {
		t.Errorf("SPUBLISH: %d %v %v", s, ok, err)
	}
	if _, ok, err := tab.Slot(args("PING")); ok || err != nil {
		t.Errorf("PING: %v %v", ok, err)
	}
	if _, ok, err := tab.Slot(args("EVAL", "s", "0")); ok || err != nil {
		t.Errorf("EVAL 0: %v %v", ok, err)
	}
	if _, _, err := tab.Slot(args("NOSUCH", "k")); !errors.Is(err, ErrUnknownCommand) {
		t.Errorf("NOSUCH: %v", err)
	}
	if _, _, err := tab.Slot(nil); !errors.Is(err, ErrNoCommand) {
		t.Errorf("empty: %v", err)
	}
}

func TestIsBlocking(t *testing.T) {
	for _, tc := range []struct {
		line string
		want bool
	}{
		{"BLPOP a 0", true}, {"BRPOP a 0", true}, {"BLMOVE a b LEFT LEFT 0", true},
		{"BRPOPLPUSH a b 0", true}, {"BLMPOP 0 1 a LEFT", true}, {"BZPOPMIN a 0", true},
		{"BZPOPMAX a 0", true}, {"BZMPOP 0 1 a MIN", true}, {"WAIT 1 0", true},
		{"XREAD STREAMS s 0", false}, {"XREAD BLOCK 0 STREAMS s 0", true},
		{"xread count 1 block 10 streams s 0", true}, {"XREAD STREAMS block 0", false},
		{"XREADGROUP GROUP g c STREAMS s >", false}, {"XREADGROUP GROUP block c BLOCK 5 STREAMS s >", true},
		{"XREADGROUP GROUP g c NOACK STREAMS s >", false}, {"XREAD BLOCK", false},
		{"GET k", false}, {"LPOP a", false}, {"SUBSCRIBE a", false},
	} {
		a := splitArgs(t, tc.line)
		if got := DefaultTable().Lookup(a).IsBlocking(a); got != tc.want {
			t.Errorf("IsBlocking(%s) = %v, want %v", tc.line, got, tc.want)
		}
	}
}

// A module command learnt at run time, as COMMAND INFO sends it (RESP2 flat
// maps), must route like a built-in one.
func moduleReply() []any {
	return []any{[]any{
		"mod.set", int64(-3), []any{"write", "module"}, int64(1), int64(1), int64(1),
		[]any{"@write"}, []any{"request_policy:multi_shard", "response_policy:all_succeeded"},
		[]any{
			[]any{"flags", []any{"RW", "update"}, "begin_search", []any{"type", "index", "spec", []any{"index", int64(1)}},
				"find_keys", []any{"type", "range", "spec", []any{"lastkey", int64(-1), "keystep", int64(2), "limit", int64(0)}}},
		},
		[]any{},
	}, nil}
}

func TestParseCommandInfoAndWith(t *testing.T) {
	cmds, err := ParseCommandInfo(moduleReply())
	if err != nil || len(cmds) != 1 {
		t.Fatalf("ParseCommandInfo: %v %v", cmds, err)
	}
	c := cmds[0]
	if c.Flags&(Write|Module|MultiShard) != Write|Module|MultiShard || c.Response != ResponseAllSucceeded || c.Flags&NoKeys != 0 {
		t.Errorf("flags %v response %v", c.Flags, c.Response)
	}
	// The RESP3 shape (maps) gives the same command.
	r3 := []any{[]any{
		"mod.set", int64(-3), []any{"write", "module"}, int64(1), int64(1), int64(1),
		[]any{"@write"}, []any{"request_policy:multi_shard", "response_policy:all_succeeded"},
		[]any{map[any]any{"flags": []any{"RW", "update"},
			"begin_search": map[string]any{"type": "index", "spec": map[string]any{"index": int64(1)}},
			"find_keys":    map[any]any{"type": "range", "spec": map[any]any{"lastkey": int64(-1), "keystep": int64(2), "limit": int64(0)}}}},
		[]any{},
	}}
	cmds3, err := ParseCommandInfo(r3)
	if err != nil || !reflect.DeepEqual(cmds3[0], c) {
		t.Errorf("RESP3: %+v %v, want %+v", cmds3, err, c)
	}
	base := DefaultTable()
	ext := base.With(c)
	a := args("MOD.SET", "{x}a", "1", "{x}b", "2")
	if base.Lookup(a) != nil {
		t.Error("With changed the original table")
	}
	if got := keysOf(ext.Lookup(a), a, false); !reflect.DeepEqual(got, []string{"{x}a", "{x}b"}) {
		t.Errorf("module keys %q", got)
	}
	if ext.Len() != base.Len()+1 || ext.Lookup(args("GET", "k")) == nil {
		t.Errorf("With lost commands: %d vs %d", ext.Len(), base.Len())
	}
}

func TestParseCommandInfoErrors(t *testing.T) {
	for _, reply := range []any{
		"OK",
		[]any{"get"},
		[]any{[]any{int64(1), int64(2), []any{}, int64(1), int64(1), int64(1)}},
		[]any{[]any{"get", "two", []any{}, int64(1), int64(1), int64(1)}},
		[]any{[]any{"get", int64(2), "flags", int64(1), int64(1), int64(1)}},
		[]any{[]any{"get", int64(2), []any{}, int64(1), int64(1), int64(1), []any{}, []any{}, []any{[]any{"flags"}}, []any{}}},
		[]any{[]any{"get", int64(2), []any{}, int64(1), int64(1), int64(1), []any{}, []any{},
			[]any{[]any{"flags", []any{}, "begin_search", []any{"type", "index", "spec", []any{"index", "x"}}, "find_keys", []any{"type", "unknown"}}}, []any{}}},
	} {
		_, err := ParseCommandInfo(reply)
		var pe *ParseError
		if !errors.Is(err, ErrCommandInfo) || !errors.As(err, &pe) {
			t.Errorf("ParseCommandInfo(%v) = %v, want a *ParseError", reply, err)
		}
	}
	// A pre-7.0 entry (6 fields) uses the legacy key triple.
	cmds, err := ParseCommandInfo([]any{[]any{"mset", int64(-3), []any{"write"}, int64(1), int64(-1), int64(2)}})
	if err != nil {
		t.Fatal(err)
	}
	a := args("MSET", "a", "1", "b", "2")
	if got := keysOf(cmds[0], a, false); !reflect.DeepEqual(got, []string{"a", "b"}) {
		t.Errorf("legacy MSET keys %q", got)
	}
}

func TestHotPathZeroAllocs(t *testing.T) {
	tab := DefaultTable()
	get := args("GET", "{user1000}.following")
	mset := args("MSET", "{t}a", "1", "{t}b", "2", "{t}c", "3")
	dst := make([]int, 0, 8)
	n := testing.AllocsPerRun(200, func() {
		for _, a := range [][][]byte{get, mset} {
			c := tab.Lookup(a)
			dst = c.AppendKeys(dst[:0], a)
			if _, _, err := tab.Slot(a); err != nil {
				t.Fatal(err)
			}
		}
	})
	if n != 0 {
		t.Errorf("Lookup+AppendKeys+Slot allocate %v times", n)
	}
}

func BenchmarkCommand(b *testing.B) {
	tab := DefaultTable()
	for _, tc := range []struct {
		name string
		args [][]byte
	}{
		{"GET", args("GET", "{user1000}.following")},
		{"MSET", args("MSET", "{t}a", "1", "{t}b", "2", "{t}c", "3", "{t}d", "4")},
	} {
		b.Run(tc.name, func(b *testing.B) {
			b.ReportAllocs()
			dst := make([]int, 0, 8)
			for b.Loop() {
				c := tab.Lookup(tc.args)
				dst = c.AppendKeys(dst[:0], tc.args)
				if _, _, err := c.Slot(tc.args); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
