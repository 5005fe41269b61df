package client

import (
	"strings"
	"unsafe"
)

// makeNoZero returns a slice of length 0 and capacity n whose bytes are not
// cleared first. make clears every byte it allocates; for a reply's buffer
// that is one more pass over memory that the read or copy right after
// overwrites anyway: allocating and filling 1 MiB or 16 MiB takes a third
// less time without it (BenchmarkMakeNoZero). Callers must write every
// byte they later expose.
//
// The standard library allocates uncleared memory in strings.Builder.Grow
// (internal/bytealg.MakeNoZero), and Builder.String views that memory
// rather than copying it. builderViews checks the second fact once at
// start; were it ever false, this falls back to make.
func makeNoZero(n int) []byte {
	if n < noZeroMin || !builderViews {
		return make([]byte, 0, n)
	}
	var b strings.Builder
	b.Grow(n) // documented: n more bytes fit without another allocation
	b.WriteByte(0)
	s := b.String()
	return unsafe.Slice(unsafe.StringData(s), n)[:0]
}

// noZeroMin: smaller buffers come from make, whose clearing of a few KB
// costs next to nothing.
const noZeroMin = 4 << 10

// builderViews reports that a Builder's String views its buffer: two
// Strings taken across a write that fits start at the same address, which
// two distinct live allocations never do.
var builderViews = func() bool {
	var b strings.Builder
	b.Grow(64)
	b.WriteByte(0)
	s1 := b.String()
	b.WriteByte(1)
	s2 := b.String()
	return unsafe.StringData(s1) == unsafe.StringData(s2)
}()
