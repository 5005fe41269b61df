package client

import (
	"encoding/binary"
	"iter"
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
// the element count (never 0: an empty aggregate has a non-nil empty arr or
// nothing to pack) and whose str holds each element as a uvarint length then
// its bytes. Elements are at most slabMax bytes, so a length takes one or two
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

// packedSize is what elem takes in a packed buffer.
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
		b := make([]byte, 0, size)
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
// string, and unpacks into arr at the first that is not.

// packable reports an element a packing frame can keep.
func packable(v Result) bool { return v.kind == KindBulk && len(v.str) <= slabMax }

// packElem appends one element to f's packed buffer. The buffer grows towards
// what the frame's announced count would take at the average element size
// so far, but at most packGrow-fold at a time: a hostile count costs at most
// a multiple of the bytes that really arrived.
func (f *frame) packElem(elem []byte) {
	need := len(f.pack) + packedSize(len(elem))
	if need > cap(f.pack) {
		per := packedSize(len(elem))
		if f.packed > 0 {
			per = (len(f.pack) + f.packed - 1) / f.packed
		}
		est := len(f.pack) + (f.want-f.packed)*per
		est += est / 16
		c := max(need, min(est, packGrow*max(cap(f.pack), packFirst/packGrow)))
		nb := make([]byte, len(f.pack), c)
		copy(nb, f.pack)
		f.pack = nb
	}
	f.pack = appendPacked(f.pack, elem)
	f.packed++
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
	arr := make([]Result, 0, min(f.want, max(preallocElems, 2*f.packed)))
	s := unsafe.String(unsafe.SliceData(f.pack), len(f.pack))
	for range f.packed {
		var e string
		e, s = nextPacked(s)
		arr = append(arr, Result{kind: KindBulk, str: e})
	}
	f.arr, f.pack, f.packed, f.packing = arr, nil, 0, false
}

// packedAggregate is the Result of a frame that stayed packed.
func packedAggregate(typ byte, pack []byte, n int) Result {
	r := aggregate(typ, nil)
	r.str = unsafe.String(unsafe.SliceData(pack), len(pack))
	r.num = int64(n)
	return r
}
