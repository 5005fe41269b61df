package slots

import (
	"bytes"
	"errors"
	"strings"
	"testing"
)

// FuzzSlot checks the fast checksum against the reference, and the hash-tag
// rule against its definition, on any key. Seeds are the CLUSTER KEYSLOT
// answers recorded from a real server (testdata/commands/keyslots.txt).
func FuzzSlot(f *testing.F) {
	for _, k := range knownSlots(f) {
		f.Add(k.key)
	}
	// Keys of every length class the checksum loops distinguish, with and
	// without a tag, so the fuzzer starts with full loop coverage instead of
	// spending its time minimising long inputs that merely reach a new
	// iteration count.
	for _, n := range []int{1, 2, 3, 4, 5, 7, 8, 9, 12, 15, 16, 17, 24, 31, 32, 33, 48, 63, 64, 65, 100, 127, 128, 129, 200, 255, 256, 257, 511, 512, 1024, 2048, 4096} {
		k := make([]byte, n)
		for i := range k {
			k[i] = byte('a' + i%26)
		}
		f.Add(k)
		t := append([]byte("{"), k...)
		f.Add(append(t, "}x"...))
	}
	f.Fuzz(func(t *testing.T, key []byte) {
		if got, want := checksum(key), referenceChecksum(key); got != want {
			t.Fatalf("checksum(%q) = %#04x, reference %#04x", key, got, want)
		}
		tag := HashTag(key)
		if s := HashTag(string(key)); s != string(tag) {
			t.Fatalf("HashTag string %q != bytes %q", s, tag)
		}
		open := bytes.IndexByte(key, '{')
		if len(tag) == len(key) {
			// Whole key: no '{', no '}' after the first '{', or an empty tag.
			if open >= 0 {
				if end := bytes.IndexByte(key[open+1:], '}'); end > 0 {
					t.Fatalf("HashTag(%q) is the whole key, but %q is a tag", key, key[open+1:open+1+end])
				}
			}
		} else {
			// A tag: the bytes right after the first '{' up to the next '}'.
			if open < 0 || len(tag) == 0 || !bytes.Equal(key[open+1:open+1+len(tag)], tag) ||
				open+1+len(tag) >= len(key) || key[open+1+len(tag)] != '}' || bytes.IndexByte(tag, '}') >= 0 {
				t.Fatalf("HashTag(%q) = %q breaks the tag rule", key, tag)
			}
		}
		s := Of(key)
		if s >= Count || s != Slot(referenceChecksum(tag)&(Count-1)) || Of(string(key)) != s {
			t.Fatalf("Of(%q) = %d", key, s)
		}
	})
}

// FuzzKeys feeds random argument lists to the generated table and to a
// command with arbitrary key specs (as a module might declare): nothing may
// panic, and every position AppendKeys returns must be inside args. Seeds
// are the GETKEYS corpus (arguments joined by NUL).
func FuzzKeys(f *testing.F) {
	for _, a := range corpus(f) {
		f.Add(bytes.Join(a, []byte{0}), int8(1), int8(0), int8(-1), int8(1), int8(0))
	}
	f.Add([]byte("XREAD\x00STREAMS\x00a\x00b\x001\x002"), int8(-2), int8(0), int8(-1), int8(2), int8(2))
	f.Add([]byte("X\x00k\x002\x00a\x00b"), int8(2), int8(0), int8(1), int8(0), int8(0))
	f.Fuzz(func(t *testing.T, data []byte, begin, keynumIdx, lastKey, step, limit int8) {
		a := bytes.Split(data, []byte{0})
		custom := &Command{Name: "x", Arity: -1, KeySpecs: []KeySpec{
			{Begin: BeginSearch{Type: BeginIndex, Index: int(begin)}, Find: FindKeys{Type: FindRange, LastKey: int(lastKey), KeyStep: int(step), Limit: int(limit)}},
			{Begin: BeginSearch{Type: BeginKeyword, Keyword: "k", StartFrom: int(begin)}, Find: FindKeys{Type: FindKeynum, KeyNumIdx: int(keynumIdx), FirstKey: int(lastKey), KeyStep: int(step)}},
			{Flags: KeyNotKey | KeyIncomplete, Begin: BeginSearch{Type: BeginKeyword, Keyword: "K", StartFrom: int(limit)}, Find: FindKeys{Type: FindRange, LastKey: int(lastKey), KeyStep: int(step), Limit: int(limit)}},
		}}
		for _, c := range []*Command{DefaultTable().Lookup(a), custom} {
			if c == nil {
				continue
			}
			for _, p := range c.AppendRoutingKeys(c.AppendKeys(nil, a), a) {
				if p < 1 || p >= len(a) {
					t.Fatalf("%s %q: position %d out of [1,%d)", c.Name, a, p, len(a))
				}
			}
			_, _, _ = c.Slot(a)
			_ = c.IsBlocking(a)
		}
		if _, _, err := DefaultTable().Slot(a); err != nil && !strings.HasPrefix(err.Error(), "slots: ") && !errors.Is(err, ErrCrossSlot) {
			t.Fatalf("Slot(%q): unexpected error %v", a, err)
		}
	})
}
