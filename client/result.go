package client

import (
	"errors"
	"math"
	"strconv"
	"strings"
)

// ErrNil is what Result.Err returns for a nil reply ($-1, *-1, RESP3 _), such
// as GET on a missing key. Compare with errors.Is.
var ErrNil = errors.New("slotrouter: nil reply")

// errEmptyResult is Err of a zero Result: no reply was ever stored in it.
var errEmptyResult = errors.New("slotrouter: empty result")

// Kind is the RESP type of a reply.
type Kind uint8

const (
	KindInvalid Kind = iota // zero Result, or one that carries a transport error
	KindString              // simple string (+OK)
	KindError               // error reply (-ERR ...)
	KindInt                 // integer (:1)
	KindBulk                // bulk string ($3\r\nfoo); RESP3 verbatim and big numbers too
	KindArray               // array (*2 ...)
	KindNil                 // nil bulk, nil array, RESP3 null
	KindDouble              // RESP3 double (,1.5)
	KindBool                // RESP3 boolean (#t)
	KindMap                 // RESP3 map, stored as alternating keys and values
	KindSet                 // RESP3 set
	KindPush                // RESP3 out-of-band push
	KindNodes               // one reply per node of a fan-out without a merge rule (Result.Nodes)
)

var kindNames = [...]string{"invalid", "string", "error", "integer", "bulk", "array", "nil", "double", "boolean", "map", "set", "push", "nodes"}

func (k Kind) String() string {
	if int(k) < len(kindNames) {
		return kindNames[k]
	}
	return "kind(" + strconv.Itoa(int(k)) + ")"
}

// Result is one reply. It is a value: it owns its strings (they never alias
// the connection's read buffer) and is safe to keep and share read-only.
type Result struct {
	str  string   // String, Bulk
	arr  []Result // Array, Map, Set, Push
	err  error    // *Error for KindError, or a transport error
	num  int64    // Int, Bool (0/1), Double (math.Float64bits)
	kind Kind
}

// Error is a Redis error reply. Error() is the server's text exactly, e.g.
// "MOVED 3999 127.0.0.1:6381".
type Error struct {
	msg string
}

func (e *Error) Error() string { return e.msg }

// Prefix is the first word of the reply, its error code ("MOVED", "ERR").
func (e *Error) Prefix() string {
	if i := strings.IndexByte(e.msg, ' '); i >= 0 {
		return e.msg[:i]
	}
	return e.msg
}

// Is lets errors.Is(err, ErrClusterDown) and friends match by error code.
func (e *Error) Is(target error) bool {
	k, ok := errorKinds[e.Prefix()]
	return ok && k == target
}

// errResult wraps a transport error so Result.Err reports it.
func errResult(err error) Result { return Result{err: err} }

// Kind returns the reply's RESP type.
func (r Result) Kind() Kind { return r.kind }

// Err returns the *Error of an error reply, ErrNil for a nil reply, the
// transport error when no reply arrived, and nil otherwise.
func (r Result) Err() error {
	if r.err != nil {
		return r.err
	}
	switch r.kind {
	case KindNil:
		return ErrNil
	case KindInvalid:
		return errEmptyResult
	}
	return nil
}

// IsNil reports a nil reply.
func (r Result) IsNil() bool { return r.kind == KindNil }

func (r Result) typeErr(want string) error {
	if err := r.Err(); err != nil {
		return err
	}
	return &ReplyTypeError{Want: want, Got: r.kind}
}

// Text returns a string, bulk, integer or double reply as text.
func (r Result) Text() (string, error) {
	switch r.kind {
	case KindString, KindBulk:
		return r.str, nil
	case KindInt:
		return strconv.FormatInt(r.num, 10), nil
	case KindDouble:
		return strconv.FormatFloat(r.float(), 'f', -1, 64), nil
	}
	return "", r.typeErr("text")
}

// Bytes returns a copy of a string or bulk reply's bytes.
func (r Result) Bytes() ([]byte, error) {
	switch r.kind {
	case KindString, KindBulk:
		return []byte(r.str), nil
	}
	s, err := r.Text()
	if err != nil {
		return nil, err
	}
	return []byte(s), nil
}

// Int64 returns an integer reply, or parses a numeric string or bulk reply.
func (r Result) Int64() (int64, error) {
	switch r.kind {
	case KindInt, KindBool:
		return r.num, nil
	case KindString, KindBulk:
		n, err := strconv.ParseInt(r.str, 10, 64)
		if err != nil {
			return 0, &ReplyTypeError{Want: "integer", Got: r.kind, Text: r.str}
		}
		return n, nil
	}
	return 0, r.typeErr("integer")
}

func (r Result) float() float64 { return math.Float64frombits(uint64(r.num)) }

// Float64 returns a double or integer reply, or parses a numeric string.
func (r Result) Float64() (float64, error) {
	switch r.kind {
	case KindDouble:
		return r.float(), nil
	case KindInt:
		return float64(r.num), nil
	case KindString, KindBulk:
		f, err := strconv.ParseFloat(r.str, 64)
		if err != nil {
			return 0, &ReplyTypeError{Want: "float", Got: r.kind, Text: r.str}
		}
		return f, nil
	}
	return 0, r.typeErr("float")
}

// Bool returns true for integer 1 (SETNX, EXPIRE...), "OK" (SET NX) and RESP3
// true; false for 0 and RESP3 false. A nil reply (SET NX that did not set)
// returns false with ErrNil.
func (r Result) Bool() (bool, error) {
	switch r.kind {
	case KindInt, KindBool:
		return r.num != 0, nil
	case KindString, KindBulk:
		switch r.str {
		case "OK", "1", "true":
			return true, nil
		case "0", "false":
			return false, nil
		}
		return false, &ReplyTypeError{Want: "bool", Got: r.kind, Text: r.str}
	}
	return false, r.typeErr("bool")
}

func (r Result) isAggregate() bool {
	return r.kind == KindArray || r.kind == KindMap || r.kind == KindSet || r.kind == KindPush || r.kind == KindNodes
}

// Results returns the elements of an array (or RESP3 map, set, push) reply.
// Do not modify the slice: it may be the Result's own. An array of short
// strings is kept packed (see Len and All, which do not allocate), and
// Results builds its slice anew on each call.
func (r Result) Results() ([]Result, error) {
	if r.isAggregate() {
		return r.elems(), nil
	}
	return nil, r.typeErr("array")
}

// Slice decodes an array reply into []any: string for string and bulk,
// int64, float64, bool, nil, []any for nested arrays (map[string]any for
// nested RESP3 maps) and *Error for nested error replies.
func (r Result) Slice() ([]any, error) {
	if !r.isAggregate() {
		return nil, r.typeErr("array")
	}
	out := make([]any, r.Len())
	for i, e := range r.All() {
		out[i] = e.value()
	}
	return out, nil
}

// Value decodes any reply as Slice does for its elements. Error replies and
// nil come back as (nil, Err()).
func (r Result) Value() (any, error) {
	if err := r.Err(); err != nil {
		return nil, err
	}
	return r.value(), nil
}

func (r Result) value() any {
	switch r.kind {
	case KindString, KindBulk:
		return r.str
	case KindInt:
		return r.num
	case KindDouble:
		return r.float()
	case KindBool:
		return r.num != 0
	case KindError:
		return r.err
	case KindArray, KindSet, KindPush:
		s, _ := r.Slice()
		return s
	case KindMap, KindNodes:
		m := make(map[string]any, r.Len()/2)
		var k string
		for i, e := range r.All() {
			if i%2 == 0 {
				var err error
				if k, err = e.Text(); err != nil {
					k = e.String()
				}
				continue
			}
			m[k] = e.value()
		}
		return m
	}
	return nil
}

// Strings returns an array of strings, bulks or integers as []string; nil
// elements become "".
func (r Result) Strings() ([]string, error) {
	if !r.isAggregate() {
		return nil, r.typeErr("array")
	}
	out := make([]string, r.Len())
	if r.packed() {
		s := r.str
		for i := range out {
			out[i], s = nextPacked(s)
		}
		return out, nil
	}
	for i, e := range r.arr {
		if e.kind == KindNil {
			continue
		}
		s, err := e.Text()
		if err != nil {
			return nil, err
		}
		out[i] = s
	}
	return out, nil
}

// String renders the reply for debugging, redis-cli style.
func (r Result) String() string {
	var b strings.Builder
	r.format(&b)
	return b.String()
}

func (r Result) format(b *strings.Builder) {
	switch r.kind {
	case KindString, KindBulk:
		b.WriteString(strconv.Quote(r.str))
	case KindInt:
		b.WriteString("(integer) ")
		b.WriteString(strconv.FormatInt(r.num, 10))
	case KindDouble:
		b.WriteString("(double) ")
		b.WriteString(strconv.FormatFloat(r.float(), 'g', -1, 64))
	case KindBool:
		b.WriteString(strconv.FormatBool(r.num != 0))
	case KindNil:
		b.WriteString("(nil)")
	case KindError:
		b.WriteString("(error) ")
		b.WriteString(r.err.Error())
	case KindInvalid:
		if r.err != nil {
			b.WriteString("(transport error) ")
			b.WriteString(r.err.Error())
		} else {
			b.WriteString("(empty)")
		}
	default:
		b.WriteByte('[')
		for i, e := range r.All() {
			if i > 0 {
				b.WriteString(", ")
			}
			e.format(b)
		}
		b.WriteByte(']')
	}
}
