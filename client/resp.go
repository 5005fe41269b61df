package client

import (
	"bytes"
	"io"
	"math"
	"strconv"
	"unsafe"
)

// Sanity caps. A corrupt or hostile length must cost a protocol error, not
// an allocation of that size: bulks and arrays are also allocated in step
// with the bytes that actually arrive, never up front from the header.
const (
	maxBulkLen  = 512 << 20 // Redis' own proto-max-bulk-len default
	maxArrayLen = 1 << 24
	maxLineLen  = 1 << 20 // simple strings, errors, numbers
	maxDepth    = 64      // nesting; real replies stay under 10
	readBufSize = 32 << 10
	// keepCap bounds how much of one reply a rewindable reader holds in its
	// buffer; a bigger reply is read as usual but can no longer be rewound.
	keepCap       = 64 << 20
	bulkChunk     = 1 << 20 // growth step for bulks larger than the buffer
	preallocElems = 1024    // elements allocated before any of them arrive
)

// respReader parses RESP2 (and, defensively, RESP3) replies from rd. Every
// Result it returns owns its memory; the buffer is reused.
type respReader struct {
	rd      io.Reader
	buf     []byte
	r, w    int
	started bool // bytes of the current reply have been seen

	// keep asks for rewindable replies: the bytes of the reply being
	// parsed stay in buf from mark on, so a read that times out midway
	// (a caller reading its own reply with its deadline) can be undone and
	// parsed again later by whoever reads next. rewind is keep for the
	// current reply, dropped when the reply outgrows keepCap.
	keep   bool
	rewind bool
	mark   int
}

func newRespReader(rd io.Reader) *respReader {
	return &respReader{rd: rd, buf: make([]byte, readBufSize)}
}

func protoErr(reason string) error { return &ProtocolError{Reason: reason} }

// buffered is how many unread bytes are in the buffer.
func (r *respReader) buffered() int { return r.w - r.r }

// fill reads at least one more byte, compacting first and growing the buffer
// only while a single line is longer than it.
func (r *respReader) fill() error {
	from := r.r
	if r.rewind {
		if r.w-r.mark >= keepCap {
			r.rewind = false // too big to keep: read on, but no way back
		} else {
			from = r.mark
		}
	}
	if from > 0 {
		r.w = copy(r.buf, r.buf[from:r.w])
		r.r -= from
		r.mark = max(r.mark-from, 0)
	}
	if r.w == len(r.buf) {
		// Only a long line or a kept reply fills the buffer; both are
		// bounded (maxLineLen in line, keepCap above).
		nb := make([]byte, 2*len(r.buf))
		copy(nb, r.buf[:r.w])
		r.buf = nb
	}
	for range 100 {
		n, err := r.rd.Read(r.buf[r.w:])
		r.w += n
		if n > 0 {
			r.started = true
			return nil
		}
		if err != nil {
			return err
		}
	}
	return io.ErrNoProgress
}

// line returns the next line without its CRLF. The slice aliases the buffer
// and is valid until the next read.
func (r *respReader) line() ([]byte, error) {
	scanned := 0
	for {
		if i := bytes.IndexByte(r.buf[r.r+scanned:r.w], '\n'); i >= 0 {
			end := r.r + scanned + i
			if end == r.r || r.buf[end-1] != '\r' {
				return nil, protoErr("line not terminated by CRLF")
			}
			l := r.buf[r.r : end-1]
			r.r = end + 1
			return l, nil
		}
		scanned = r.w - r.r
		if scanned >= maxLineLen {
			return nil, protoErr("line too long")
		}
		if err := r.fill(); err != nil {
			return nil, err
		}
	}
}

// parseInt parses a RESP integer without allocating.
func parseInt(b []byte) (int64, bool) {
	if len(b) == 0 || len(b) > 20 {
		return 0, false
	}
	neg := false
	if b[0] == '-' || b[0] == '+' {
		neg = b[0] == '-'
		b = b[1:]
		if len(b) == 0 {
			return 0, false
		}
	}
	var n uint64
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		d := uint64(c - '0')
		if n > (math.MaxUint64-d)/10 {
			return 0, false
		}
		n = n*10 + d
	}
	if neg {
		if n > 1<<63 {
			return 0, false
		}
		return -int64(n), true
	}
	if n > math.MaxInt64 {
		return 0, false
	}
	return int64(n), true
}

// simpleString avoids allocating for the replies that dominate write
// traffic.
func simpleString(b []byte) string {
	switch string(b) {
	case "OK":
		return "OK"
	case "PONG":
		return "PONG"
	case "QUEUED":
		return "QUEUED"
	}
	return string(b)
}

// readReply parses one complete reply. EOF inside a reply is
// io.ErrUnexpectedEOF; io.EOF means the stream ended cleanly between replies.
func (r *respReader) readReply() (Result, error) {
	r.mark, r.rewind = r.r, r.keep
	r.started = r.buffered() > 0
	res, err := r.read(0)
	if err == io.EOF && r.started {
		err = io.ErrUnexpectedEOF
	}
	if err == nil && len(r.buf) > 4*readBufSize && r.buffered() <= readBufSize/2 {
		// A big reply grew the buffer; do not pin it for the pipe's life.
		nb := make([]byte, readBufSize)
		r.w = copy(nb, r.buf[r.r:r.w])
		r.r, r.buf = 0, nb
	}
	return res, err
}

// unread undoes the partial parse of the current reply after a read error
// (a deadline), so the next readReply starts it again from its first byte.
// It reports false when the reply could not be kept (not in keep mode, or
// bigger than keepCap): the stream is then out of step.
func (r *respReader) unread() bool {
	if !r.rewind {
		return !r.started
	}
	r.r = r.mark
	return true
}

func (r *respReader) read(depth int) (Result, error) {
	if depth > maxDepth {
		return Result{}, protoErr("nesting too deep")
	}
	l, err := r.line()
	if err != nil {
		return Result{}, err
	}
	if len(l) == 0 {
		return Result{}, protoErr("empty line")
	}
	body := l[1:]
	switch l[0] {
	case '+':
		return Result{kind: KindString, str: simpleString(body)}, nil
	case '-':
		return Result{kind: KindError, err: &Error{msg: string(body)}}, nil
	case ':':
		n, ok := parseInt(body)
		if !ok {
			return Result{}, protoErr("bad integer")
		}
		return Result{kind: KindInt, num: n}, nil
	case '$', '=', '!':
		return r.readBulk(l[0], body)
	case '*', '~', '>', '%', '|':
		return r.readAggregate(l[0], body, depth)
	case '_':
		if len(body) != 0 {
			return Result{}, protoErr("bad null")
		}
		return Result{kind: KindNil}, nil
	case ',':
		f, err := strconv.ParseFloat(unsafe.String(unsafe.SliceData(body), len(body)), 64)
		if err != nil {
			return Result{}, protoErr("bad double")
		}
		return Result{kind: KindDouble, num: int64(math.Float64bits(f))}, nil
	case '#':
		if len(body) != 1 || (body[0] != 't' && body[0] != 'f') {
			return Result{}, protoErr("bad boolean")
		}
		var v int64
		if body[0] == 't' {
			v = 1
		}
		return Result{kind: KindBool, num: v}, nil
	case '(':
		if _, ok := parseBigInt(body); !ok {
			return Result{}, protoErr("bad big number")
		}
		return Result{kind: KindBulk, str: string(body)}, nil
	}
	return Result{}, protoErr("unknown type byte " + strconv.QuoteRune(rune(l[0])))
}

func parseBigInt(b []byte) ([]byte, bool) {
	if len(b) > 0 && b[0] == '-' {
		b = b[1:]
	}
	if len(b) == 0 {
		return nil, false
	}
	for _, c := range b {
		if c < '0' || c > '9' {
			return nil, false
		}
	}
	return b, true
}

func (r *respReader) readBulk(typ byte, hdr []byte) (Result, error) {
	n, ok := parseInt(hdr)
	if !ok || n < -1 {
		return Result{}, protoErr("bad bulk length")
	}
	if n == -1 {
		if typ != '$' {
			return Result{}, protoErr("bad bulk length")
		}
		return Result{kind: KindNil}, nil
	}
	if n > maxBulkLen {
		return Result{}, protoErr("bulk length " + strconv.FormatInt(n, 10) + " over limit")
	}
	s, err := r.readBody(int(n))
	if err != nil {
		return Result{}, err
	}
	switch typ {
	case '!':
		return Result{kind: KindError, err: &Error{msg: s}}, nil
	case '=': // verbatim: "txt:" + text
		if len(s) < 4 || s[3] != ':' {
			return Result{}, protoErr("bad verbatim string")
		}
		s = s[4:]
	}
	return Result{kind: KindBulk, str: s}, nil
}

// readBody reads n payload bytes plus CRLF into a fresh string.
func (r *respReader) readBody(n int) (string, error) {
	if n+2 <= len(r.buf) || (r.rewind && n+2 <= keepCap) {
		for r.buffered() < n+2 {
			if err := r.fill(); err != nil {
				return "", err
			}
		}
		b := r.buf[r.r : r.r+n+2]
		if b[n] != '\r' || b[n+1] != '\n' {
			return "", protoErr("bulk not terminated by CRLF")
		}
		r.r += n + 2
		return string(b[:n]), nil
	}
	// Larger than the buffer: grow with the data, not with the header.
	out := make([]byte, 0, min(n, bulkChunk))
	for len(out) < n {
		if r.buffered() == 0 {
			if err := r.fill(); err != nil {
				return "", err
			}
		}
		take := min(n-len(out), r.buffered())
		out = append(out, r.buf[r.r:r.r+take]...)
		r.r += take
	}
	for r.buffered() < 2 {
		if err := r.fill(); err != nil {
			return "", err
		}
	}
	if r.buf[r.r] != '\r' || r.buf[r.r+1] != '\n' {
		return "", protoErr("bulk not terminated by CRLF")
	}
	r.r += 2
	// out is never exposed as a slice, so viewing it as a string is safe and
	// saves a copy of a large value.
	return unsafe.String(unsafe.SliceData(out), len(out)), nil
}

func (r *respReader) readAggregate(typ byte, hdr []byte, depth int) (Result, error) {
	n, ok := parseInt(hdr)
	if !ok || n < -1 {
		return Result{}, protoErr("bad aggregate length")
	}
	if n == -1 {
		if typ != '*' {
			return Result{}, protoErr("bad aggregate length")
		}
		return Result{kind: KindNil}, nil
	}
	if n > maxArrayLen {
		return Result{}, protoErr("aggregate length " + strconv.FormatInt(n, 10) + " over limit")
	}
	elems := int(n)
	if typ == '%' || typ == '|' {
		elems *= 2
	}
	arr := make([]Result, 0, min(elems, preallocElems))
	for range elems {
		e, err := r.read(depth + 1)
		if err != nil {
			return Result{}, err
		}
		arr = append(arr, e)
	}
	switch typ {
	case '|': // attributes describe the next reply; we do not use them
		return r.read(depth + 1)
	case '%':
		return Result{kind: KindMap, arr: arr}, nil
	case '~':
		return Result{kind: KindSet, arr: arr}, nil
	case '>':
		return Result{kind: KindPush, arr: arr}, nil
	}
	return Result{kind: KindArray, arr: arr}, nil
}
