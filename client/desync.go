package client

import (
	"fmt"
)

// Desync detection. RESP has no request IDs: a connection matches replies
// to requests by order alone, so one reply too many or too few shifts every
// later reply onto the wrong caller. Where a mismatch is certain, the pipe
// refuses to deliver it, closes and fails the calls in flight as possibly
// run (ErrDesync inside a *ConnError with Sent true):
//
//   - a reply arrives, or is already buffered, when no request awaits one;
//   - a reply's type cannot answer the command at the head of the queue
//     (+OK for GET, an integer for MGET): each call carries an expected
//     reply class from the table below, and only commands whose reply type
//     is fixed by Redis are listed; anything else accepts any reply;
//   - the ack of ASKING is not a simple string or an error.
//
// An error reply fits every command, and so does +QUEUED (inside MULTI every
// command answers it). A shifted reply of the same type as the right one
// cannot be told apart; CLIENT REPLY OFF|SKIP, the way a correct server
// produces a missing reply, is refused before it is sent (ErrReplyMode).

// replyClass is a bit set of the reply Kinds a command may get; 0 = any.
type replyClass uint16

func kinds(ks ...Kind) replyClass {
	var c replyClass
	for _, k := range ks {
		c |= 1 << k
	}
	return c
}

var (
	classBulk   = kinds(KindBulk, KindNil)
	classInt    = kinds(KindInt, KindBool)
	classArray  = kinds(KindArray, KindSet, KindMap)
	classStatus = kinds(KindString)
	classSet    = kinds(KindString, KindNil, KindBulk) // SET ... NX/XX/GET
)

// replyClasses lists commands whose reply type never depends on their
// arguments (beyond an error). Upper-case names.
var replyClasses = map[string]replyClass{}

func init() {
	add := func(c replyClass, names ...string) {
		for _, n := range names {
			replyClasses[n] = c
		}
	}
	add(classBulk, "GET", "GETDEL", "GETEX", "GETSET", "HGET", "LINDEX", "ECHO", "DUMP",
		"INCRBYFLOAT", "HINCRBYFLOAT", "RPOPLPUSH", "LMOVE", "GETRANGE", "SUBSTR")
	add(classInt, "INCR", "DECR", "INCRBY", "DECRBY", "DEL", "UNLINK", "EXISTS", "TOUCH",
		"EXPIRE", "PEXPIRE", "EXPIREAT", "PEXPIREAT", "PERSIST", "TTL", "PTTL", "EXPIRETIME",
		"PEXPIRETIME", "LLEN", "SCARD", "HLEN", "ZCARD", "STRLEN", "APPEND", "SETRANGE",
		"HSET", "HSETNX", "HDEL", "HEXISTS", "HINCRBY", "HSTRLEN", "SADD", "SREM", "SISMEMBER",
		"LPUSH", "RPUSH", "LPUSHX", "RPUSHX", "LREM", "ZREM", "ZCOUNT", "ZLEXCOUNT", "SETNX",
		"MSETNX", "DBSIZE", "PUBLISH", "SPUBLISH", "BITCOUNT", "SETBIT", "GETBIT", "PFADD",
		"PFCOUNT", "SMOVE", "SINTERCARD", "RENAMENX")
	add(classArray, "MGET", "LRANGE", "KEYS", "HKEYS", "HVALS", "HMGET", "HGETALL",
		"SMEMBERS", "SINTER", "SUNION", "SDIFF", "SMISMEMBER", "SCAN", "SSCAN", "HSCAN", "ZSCAN")
	add(classStatus, "MSET", "SETEX", "PSETEX", "LSET", "LTRIM", "HMSET", "RENAME",
		"FLUSHALL", "FLUSHDB", "SELECT", "ASKING", "READONLY", "READWRITE")
	add(classSet, "SET")
}

// expectedReply is the reply class of cmd (0 when not certain).
func expectedReply(cmd *command) replyClass {
	name := cmd.name()
	if len(name) == 0 || len(name) > 16 {
		return 0
	}
	if c, ok := replyClasses[string(name)]; ok { // no allocation: map index by string(bytes)
		return c
	}
	var up [16]byte
	for i, b := range name {
		if 'a' <= b && b <= 'z' {
			b -= 'a' - 'A'
		}
		up[i] = b
	}
	return replyClasses[string(up[:len(name)])]
}

// fits reports whether r can be the reply to a command of class c.
func (c replyClass) fits(r Result) bool {
	if c == 0 || r.kind == KindError || c&(1<<r.kind) != 0 {
		return true
	}
	return r.kind == KindString && r.str == "QUEUED"
}

func desyncErr(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrDesync}, args...)...)
}

// strayLocked reports bytes already read from the server while no call
// awaits a reply: a reply nobody asked for (RESP3 pushes excepted). The
// reader role and p.mu must be held, with the FIFO empty.
func (p *pipe) strayLocked() bool {
	return p.rd.buffered() > 0 && p.rd.buf[p.rd.r] != '>'
}

// replyModeOff reports CLIENT REPLY OFF or SKIP: after them the server
// stops answering, and a shared connection would hand later replies to the
// wrong callers.
func replyModeOff(args [][]byte) bool {
	return len(args) == 3 && equalFold(args[0], "CLIENT") && equalFold(args[1], "REPLY") &&
		(equalFold(args[2], "OFF") || equalFold(args[2], "SKIP"))
}

func equalFold(b []byte, upper string) bool {
	if len(b) != len(upper) {
		return false
	}
	for i := range b {
		c := b[i]
		if 'a' <= c && c <= 'z' {
			c -= 'a' - 'A'
		}
		if c != upper[i] {
			return false
		}
	}
	return true
}

// failDesync closes the pipe over stray bytes found when it went idle. The
// caller holds the reader role, which (as after any failure) is kept.
func (p *pipe) failDesync() {
	p.fail("read", desyncErr("%d bytes arrived while no request awaited a reply", p.rd.buffered()))
	p.drain()
}
