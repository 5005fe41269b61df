package client

import "unsafe"

// Aggregates (arrays, maps, sets, pushes, attributes): their headers open a
// frame on the reader's stack, elements fill it as they are parsed, and a
// full frame becomes one Result. The run of short bulk strings that makes
// up most arrays is taken straight from the buffer.

func (r *respReader) aggregateHeader(typ byte, hdr []byte) (Result, bool, error) {
	n, null, err := parseLength(typ, '*', hdr, maxArrayLen, "aggregate")
	if err != nil {
		return Result{}, false, err
	}
	if null {
		return Result{kind: KindNil}, true, nil
	}
	elems := int(n)
	if typ == '%' || typ == '|' {
		elems *= 2
	}
	if elems == 0 {
		if typ == '|' {
			return Result{}, false, nil // nothing to describe the next value
		}
		return aggregate(typ, []Result{}), true, nil
	}
	if len(r.stack) >= maxDepth {
		return Result{}, false, protoErr("nesting too deep")
	}
	if typ == '*' || typ == '~' || typ == '%' {
		// Packed until an element is not a short bulk string (packed.go).
		r.stack = append(r.stack, frame{typ: typ, want: elems, packing: true})
	} else {
		r.stack = append(r.stack, frame{typ: typ, want: elems, arr: make([]Result, 0, min(elems, preallocElems))})
	}
	return Result{}, false, nil
}

// bulkRun appends to f, straight from the buffer, the run of short bulk
// strings ("$3\r\nfoo\r\n") that are there whole: the elements of LRANGE,
// MGET, HGETALL and their like. It is the general path unrolled for its
// commonest case and does exactly what that path would, element by element
// (the same charges, the same slab or packed buffer); anything else
// (another type, a nil, a string not all here, a long one, a malformed
// header, the frame's last element or a full array) is left to it, nothing
// consumed.
func (r *respReader) bulkRun(f *frame) {
	for (f.packing || len(f.arr) < cap(f.arr)) && f.count()+1 < f.want {
		buf := r.buf[r.r:r.w]
		n, end, ok := shortBulk(buf)
		if !ok {
			return
		}
		if r.limit > 0 && r.used+int64(n)+resultSize > r.limit {
			return // the general path reports it where it arises
		}
		r.used += int64(n) + resultSize
		p := buf[end-2-n : end-2]
		if f.packing {
			f.packElem(p)
		} else {
			f.arr = append(f.arr, Result{kind: KindBulk, str: r.slabString(p)})
		}
		r.r += end
	}
}

// shortBulk parses the bulk string of at most slabMax bytes that buf starts
// with ("$3\r\nfoo\r\n"), if it is there whole: its length and the bytes it
// takes (header, CRLF, payload, CRLF). A long one, a nil, a malformed header
// or a string not all here is not ok.
func shortBulk(buf []byte) (n, end int, ok bool) {
	if len(buf) < 4 || buf[0] != '$' {
		return 0, 0, false
	}
	i := 1
	for ; i < len(buf) && i <= 3 && buf[i] >= '0' && buf[i] <= '9'; i++ {
		n = n*10 + int(buf[i]-'0')
	}
	if i == 1 || n > slabMax {
		return 0, 0, false
	}
	end = i + 2 + n + 2
	if len(buf) < end || buf[i] != '\r' || buf[i+1] != '\n' || buf[end-2] != '\r' || buf[end-1] != '\n' {
		return 0, 0, false
	}
	return n, end, true
}

// slabString copies p (at most slabMax bytes) into the reply's slab and
// returns it as a string. The slab is only ever appended to: bytes once
// viewed as a string never change.
func (r *respReader) slabString(p []byte) string {
	n := len(p)
	if cap(r.slab)-len(r.slab) < n {
		// Sized for the rest of the innermost array if its elements are
		// like this one, so a long array gets full slabs at once.
		f := &r.stack[len(r.stack)-1]
		guess := (f.want - len(f.arr)) * max(n, 8)
		r.slab = makeNoZero(min(slabSize, max(minSlab, guess, 2*cap(r.slab))))
	}
	at := len(r.slab)
	r.slab = append(r.slab, p...)
	return unsafe.String(unsafe.SliceData(r.slab[at:]), n)
}

func aggregate(typ byte, arr []Result) Result {
	switch typ {
	case '%':
		return Result{kind: KindMap, arr: arr}
	case '~':
		return Result{kind: KindSet, arr: arr}
	case '>':
		return Result{kind: KindPush, arr: arr}
	}
	return Result{kind: KindArray, arr: arr}
}
