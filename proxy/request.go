package proxy

import (
	"bytes"
	"errors"
	"io"
	"strconv"
)

// Redis's own limits on a request (networking.c, redis 7.0), so a client
// that works against redis-server works here and one that does not is told
// the same thing.
const (
	maxInlineLen = 64 << 10 // PROTO_INLINE_MAX_SIZE: an inline request or a header line
	maxBulkLen   = 512 << 20
	maxArgs      = 1<<31 - 1 // INT_MAX: the multibulk count
	// Before AUTH a client may send only small requests, so an
	// unauthenticated peer cannot make the proxy buffer much.
	maxUnauthArgs    = 10
	maxUnauthBulkLen = 16 << 10

	readChunk = 16 << 10
)

// protocolError is a malformed request. Its text is the reply Redis sends
// before it closes the connection.
type protocolError struct{ msg string }

func (e *protocolError) Error() string { return "Protocol error: " + e.msg }

var errIncomplete = errors.New("proxy: incomplete request")

// requestReader parses client requests: RESP multibulk arrays and inline
// commands (what redis-cli and telnet send). Memory follows the bytes that
// arrive, never a header's claim: a "$536870912" header costs nothing until
// the bulk's bytes are actually sent.
type requestReader struct {
	rd   io.Reader
	buf  []byte
	r, w int
	// authed lifts the small pre-AUTH limits.
	authed bool
}

func newRequestReader(rd io.Reader) *requestReader {
	return &requestReader{rd: rd, buf: make([]byte, readChunk)}
}

// buffered reports whether unparsed bytes are waiting: a pipelining client
// sent more than one request.
func (q *requestReader) buffered() bool { return q.w > q.r }

// next returns the next request, reading from the connection only when
// block is true; without it, a request not yet complete in the buffer
// returns errIncomplete. The arguments are appended to arena (which the
// caller keeps until the replies are written), so they survive later reads.
func (q *requestReader) next(arena []byte, args [][]byte, block bool) ([]byte, [][]byte, error) {
	for {
		n, a, ar, err := q.parse(q.buf[q.r:q.w], arena, args)
		if err == nil {
			q.r += n
			if len(a) == len(args) {
				continue // an empty line or *0: no command
			}
			return ar, a, nil
		}
		if err != errIncomplete {
			return arena, args, err
		}
		if !block {
			return arena, args, errIncomplete
		}
		if err := q.fill(); err != nil {
			return arena, args, err
		}
	}
}

// fill reads more bytes, compacting the buffer first and growing it only
// when one request does not fit.
func (q *requestReader) fill() error {
	if q.r > 0 {
		q.w = copy(q.buf, q.buf[q.r:q.w])
		q.r = 0
	}
	if q.w == len(q.buf) {
		nb := make([]byte, 2*len(q.buf))
		copy(nb, q.buf[:q.w])
		q.buf = nb
	}
	n, err := q.rd.Read(q.buf[q.w:])
	q.w += n
	if n > 0 {
		return nil
	}
	if err == nil {
		err = io.ErrNoProgress
	}
	return err
}

// shrink drops a buffer a huge request grew, once it is consumed.
func (q *requestReader) shrink() {
	if q.r == q.w && len(q.buf) > 4*readChunk {
		q.buf, q.r, q.w = make([]byte, readChunk), 0, 0
	}
}

// parse reads one request from b. It returns how many bytes it used, or
// errIncomplete (nothing used) when b ends before the request does.
func (q *requestReader) parse(b, arena []byte, args [][]byte) (int, [][]byte, []byte, error) {
	if len(b) == 0 {
		return 0, args, arena, errIncomplete
	}
	if b[0] != '*' {
		return q.parseInline(b, arena, args)
	}
	line, pos, err := readLine(b, 0, "too big mbulk count string")
	if err != nil {
		return 0, args, arena, err
	}
	count, ok := parseInt(line[1:])
	if !ok || count > maxArgs {
		return 0, args, arena, &protocolError{"invalid multibulk length"}
	}
	if !q.authed && count > maxUnauthArgs {
		return 0, args, arena, &protocolError{"unauthenticated multibulk length"}
	}
	base, baseArena := len(args), len(arena)
	for i := int64(0); i < count; i++ {
		line, next, err := readLine(b, pos, "too big bulk count string")
		if err != nil {
			return 0, args[:base], arena[:baseArena], err
		}
		if len(line) == 0 || line[0] != '$' {
			got := byte('\r') // what redis-server finds on an empty line
			if len(line) > 0 {
				got = line[0]
			}
			return 0, args[:base], arena[:baseArena], &protocolError{"expected '$', got '" + string(got) + "'"}
		}
		n, ok := parseInt(line[1:])
		if !ok || n < 0 || n > maxBulkLen {
			return 0, args[:base], arena[:baseArena], &protocolError{"invalid bulk length"}
		}
		if !q.authed && n > maxUnauthBulkLen {
			return 0, args[:base], arena[:baseArena], &protocolError{"unauthenticated bulk length"}
		}
		end := next + int(n)
		if end+2 > len(b) {
			return 0, args[:base], arena[:baseArena], errIncomplete
		}
		if b[end] != '\r' || b[end+1] != '\n' {
			// Redis does not check the CRLF after a bulk; it skips two
			// bytes. Refusing is safer: the stream is out of step.
			return 0, args[:base], arena[:baseArena], &protocolError{"bulk not terminated by CRLF"}
		}
		arena, args = appendArg(arena, args, b[next:end])
		pos = end + 2
	}
	return pos, args, arena, nil
}

// appendArg copies p into the arena and records it. Earlier views stay
// valid when the arena grows: they point into the old array, which is
// kept alive by them and never written again.
func appendArg(arena []byte, args [][]byte, p []byte) ([]byte, [][]byte) {
	start := len(arena)
	arena = append(arena, p...)
	return arena, append(args, arena[start:len(arena):len(arena)])
}

// readLine returns b's line starting at pos (without CRLF) and the position
// after it; the line must fit Redis's inline limit.
func readLine(b []byte, pos int, tooBig string) ([]byte, int, error) {
	i := bytes.IndexByte(b[pos:], '\n')
	if i < 0 {
		if len(b)-pos > maxInlineLen {
			return nil, 0, &protocolError{tooBig}
		}
		return nil, 0, errIncomplete
	}
	if i > maxInlineLen {
		return nil, 0, &protocolError{tooBig}
	}
	line := b[pos : pos+i]
	if len(line) == 0 || line[len(line)-1] != '\r' {
		return nil, 0, &protocolError{"line not terminated by CRLF"}
	}
	return line[:len(line)-1], pos + i + 1, nil
}

// parseInt parses a header's decimal number; empty or non-digit text fails.
func parseInt(b []byte) (int64, bool) {
	if len(b) == 0 || len(b) > 19 {
		return 0, false
	}
	n, err := strconv.ParseInt(string(b), 10, 64)
	return n, err == nil
}

// parseInline splits one inline line the way redis-server's sdssplitargs
// does: blanks separate, "double quotes" take \n \r \t \b \a \\ \" and \xHH
// escapes, 'single quotes' take \', and a closing quote must be followed by
// a blank.
func (q *requestReader) parseInline(b, arena []byte, args [][]byte) (int, [][]byte, []byte, error) {
	i := bytes.IndexByte(b, '\n')
	if i < 0 {
		if len(b) > maxInlineLen {
			return 0, args, arena, &protocolError{"too big inline request"}
		}
		return 0, args, arena, errIncomplete
	}
	if i > maxInlineLen {
		return 0, args, arena, &protocolError{"too big inline request"}
	}
	line := b[:i]
	if len(line) > 0 && line[len(line)-1] == '\r' {
		line = line[:len(line)-1]
	}
	base, baseArena := len(args), len(arena)
	p := 0
	for {
		for p < len(line) && isBlank(line[p]) {
			p++
		}
		if p == len(line) {
			break
		}
		start := len(arena)
		var ok bool
		arena, p, ok = splitArg(arena, line, p)
		if !ok {
			return 0, args[:base], arena[:baseArena], &protocolError{"unbalanced quotes in request"}
		}
		args = append(args, arena[start:len(arena):len(arena)])
	}
	return i + 1, args, arena, nil
}

func isBlank(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == 0 }

// splitArg appends one inline argument starting at line[p] to arena.
func splitArg(arena, line []byte, p int) ([]byte, int, bool) {
	inDouble, inSingle := false, false
	for ; p < len(line); p++ {
		c := line[p]
		switch {
		case inDouble:
			switch {
			case c == '\\' && p+3 < len(line) && line[p+1] == 'x' && isHex(line[p+2]) && isHex(line[p+3]):
				arena = append(arena, unhex(line[p+2])<<4|unhex(line[p+3]))
				p += 3
			case c == '\\' && p+1 < len(line):
				p++
				arena = append(arena, unescape(line[p]))
			case c == '"':
				// The closing quote must be followed by a blank or the end.
				if p+1 < len(line) && !isBlank(line[p+1]) {
					return arena, p, false
				}
				return arena, p + 1, true
			default:
				arena = append(arena, c)
			}
		case inSingle:
			switch {
			case c == '\\' && p+1 < len(line) && line[p+1] == '\'':
				p++
				arena = append(arena, '\'')
			case c == '\'':
				if p+1 < len(line) && !isBlank(line[p+1]) {
					return arena, p, false
				}
				return arena, p + 1, true
			default:
				arena = append(arena, c)
			}
		default:
			switch c {
			case ' ', '\t', '\n', '\r', 0:
				return arena, p, true
			case '"':
				inDouble = true
			case '\'':
				inSingle = true
			default:
				arena = append(arena, c)
			}
		}
	}
	return arena, p, !inDouble && !inSingle
}

func isHex(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F'
}

func unhex(c byte) byte {
	switch {
	case c >= 'a':
		return c - 'a' + 10
	case c >= 'A':
		return c - 'A' + 10
	}
	return c - '0'
}

func unescape(c byte) byte {
	switch c {
	case 'n':
		return '\n'
	case 'r':
		return '\r'
	case 't':
		return '\t'
	case 'b':
		return '\b'
	case 'a':
		return '\a'
	}
	return c
}
