package clustertest

import (
	"math"
	"strconv"
	"strings"
)

func cmdDel(x *ctx) {
	var n int64
	for _, k := range x.args[1:] {
		if x.db().get(string(k), x.now) != nil && x.db().del(string(k)) {
			n++
		}
	}
	x.o.int(n)
}

func cmdExists(x *ctx) {
	var n int64
	for _, k := range x.args[1:] {
		if x.db().get(string(k), x.now) != nil {
			n++
		}
	}
	x.o.int(n)
}

func cmdType(x *ctx) {
	if e := x.db().get(string(x.args[1]), x.now); e != nil {
		x.o.simple(e.kind)
		return
	}
	x.o.simple("none")
}

const (
	expNX = 1 << iota
	expXX
	expGT
	expLT
)

// cmdExpire is expireGenericCommand (7.0): options, then the number, then
// overflow checks, then the key.
func cmdExpire(x *ctx) {
	name := strings.ToLower(string(x.args[0]))
	seconds := name == "expire" || name == "expireat"
	var base int64
	if name == "expire" || name == "pexpire" {
		base = x.now
	}
	var flags int
	for _, a := range x.args[3:] {
		switch strings.ToLower(string(a)) {
		case "nx":
			flags |= expNX
		case "xx":
			flags |= expXX
		case "gt":
			flags |= expGT
		case "lt":
			flags |= expLT
		default:
			x.o.err("ERR Unsupported option " + string(a))
			return
		}
	}
	if flags&expNX != 0 && flags&(expXX|expGT|expLT) != 0 {
		x.o.err("ERR NX and XX, GT or LT options at the same time are not compatible")
		return
	}
	if flags&expGT != 0 && flags&expLT != 0 {
		x.o.err("ERR GT and LT options at the same time are not compatible")
		return
	}
	when, ok := parseInt(x.args[2])
	if !ok {
		x.o.err(errNotInt)
		return
	}
	bad := "ERR invalid expire time in '" + name + "' command"
	if seconds {
		if when > math.MaxInt64/1000 || when < math.MinInt64/1000 {
			x.o.err(bad)
			return
		}
		when *= 1000
	}
	if when > math.MaxInt64-base {
		x.o.err(bad)
		return
	}
	when += base
	e := x.db().get(string(x.args[1]), x.now)
	if e == nil {
		x.o.int(0)
		return
	}
	cur := e.expireAt
	switch {
	case flags&expNX != 0 && cur != 0,
		flags&expXX != 0 && cur == 0,
		flags&expGT != 0 && (cur == 0 || when <= cur),
		flags&expLT != 0 && cur != 0 && when >= cur:
		x.o.int(0)
		return
	}
	if when <= x.now {
		x.db().del(string(x.args[1]))
	} else {
		e.expireAt = when
		x.db().touch(string(x.args[1]))
	}
	x.o.int(1)
}

func cmdTTL(x *ctx) {
	e := x.db().get(string(x.args[1]), x.now)
	switch {
	case e == nil:
		x.o.int(-2)
	case e.expireAt == 0:
		x.o.int(-1)
	default:
		ttl := e.expireAt - x.now
		if ttl < 0 {
			ttl = 0
		}
		if strings.EqualFold(string(x.args[0]), "ttl") {
			ttl = (ttl + 500) / 1000
		}
		x.o.int(ttl)
	}
}

func cmdPersist(x *ctx) {
	e := x.db().get(string(x.args[1]), x.now)
	if e == nil || e.expireAt == 0 {
		x.o.int(0)
		return
	}
	e.expireAt = 0
	x.db().touch(string(x.args[1]))
	x.o.int(1)
}

// liveKeys lists unexpired keys in a stable order. Expired keys met on a
// master are collected, as Redis's KEYS and SCAN do.
func (x *ctx) liveKeys() []string {
	all := x.db().sortedKeys()
	out := all[:0]
	for _, k := range all {
		if x.db().get(k, x.now) != nil {
			out = append(out, k)
		}
	}
	return out
}

func cmdKeys(x *ctx) {
	pat := x.args[1]
	var match []string
	for _, k := range x.liveKeys() {
		if globMatch(pat, []byte(k)) {
			match = append(match, k)
		}
	}
	x.o.array(len(match))
	for _, k := range match {
		x.o.bulkString(k)
	}
}

// cmdScan pages through the keys in sorted order; the cursor is the index
// of the next key. Keys added or removed meanwhile may shift it, which the
// SCAN guarantees allow for keys that were not there the whole time.
func cmdScan(x *ctx) {
	cur, ok := parseCursor(x.args[1])
	if !ok {
		x.o.err("ERR invalid cursor")
		return
	}
	count := int64(10)
	var pat []byte
	typ := ""
	for i := 2; i < len(x.args); i += 2 {
		opt := strings.ToLower(string(x.args[i]))
		if i+1 >= len(x.args) {
			x.o.err(errSyntax)
			return
		}
		switch opt {
		case "count":
			v, ok := parseInt(x.args[i+1])
			if !ok {
				x.o.err(errNotInt)
				return
			}
			if v < 1 {
				x.o.err(errSyntax)
				return
			}
			count = v
		case "match":
			pat = x.args[i+1]
		case "type":
			typ = strings.ToLower(string(x.args[i+1]))
		default:
			x.o.err(errSyntax)
			return
		}
	}
	keys := x.liveKeys()
	var page []string
	i := cur
	for ; i < uint64(len(keys)) && int64(len(page)) < count; i++ {
		k := keys[i]
		if pat != nil && !globMatch(pat, []byte(k)) {
			continue
		}
		if typ != "" && x.db().keys[k].kind != typ {
			continue
		}
		page = append(page, k)
	}
	if i >= uint64(len(keys)) {
		i = 0
	}
	x.o.array(2)
	x.o.bulkString(strconv.FormatUint(i, 10))
	x.o.array(len(page))
	for _, k := range page {
		x.o.bulkString(k)
	}
}

// parseCursor accepts what strtoul does (Redis parses cursors with it): an
// optional sign, then digits; a negative value wraps around.
func parseCursor(b []byte) (uint64, bool) {
	s := string(b)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(strings.TrimPrefix(s, "-"), "+")
	v, err := strconv.ParseUint(s, 10, 64)
	if err != nil || len(s) != len(strings.TrimLeft(s, " \t")) {
		return 0, false
	}
	if neg {
		v = -v
	}
	return v, true
}

func cmdFlush(x *ctx) {
	if len(x.args) > 2 || (len(x.args) == 2 && !strings.EqualFold(string(x.args[1]), "sync") && !strings.EqualFold(string(x.args[1]), "async")) {
		x.o.err(errSyntax)
		return
	}
	x.db().flush()
	x.o.ok()
}

func cmdDBSize(x *ctx) { x.o.int(int64(len(x.db().keys))) }

// globMatch is stringmatchlen: *, ?, [...] with ^ and ranges, and \ escapes.
func globMatch(p, s []byte) bool {
	for len(p) > 0 {
		switch p[0] {
		case '*':
			for len(p) > 1 && p[1] == '*' {
				p = p[1:]
			}
			if len(p) == 1 {
				return true
			}
			for i := 0; i <= len(s); i++ {
				if globMatch(p[1:], s[i:]) {
					return true
				}
			}
			return false
		case '?':
			if len(s) == 0 {
				return false
			}
			s = s[1:]
		case '[':
			if len(s) == 0 {
				return false
			}
			p = p[1:]
			not := len(p) > 0 && p[0] == '^'
			if not {
				p = p[1:]
			}
			match := false
			for len(p) > 0 && p[0] != ']' {
				switch {
				case p[0] == '\\' && len(p) >= 2:
					p = p[1:]
					if p[0] == s[0] {
						match = true
					}
				case len(p) >= 3 && p[1] == '-':
					lo, hi := p[0], p[2]
					if lo > hi {
						lo, hi = hi, lo
					}
					if s[0] >= lo && s[0] <= hi {
						match = true
					}
					p = p[2:]
				default:
					if p[0] == s[0] {
						match = true
					}
				}
				p = p[1:]
			}
			if match == not {
				return false
			}
			s = s[1:]
			if len(p) == 0 {
				return len(s) == 0
			}
		case '\\':
			if len(p) >= 2 {
				p = p[1:]
			}
			fallthrough
		default:
			if len(s) == 0 || p[0] != s[0] {
				return false
			}
			s = s[1:]
		}
		p = p[1:]
	}
	return len(s) == 0
}
