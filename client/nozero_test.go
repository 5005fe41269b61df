package client

import (
	"bytes"
	"fmt"
	"testing"
	"unsafe"
)

// TestMakeNoZero: the uncleared path is the one in use on this toolchain
// (were Builder.String ever to copy, every large reply would silently be
// cleared again), and its buffers behave as make's: length 0, capacity n,
// room for n bytes without moving, and no two sharing memory.
func TestMakeNoZero(t *testing.T) {
	if !builderViews {
		t.Fatal("strings.Builder.String no longer views its buffer: makeNoZero falls back to make")
	}
	for _, n := range []int{0, 1, noZeroMin - 1, noZeroMin, 1 << 20} {
		a, b := makeNoZero(n), makeNoZero(n)
		if len(a) != 0 || cap(a) != n {
			t.Fatalf("n=%d: len %d cap %d", n, len(a), cap(a))
		}
		a = append(a, bytes.Repeat([]byte{'a'}, n)...)
		b = append(b, bytes.Repeat([]byte{'b'}, n)...)
		if n > 0 && (unsafe.SliceData(a) == unsafe.SliceData(b) || cap(a) != n) {
			t.Fatalf("n=%d: appending n bytes moved the buffer or two buffers share one", n)
		}
		if bytes.Count(a, []byte{'a'}) != n || bytes.Count(b, []byte{'b'}) != n {
			t.Fatalf("n=%d: one buffer's bytes changed the other's", n)
		}
	}
}

// BenchmarkMakeNoZero: a buffer allocated and then written in full, as a
// large bulk's is, from make and from makeNoZero.
func BenchmarkMakeNoZero(b *testing.B) {
	src := bytes.Repeat([]byte{'v'}, 16<<20)
	for _, n := range []int{1 << 20, 16 << 20} {
		for _, nz := range []bool{false, true} {
			name := fmt.Sprintf("%dMiB/make", n>>20)
			if nz {
				name = fmt.Sprintf("%dMiB/noZero", n>>20)
			}
			b.Run(name, func(b *testing.B) {
				b.SetBytes(int64(n))
				b.ReportAllocs()
				for b.Loop() {
					var p []byte
					if nz {
						p = makeNoZero(n)
					} else {
						p = make([]byte, 0, n)
					}
					sinkBytes = append(p, src[:n]...)
				}
			})
		}
	}
}

var sinkBytes []byte
