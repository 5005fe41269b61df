package client

import (
	"encoding/binary"
	"iter"
	"sync"
	"unsafe"
)

// Packed aggregates. Most big arrays are flat runs of short bulk strings
// (LRANGE, MGET, HGETALL, KEYS, SMEMBERS, ZRANGE). Kept as a []Result they
// cost a 72-byte Result per element however short the element; kept packed
// they cost the element's bytes plus one length byte, in one allocation.
// Strings() then slices that one string, and All() walks it without
// allocating, so an LRANGE read with Strings() allocates about a fifth of
// what it did.
//
// A packed Result is an Array, Set or Map whose arr is nil, whose num is
// the element count (never 0: an empty aggregate is never packed) and whose
// str holds each element as a uvarint length then its bytes. Elements are at most slabMax bytes, so a length takes one or two
// bytes.

// packed reports a Result kept in the packed form.
func (r Result) packed() bool {
	return r.arr == nil && r.num > 0 && (r.kind == KindArray || r.kind == KindSet || r.kind == KindMap)
}

// nextPacked splits the first element off a packed string.
func nextPacked(s string) (elem, rest string) {
	n, k := int(s[0]), 1
	if n >= 0x80 { // lengths are under 1<<14: two bytes at most
		n, k = n&0x7f|int(s[1])<<7, 2
	}
	return s[k : k+n], s[k+n:]
}

// appendPacked appends one element to a packed buffer.
func appendPacked(b, elem []byte) []byte {
	return append(binary.AppendUvarint(b, uint64(len(elem))), elem...)
}

// packedSize is what an element of n bytes takes in a packed buffer.
func packedSize(n int) int {
	if n < 0x80 {
		return n + 1
	}
	return n + 2
}

// Len returns the number of elements of an array, map (keys and values),
// set or push reply, and 0 for any other reply.
func (r Result) Len() int {
	switch {
	case r.packed():
		return int(r.num)
	case r.isAggregate():
		return len(r.arr)
	}
	return 0
}

// All iterates over the elements of an array, map (alternating keys and
// values), set or push reply, with their index; other replies have none.
// Unlike Results it never allocates.
func (r Result) All() iter.Seq2[int, Result] {
	return func(yield func(int, Result) bool) {
		if r.packed() {
			s := r.str
			for i := range int(r.num) {
				var e string
				e, s = nextPacked(s)
				if !yield(i, Result{kind: KindBulk, str: e}) {
					return
				}
			}
			return
		}
		if !r.isAggregate() {
			return
		}
		for i, e := range r.arr {
			if !yield(i, e) {
				return
			}
		}
	}
}

// elems returns the elements as a slice: the Result's own, or, for a packed
// one, a new slice each call.
func (r Result) elems() []Result {
	if !r.packed() {
		return r.arr
	}
	out := make([]Result, 0, r.num)
	for _, e := range r.All() {
		out = append(out, e)
	}
	return out
}

// at returns element i of an aggregate. On a packed one it walks from the
// start: for the first few elements (a pub/sub message's kind and channel),
// not for a loop over all of them.
func (r Result) at(i int) (Result, bool) {
	if !r.packed() {
		if i < 0 || i >= len(r.arr) {
			return Result{}, false
		}
		return r.arr[i], true
	}
	for j, e := range r.All() {
		if j == i {
			return e, true
		}
	}
	return Result{}, false
}

// concat joins aggregates' elements into one array (KEYS from every
// master): packed ones stay packed when every part is packed or empty.
func concat(parts []Result) Result {
	var n, size int
	allPacked := true
	for _, p := range parts {
		n += p.Len()
		if p.packed() {
			size += len(p.str)
		} else if p.Len() > 0 {
			allPacked = false
		}
	}
	if allPacked && n > 0 {
		b := makeNoZero(size)
		for _, p := range parts {
			if p.packed() {
				b = append(b, p.str...)
			}
		}
		return Result{kind: KindArray, str: unsafe.String(unsafe.SliceData(b), len(b)), num: int64(n)}
	}
	all := make([]Result, 0, n)
	for _, p := range parts {
		for _, e := range p.All() {
			all = append(all, e)
		}
	}
	return Result{kind: KindArray, arr: all}
}

// The reader's side: a frame packs its elements while each is a short bulk
// string, and unpacks into arr at the first that is not. Its elements go
// first into a pooled scratch buffer, so an array that fits (MGET, HGETALL,
// a page of SCAN) is allocated once at its exact size when it completes;
// one that outgrows the scratch moves to a buffer sized from the thousands
// of elements already seen. Each packing frame has a scratch of its own.

// packScratch is the scratch buffers' size.
const packScratch = 64 << 10

var scratchPool = sync.Pool{New: func() any { b := make([]byte, 0, packScratch); return &b }}

// packable reports an element a packing frame can keep.
func packable(v Result) bool { return v.kind == KindBulk && len(v.str) <= slabMax }

// packElem appends one element to f's packed buffer.
func (f *frame) packElem(elem []byte) {
	if f.pack == nil {
		f.scratch = scratchPool.Get().(*[]byte)
		f.pack = (*f.scratch)[:0]
	}
	if need := len(f.pack) + packedSize(len(elem)); need > cap(f.pack) {
		f.moveTo(f.packCap(need))
	}
	f.pack = appendPacked(f.pack, elem)
	f.packed++
}

// packCap sizes f's packed buffer, which must take at least need bytes, for
// the whole array: the elements so far, plus the rest at their average size
// and a quarter more, for sizes that drift (keys numbered 1 to 100,000 grow
// from 1 byte to 6). Out of the scratch, that is one allocation for most
// arrays; a buffer already out of it at least doubles, so an array whose
// elements keep growing is not copied element by element. It is at most
// packFirst bytes or packGrow times the buffer so far: a hostile count costs
// at most a multiple of the bytes that really arrived.
func (f *frame) packCap(need int) int {
	per := need - len(f.pack)
	if f.packed > 0 {
		per = max(per, (len(f.pack)+f.packed-1)/f.packed)
	}
	est := len(f.pack) + (f.want-f.packed)*per*5/4
	if f.scratch == nil {
		est = max(est, 2*cap(f.pack))
	}
	return max(need, min(est, max(packGrow*cap(f.pack), packFirst)))
}

// own moves f's elements out of the scratch, into a buffer of their exact
// size.
func (f *frame) own() {
	if f.scratch != nil {
		f.moveTo(len(f.pack))
	}
}

// moveTo copies f's elements into a new buffer of capacity c, returning
// the scratch, if f had it, to the pool.
func (f *frame) moveTo(c int) {
	nb := makeNoZero(c)[:len(f.pack)]
	copy(nb, f.pack)
	if f.scratch != nil {
		*f.scratch = f.pack[:0]
		scratchPool.Put(f.scratch)
		f.scratch = nil
	}
	f.pack = nb
}

// count is how many elements f holds.
func (f *frame) count() int {
	if f.packing {
		return f.packed
	}
	return len(f.arr)
}

// unpack turns f's packed elements into Results (their strings view the
// packed buffer, which is never written again) so elements of any kind can
// follow.
func (f *frame) unpack() {
	f.own()
	arr := make([]Result, 0, min(f.want, max(preallocElems, 2*f.packed)))
	for _, e := range f.packedResult().All() {
		arr = append(arr, e)
	}
	f.arr, f.pack, f.packed, f.packing = arr, nil, 0, false
}

// result is the Result of a full frame.
func (f *frame) result() Result {
	if !f.packing {
		return aggregate(f.typ, f.arr)
	}
	f.own()
	return f.packedResult()
}

// packedResult views f's packed elements as a packed Result (with none, an
// aggregate without elements). Call own first: a Result must not view the
// scratch.
func (f *frame) packedResult() Result {
	r := aggregate(f.typ, nil)
	r.str = unsafe.String(unsafe.SliceData(f.pack), len(f.pack))
	r.num = int64(f.packed)
	return r
}
