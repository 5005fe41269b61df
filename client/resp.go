package client

import (
	"bytes"
	"io"
	"math"
	"strconv"
	"sync/atomic"
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
	// bulkProof: a bulk longer than the buffer gets its announced length
	// allocated (once, as the string it becomes) only when this much of it
	// has arrived, so a large value costs exactly its length.
	bulkProof     = readBufSize / 2
	preallocElems = 1024 // elements allocated before any of them arrive
	// growElems: an aggregate's elements grow by this factor as they
	// arrive (up to the announced count), so the copies total a third of
	// the final size rather than all of it.
	growElems = 4
	// A reply's slabs are sized for what its array still announces (and
	// at least double the last one), from minSlab up to slabSize bytes: a
	// short array (MGET of a few keys) does not pay for 32 KB.
	minSlab  = 64
	slabSize = 32 << 10
	slabMax  = 256 // longer strings get their own allocation
	// A packing array that outgrows its scratch (packed.go) is sized for
	// its announced count, but at most packFirst bytes or packGrow times
	// the buffer so far.
	packFirst = 1 << 20
	packGrow  = 16
	// resultSize is what one element costs in memory, for the reply cap.
	resultSize = int64(unsafe.Sizeof(Result{}))
)

// DefaultMaxReplyBytes is the default Options.MaxReplyBytes: Redis's own
// proto-max-bulk-len, so any value the server can hold can be read.
const DefaultMaxReplyBytes = 512 << 20

// respReader parses RESP2 (and, defensively, RESP3) replies from rd. Every
// Result it returns owns its memory; the buffer is reused.
//
// The parse is resumable: when rd fails with a timeout mid-reply (a caller
// reading its own reply gives up at its deadline), everything parsed so far
// stays in the reader, and the next readReply, by whoever reads next,
// continues from the byte it stopped at. So each byte of a reply is parsed
// once whatever the deadlines, and leaving on time never desynchronises the
// stream.
type respReader struct {
	rd      io.Reader
	buf     []byte
	r, w    int
	started bool // bytes of the current reply have been seen
	scanned int  // bytes after r already searched for the line end

	// The reply in progress: open aggregates, innermost last, and the bulk
	// whose header was read and whose body is being read (inBody).
	stack  []frame
	inBody bool
	body   bulkState

	// limit caps what one reply may hold in memory (payload bytes plus
	// resultSize per element); used is the current reply's count.
	limit int64
	used  int64

	// slab holds the small strings of the current aggregate reply: one
	// allocation per slab (see slabString) instead of one per element.
	// Elements of one reply share it, so keeping one of them keeps at most
	// one slab alive; a top-level string never shares.
	slab []byte

	// progress counts the bytes read from rd; the pipe's health check reads
	// it to tell a node that is slowly sending a big reply from a hung one.
	progress atomic.Int64
}

type frame struct {
	typ  byte
	want int // elements expected
	arr  []Result
	// While packing, the elements so far are short bulk strings held in
	// pack (packed.go) and counted by packed; arr is unused until unpack.
	// pack is the pooled scratch while scratch is set.
	packing bool
	pack    []byte
	packed  int
	scratch *[]byte
}

type bulkState struct {
	typ byte
	n   int
	out []byte // payload so far, for bodies longer than the buffer
}

func newRespReader(rd io.Reader) *respReader {
	return &respReader{rd: rd, buf: make([]byte, readBufSize), limit: DefaultMaxReplyBytes}
}

func protoErr(reason string) error { return &ProtocolError{Reason: reason} }

// buffered is how many unread bytes are in the buffer.
func (r *respReader) buffered() int { return r.w - r.r }

// midReply reports that a reply has been partly parsed.
func (r *respReader) midReply() bool { return len(r.stack) > 0 || r.inBody }

// fill reads at least one more byte, compacting first and growing the buffer
// only while a single line is longer than it.
func (r *respReader) fill() error {
	if r.r > 0 {
		r.w = copy(r.buf, r.buf[r.r:r.w])
		r.r = 0
	}
	if r.w == len(r.buf) {
		// Only a long line fills the buffer; maxLineLen bounds it.
		nb := make([]byte, 2*len(r.buf))
		copy(nb, r.buf[:r.w])
		r.buf = nb
	}
	for range 100 {
		n, err := r.rd.Read(r.buf[r.w:])
		r.w += n
		if n > 0 {
			r.started = true
			r.progress.Add(int64(n))
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
	for {
		if i := bytes.IndexByte(r.buf[r.r+r.scanned:r.w], '\n'); i >= 0 {
			end := r.r + r.scanned + i
			r.scanned = 0
			if end == r.r || r.buf[end-1] != '\r' {
				return nil, protoErr("line not terminated by CRLF")
			}
			l := r.buf[r.r : end-1]
			r.r = end + 1
			return l, nil
		}
		r.scanned = r.w - r.r
		if r.scanned >= maxLineLen {
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

// readReply parses one complete reply, or resumes the one a timed-out read
// left unfinished. EOF inside a reply is io.ErrUnexpectedEOF; io.EOF means
// the stream ended cleanly between replies. After any error other than a
// timeout the stream is out of step and the reader must be dropped.
func (r *respReader) readReply() (Result, error) {
	if !r.midReply() {
		r.started = r.buffered() > 0
		r.used = 0
		r.slab = nil
	}
	res, err := r.parse()
	if err != nil {
		if err == io.EOF && r.started {
			err = io.ErrUnexpectedEOF
		}
		return Result{}, err
	}
	r.started = false
	if len(r.buf) > 4*readBufSize && r.buffered() <= readBufSize/2 {
		// A long line grew the buffer; do not pin it for the pipe's life.
		nb := make([]byte, readBufSize)
		r.w = copy(nb, r.buf[r.r:r.w])
		r.r, r.buf = 0, nb
	}
	return res, nil
}

// charge counts n more bytes against the reply's memory cap.
func (r *respReader) charge(n int64) error {
	r.used += n
	if r.limit > 0 && r.used > r.limit {
		return &ReplyTooLargeError{Limit: r.limit}
	}
	return nil
}

// parse runs the reply's state machine until the reply is complete or a read
// fails; the state survives a failed read.
func (r *respReader) parse() (Result, error) {
	for {
		var v Result
		if r.inBody {
			var err error
			if v, err = r.readBody(); err != nil {
				return Result{}, err
			}
		} else {
			if len(r.stack) > 0 && r.scanned == 0 {
				r.bulkRun(&r.stack[len(r.stack)-1])
			}
			l, err := r.line()
			if err != nil {
				return Result{}, err
			}
			var complete bool
			if v, complete, err = r.header(l); err != nil {
				return Result{}, err
			}
			if !complete {
				continue
			}
		}
		// v is complete: it is the reply, or one element of the innermost
		// open aggregate, which it may complete in turn.
		for {
			k := len(r.stack)
			if k == 0 {
				return v, nil
			}
			if err := r.charge(resultSize); err != nil {
				return Result{}, err
			}
			f := &r.stack[k-1]
			if f.packing && packable(v) {
				f.packElem(unsafe.Slice(unsafe.StringData(v.str), len(v.str)))
			} else {
				if f.packing {
					f.unpack()
				}
				if len(f.arr) == cap(f.arr) {
					na := make([]Result, len(f.arr), min(f.want, growElems*cap(f.arr)))
					copy(na, f.arr)
					f.arr = na
				}
				f.arr = append(f.arr, v)
			}
			if f.count() < f.want {
				break
			}
			typ := f.typ
			v = f.result()
			*f = frame{}
			r.stack = r.stack[:k-1]
			if typ == '|' {
				break // attributes describe the next value, which we read instead
			}
		}
	}
}

// header parses one line. complete is false when the line opened an
// aggregate or a bulk, whose contents follow.
func (r *respReader) header(l []byte) (v Result, complete bool, err error) {
	if len(l) == 0 {
		return Result{}, false, protoErr("empty line")
	}
	body := l[1:]
	switch l[0] {
	case '+':
		if err := r.charge(int64(len(body))); err != nil {
			return Result{}, false, err
		}
		return Result{kind: KindString, str: simpleString(body)}, true, nil
	case '-':
		if err := r.charge(int64(len(body))); err != nil {
			return Result{}, false, err
		}
		return Result{kind: KindError, err: &Error{msg: string(body)}}, true, nil
	case ':':
		n, ok := parseInt(body)
		if !ok {
			return Result{}, false, protoErr("bad integer")
		}
		return Result{kind: KindInt, num: n}, true, nil
	case '$', '=', '!':
		return r.bulkHeader(l[0], body)
	case '*', '~', '>', '%', '|':
		return r.aggregateHeader(l[0], body)
	case '_':
		if len(body) != 0 {
			return Result{}, false, protoErr("bad null")
		}
		return Result{kind: KindNil}, true, nil
	case ',':
		f, err := strconv.ParseFloat(unsafe.String(unsafe.SliceData(body), len(body)), 64)
		if err != nil {
			return Result{}, false, protoErr("bad double")
		}
		return Result{kind: KindDouble, num: int64(math.Float64bits(f))}, true, nil
	case '#':
		if len(body) != 1 || (body[0] != 't' && body[0] != 'f') {
			return Result{}, false, protoErr("bad boolean")
		}
		var v int64
		if body[0] == 't' {
			v = 1
		}
		return Result{kind: KindBool, num: v}, true, nil
	case '(':
		if _, ok := parseBigInt(body); !ok {
			return Result{}, false, protoErr("bad big number")
		}
		return Result{kind: KindBulk, str: string(body)}, true, nil
	}
	return Result{}, false, protoErr("unknown type byte " + strconv.QuoteRune(rune(l[0])))
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

// parseLength parses a bulk's or an aggregate's length: 0 to limit, or -1
// (null) where the RESP2 type nullable allows it. what names the kind in
// errors ("bulk", "aggregate").
func parseLength(typ, nullable byte, hdr []byte, limit int64, what string) (n int64, null bool, err error) {
	n, ok := parseInt(hdr)
	if !ok || n < -1 || (n == -1 && typ != nullable) {
		return 0, false, protoErr("bad " + what + " length")
	}
	if n > limit {
		return 0, false, protoErr(what + " length " + strconv.FormatInt(n, 10) + " over limit")
	}
	return n, n == -1, nil
}

func (r *respReader) bulkHeader(typ byte, hdr []byte) (Result, bool, error) {
	n, null, err := parseLength(typ, '$', hdr, maxBulkLen, "bulk")
	if err != nil {
		return Result{}, false, err
	}
	if null {
		return Result{kind: KindNil}, true, nil
	}
	if err := r.charge(n); err != nil {
		return Result{}, false, err
	}
	r.inBody, r.body = true, bulkState{typ: typ, n: int(n)}
	return Result{}, false, nil
}

// readBody reads the current bulk's payload plus CRLF. A body that fits the
// buffer is copied out of it once; a longer one is read straight from the
// connection into its own allocation, which becomes the string.
func (r *respReader) readBody() (Result, error) {
	b := &r.body
	n := b.n
	var s string
	if b.out == nil && n+2 <= len(r.buf) {
		for r.buffered() < n+2 {
			if err := r.fill(); err != nil {
				return Result{}, err
			}
		}
		p := r.buf[r.r : r.r+n+2]
		if p[n] != '\r' || p[n+1] != '\n' {
			return Result{}, protoErr("bulk not terminated by CRLF")
		}
		r.r += n + 2
		switch {
		case len(r.stack) > 0 && n <= slabMax && b.typ == '$' && r.stack[len(r.stack)-1].packing:
			// The frame copies it into its packed buffer at once, before
			// any read can reuse the buffer this string views.
			s = unsafe.String(unsafe.SliceData(p), n)
		case len(r.stack) > 0 && n <= slabMax:
			s = r.slabString(p[:n])
		default:
			s = string(p[:n])
		}
	} else {
		if b.out == nil {
			// Allocate the announced length only once bulkProof bytes of
			// it are really here (in the buffer: no allocation of its
			// own), so a bare hostile header costs nothing.
			for r.buffered() < bulkProof {
				if err := r.fill(); err != nil {
					return Result{}, err
				}
			}
			b.out = makeNoZero(n)
		}
		for len(b.out) < n {
			if r.buffered() > 0 {
				take := min(n-len(b.out), r.buffered())
				b.out = append(b.out, r.buf[r.r:r.r+take]...)
				r.r += take
				continue
			}
			m, err := r.rd.Read(b.out[len(b.out):cap(b.out)])
			if m > 0 {
				b.out = b.out[:len(b.out)+m]
				r.started = true
				r.progress.Add(int64(m))
				continue
			}
			if err == nil {
				err = io.ErrNoProgress // a reader returning 0, nil forever
			}
			return Result{}, err
		}
		for r.buffered() < 2 {
			if err := r.fill(); err != nil {
				return Result{}, err
			}
		}
		if r.buf[r.r] != '\r' || r.buf[r.r+1] != '\n' {
			return Result{}, protoErr("bulk not terminated by CRLF")
		}
		r.r += 2
		// out is never exposed as a slice, so viewing it as a string is
		// safe and saves a copy of a large value.
		s = unsafe.String(unsafe.SliceData(b.out), len(b.out))
	}
	typ := b.typ
	r.inBody, r.body = false, bulkState{}
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
