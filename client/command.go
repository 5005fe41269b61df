package client

import (
	"context"
	"math"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/slotrouter/slotrouter/slots"
)

// command is one request already encoded as a RESP2 array. Encoding happens
// once, at construction, so the pipe only copies bytes under its lock and the
// router reads keys from args without converting anything.
type command struct {
	buf []byte // the whole "*N\r\n$len\r\narg\r\n..." request
	// args views the payload of each argument inside buf (args[0] is the
	// command name). They alias buf: valid until release.
	args [][]byte
	offs []int // (start, length) of each argument payload in buf
	// refs: the caller's reference plus one per pipe that queued buf
	// without copying it (big requests); the last one out pools c.
	refs atomic.Int32
	// slow: the server may legitimately take long on it (mayTakeLong), so
	// a pipe waiting for its reply is not declared hung.
	slow bool
}

const (
	// Buffers that grew past these are dropped on release instead of going
	// back to the pool: one huge SET must not pin megabytes per P forever.
	maxPooledCommandBuf  = 64 << 10
	maxPooledCommandArgs = 1024
)

var commandPool = sync.Pool{New: func() any {
	return &command{buf: make([]byte, 0, 256), args: make([][]byte, 0, 8), offs: make([]int, 0, 16)}
}}

// newCommand encodes args. The slice and its elements do not escape (a plain
// type switch, no interface method calls, no fmt), so a caller's variadic
// ...any stays on its stack and Do("GET", key) boxes nothing on the heap.
func newCommand(args []any) (*command, error) { return encodeCommand(args, time.Time{}) }

// encodeCommand is newCommand bounded by a deadline (zero: none): a huge
// argument is copied in chunks, and the encoding gives up with
// context.DeadlineExceeded once the deadline has passed, instead of
// copying hundreds of megabytes for a caller that has already left.
func encodeCommand(args []any, deadline time.Time) (*command, error) {
	if len(args) == 0 {
		return nil, &ArgError{Index: -1, Type: "empty command"}
	}
	c := commandPool.Get().(*command)
	c.slow = false
	b := append(c.buf[:0], '*')
	b = strconv.AppendInt(b, int64(len(args)), 10)
	b = append(b, '\r', '\n')
	offs := c.offs[:0]
	var num [32]byte // scratch for numbers: their length must precede them
	for i, a := range args {
		var p []byte
		var s string
		isStr := false
		switch v := a.(type) {
		case string:
			s, isStr = v, true
		case []byte:
			p = v
		case int:
			p = strconv.AppendInt(num[:0], int64(v), 10)
		case int8:
			p = strconv.AppendInt(num[:0], int64(v), 10)
		case int16:
			p = strconv.AppendInt(num[:0], int64(v), 10)
		case int32:
			p = strconv.AppendInt(num[:0], int64(v), 10)
		case int64:
			p = strconv.AppendInt(num[:0], v, 10)
		case uint:
			p = strconv.AppendUint(num[:0], uint64(v), 10)
		case uint8:
			p = strconv.AppendUint(num[:0], uint64(v), 10)
		case uint16:
			p = strconv.AppendUint(num[:0], uint64(v), 10)
		case uint32:
			p = strconv.AppendUint(num[:0], uint64(v), 10)
		case uint64:
			p = strconv.AppendUint(num[:0], v, 10)
		case float32:
			p = appendFloat(num[:0], float64(v), 32)
		case float64:
			p = appendFloat(num[:0], v, 64)
		case bool:
			if v {
				p = append(num[:0], '1')
			} else {
				p = append(num[:0], '0')
			}
		default:
			c.buf, c.offs = b[:0], offs[:0]
			c.refs.Store(1)
			c.release()
			return nil, &ArgError{Index: i, Type: typeName(a)}
		}
		n := len(p)
		if isStr {
			n = len(s)
		}
		b = append(b, '$')
		b = strconv.AppendInt(b, int64(n), 10)
		b = append(b, '\r', '\n')
		offs = append(offs, len(b), n)
		switch {
		case n >= encodeChunk && !deadline.IsZero():
			var err error
			if b, err = appendChunked(b, s, p, isStr, deadline); err != nil {
				c.buf, c.offs = b[:0], offs[:0]
				c.refs.Store(1)
				c.release()
				return nil, err
			}
		case isStr:
			b = append(b, s...)
		default:
			b = append(b, p...)
		}
		b = append(b, '\r', '\n')
	}
	c.seal(b, offs)
	if len(c.args) == 3 && replyModeOff(c.args) {
		c.release()
		return nil, ErrReplyMode
	}
	return c, nil
}

// seal adopts the encoded request b, whose argument payloads sit at the
// (start, length) pairs offs, and cuts the argument views. Views are cut
// only now: appending to b may have moved it.
func (c *command) seal(b []byte, offs []int) {
	views := c.args[:0]
	for j := 0; j < len(offs); j += 2 {
		o, e := offs[j], offs[j]+offs[j+1]
		views = append(views, b[o:e:e])
	}
	c.buf, c.offs, c.args = b, offs, views
	c.refs.Store(1)
}

// encodeChunk is the copy step for big arguments under a deadline: small
// enough that one step costs well under a millisecond.
const encodeChunk = 1 << 20

// appendChunked appends s (or p) to b a chunk at a time, checking the
// deadline before each.
func appendChunked(b []byte, s string, p []byte, isStr bool, deadline time.Time) ([]byte, error) {
	n := len(p)
	if isStr {
		n = len(s)
	}
	for i := 0; i < n; i += encodeChunk {
		if !time.Now().Before(deadline) {
			return b, context.DeadlineExceeded
		}
		j := min(i+encodeChunk, n)
		if cap(b)-len(b) < j-i {
			// Grow by doubling, not to the full size at once: allocating
			// (and zeroing) 400 MB alone outlasts a short deadline.
			nb := make([]byte, len(b), min(max(2*cap(b), len(b)+j-i), len(b)+n-i+2))
			copy(nb, b)
			b = nb
		}
		if isStr {
			b = append(b, s[i:j]...)
		} else {
			b = append(b, p[i:j]...)
		}
	}
	return b, nil
}

func appendFloat(dst []byte, f float64, bits int) []byte {
	switch {
	case math.IsInf(f, 1):
		return append(dst, "+inf"...)
	case math.IsInf(f, -1):
		return append(dst, "-inf"...)
	}
	return strconv.AppendFloat(dst, f, 'f', -1, bits)
}

// typeName names an unsupported argument's type for ArgError. reflect.TypeOf
// does not make its argument escape, so this keeps newCommand's args on the
// caller's stack.
func typeName(a any) string {
	if a == nil {
		return "nil"
	}
	return reflect.TypeOf(a).String()
}

// name is the command name as sent (not case-folded).
func (c *command) name() []byte { return c.args[0] }

// release returns c to the pool. The caller must not touch c (or its args
// views) afterwards. Releasing right after do, even after a timeout, is
// safe: a pipe still writing c's bytes holds its own reference.
func (c *command) release() {
	if c == nil || c.refs.Add(-1) != 0 {
		return
	}
	if cap(c.buf) > maxPooledCommandBuf || cap(c.args) > maxPooledCommandArgs {
		return
	}
	clear(c.args) // drop references into the old buffer
	c.buf, c.args, c.offs = c.buf[:0], c.args[:0], c.offs[:0]
	commandPool.Put(c)
}

// mayTakeLong reports a command the server may legitimately take long on:
// blocking commands, scripts and functions (which hold the server until
// they return), KEYS, and the few whole-dataset commands. A pipe waiting
// for such a reply is not declared hung by HealthTimeout: its caller's ctx
// bounds the wait.
func mayTakeLong(info *slots.Command, args [][]byte) bool {
	if info == nil {
		return false
	}
	if info.IsBlocking(args) {
		return true
	}
	name, _, _ := strings.Cut(info.Name, "|")
	switch name {
	case "eval", "evalsha", "eval_ro", "evalsha_ro", "fcall", "fcall_ro", "function", "script",
		"keys", "flushall", "flushdb", "save", "debug", "migrate", "sort", "sort_ro",
		"sunionstore", "sinterstore", "sdiffstore", "zunionstore", "zinterstore", "zdiffstore":
		return true
	}
	return false
}
