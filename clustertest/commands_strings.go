package clustertest

import (
	"math"
	"math/big"
	"strconv"
	"strings"
)

// parseInt is string2ll: no sign but '-', no leading zeros, no spaces.
func parseInt(b []byte) (int64, bool) {
	if len(b) == 0 || len(b) > 20 || b[0] == '+' || (len(b) > 1 && b[0] == '0') || (len(b) > 1 && b[0] == '-' && b[1] == '0') {
		return 0, false
	}
	v, err := strconv.ParseInt(string(b), 10, 64)
	return v, err == nil
}

// str returns the string entry at key; wrong is set for another type.
func (x *ctx) str(key []byte) (e *entry, wrong bool) {
	e = x.db().get(string(key), x.now)
	if e != nil && e.kind != kindString {
		return nil, true
	}
	return e, false
}

func newString(v []byte) *entry { return &entry{kind: kindString, str: v} }

// setValue stores v at key, keeping the TTL only when asked (SET KEEPTTL,
// or the in-place updates INCR and APPEND do).
func (x *ctx) setValue(key []byte, v []byte, keepTTL bool) {
	d := x.db()
	if old := d.get(string(key), x.now); keepTTL && old != nil && old.kind == kindString {
		old.str = v
		d.touch(string(key))
		return
	}
	d.put(string(key), newString(v))
}

func cmdGet(x *ctx) {
	e, wrong := x.str(x.args[1])
	switch {
	case wrong:
		x.o.err(errWrongType)
	case e == nil:
		x.o.null()
	default:
		x.o.bulk(e.str)
	}
}

const (
	setNX = 1 << iota
	setXX
	setGet
	setKeepTTL
	setEX
	setPX
	setEXAT
	setPXAT
)

// cmdSet follows setCommand: options, then the expire, then GET, then
// NX/XX, then the write.
func cmdSet(x *ctx) {
	var flags int
	var expire []byte
	for j := 3; j < len(x.args); j++ {
		opt := strings.ToLower(string(x.args[j]))
		hasNext := j+1 < len(x.args)
		timeFlags := setEX | setPX | setEXAT | setPXAT
		switch {
		case opt == "nx" && flags&setXX == 0:
			flags |= setNX
		case opt == "xx" && flags&setNX == 0:
			flags |= setXX
		case opt == "get":
			flags |= setGet
		case opt == "keepttl" && flags&timeFlags == 0:
			flags |= setKeepTTL
		case opt == "ex" && flags&(setKeepTTL|setEXAT|setPX|setPXAT) == 0 && hasNext:
			flags |= setEX
			j++
			expire = x.args[j]
		case opt == "px" && flags&(setKeepTTL|setEX|setEXAT|setPXAT) == 0 && hasNext:
			flags |= setPX
			j++
			expire = x.args[j]
		case opt == "exat" && flags&(setKeepTTL|setEX|setPX|setPXAT) == 0 && hasNext:
			flags |= setEXAT
			j++
			expire = x.args[j]
		case opt == "pxat" && flags&(setKeepTTL|setEX|setEXAT|setPX) == 0 && hasNext:
			flags |= setPXAT
			j++
			expire = x.args[j]
		default:
			x.o.err(errSyntax)
			return
		}
	}
	var at int64
	if expire != nil {
		var ok bool
		if at, ok = x.expireAt(expire, flags&(setEX|setEXAT) != 0, flags&(setEX|setPX) != 0, "set"); !ok {
			return
		}
	}
	x.setGeneric(x.args[1], x.args[2], flags, at)
}

// expireAt turns a SET/SETEX style expire argument into Unix ms, replying
// with Redis's error when it is invalid.
func (x *ctx) expireAt(arg []byte, seconds, relative bool, name string) (int64, bool) {
	v, ok := parseInt(arg)
	if !ok {
		x.o.err(errNotInt)
		return 0, false
	}
	if v <= 0 || (seconds && v > math.MaxInt64/1000) {
		x.o.err("ERR invalid expire time in '" + name + "' command")
		return 0, false
	}
	if seconds {
		v *= 1000
	}
	if relative {
		if v > math.MaxInt64-x.now {
			x.o.err("ERR invalid expire time in '" + name + "' command")
			return 0, false
		}
		v += x.now
	}
	return v, true
}

func (x *ctx) setGeneric(key, val []byte, flags int, at int64) {
	if flags&setGet != 0 {
		e, wrong := x.str(key)
		if wrong {
			x.o.err(errWrongType)
			return
		}
		if e == nil {
			x.o.null()
		} else {
			x.o.bulk(e.str)
		}
	}
	found := x.db().get(string(key), x.now) != nil
	if (flags&setNX != 0 && found) || (flags&setXX != 0 && !found) {
		if flags&setGet == 0 {
			x.o.null()
		}
		return
	}
	x.setValue(key, val, flags&setKeepTTL != 0)
	if at != 0 {
		if at <= x.now {
			x.db().del(string(key))
		} else {
			x.db().keys[string(key)].expireAt = at
		}
	}
	if flags&setGet == 0 {
		x.o.ok()
	}
}

func cmdSetNX(x *ctx) {
	if x.db().get(string(x.args[1]), x.now) != nil {
		x.o.int(0)
		return
	}
	x.setValue(x.args[1], x.args[2], false)
	x.o.int(1)
}

func cmdSetEX(x *ctx) {
	seconds := strings.EqualFold(string(x.args[0]), "setex")
	name := "psetex"
	if seconds {
		name = "setex"
	}
	at, ok := x.expireAt(x.args[2], seconds, true, name)
	if !ok {
		return
	}
	x.setValue(x.args[1], x.args[3], false)
	x.db().keys[string(x.args[1])].expireAt = at
	x.o.ok()
}

func cmdGetSet(x *ctx) { x.setGeneric(x.args[1], x.args[2], setGet, 0) }

func cmdGetDel(x *ctx) {
	e, wrong := x.str(x.args[1])
	switch {
	case wrong:
		x.o.err(errWrongType)
	case e == nil:
		x.o.null()
	default:
		x.o.bulk(e.str)
		x.db().del(string(x.args[1]))
	}
}

func cmdIncrBy(x *ctx) {
	by := int64(1)
	switch strings.ToLower(string(x.args[0])) {
	case "decr":
		by = -1
	case "incrby", "decrby":
		v, ok := parseInt(x.args[2])
		if !ok {
			x.o.err(errNotInt)
			return
		}
		if strings.EqualFold(string(x.args[0]), "decrby") {
			if v == math.MinInt64 {
				x.o.err("ERR decrement would overflow")
				return
			}
			v = -v
		}
		by = v
	}
	e, wrong := x.str(x.args[1])
	if wrong {
		x.o.err(errWrongType)
		return
	}
	var cur int64
	if e != nil {
		var ok bool
		if cur, ok = parseInt(e.str); !ok {
			x.o.err(errNotInt)
			return
		}
	}
	if (by < 0 && cur < 0 && by < math.MinInt64-cur) || (by > 0 && cur > 0 && by > math.MaxInt64-cur) {
		x.o.err("ERR increment or decrement would overflow")
		return
	}
	cur += by
	x.setValue(x.args[1], strconv.AppendInt(nil, cur, 10), true)
	x.o.int(cur)
}

// parseLongDouble mimics strtold on x86-64: a 64-bit mantissa, which is why
// INCRBYFLOAT 0.1 then 0.2 gives "0.3" on Redis and here, not 0.30000000000000004.
func parseLongDouble(b []byte) (*big.Float, bool) {
	if len(b) == 0 || b[0] == ' ' || b[0] == '\t' || b[len(b)-1] == ' ' {
		return nil, false
	}
	f, _, err := big.ParseFloat(string(b), 10, 64, big.ToNearestEven)
	if err != nil {
		return nil, false
	}
	return f, true
}

func cmdIncrByFloat(x *ctx) {
	e, wrong := x.str(x.args[1])
	if wrong {
		x.o.err(errWrongType)
		return
	}
	cur := new(big.Float).SetPrec(64)
	if e != nil {
		v, ok := parseLongDouble(e.str)
		if !ok {
			x.o.err("ERR value is not a valid float")
			return
		}
		cur = v
	}
	by, ok := parseLongDouble(x.args[2])
	if !ok {
		x.o.err("ERR value is not a valid float")
		return
	}
	sum := new(big.Float).SetPrec(64).Add(cur, by)
	if sum.IsInf() || sum.MantExp(nil) > 16384 {
		x.o.err("ERR increment would produce NaN or Infinity")
		return
	}
	s := sum.Text('f', 17)
	if strings.Contains(s, ".") {
		s = strings.TrimRight(strings.TrimRight(s, "0"), ".")
	}
	if s == "-0" {
		s = "0"
	}
	x.setValue(x.args[1], []byte(s), true)
	x.o.bulkString(s)
}

func cmdAppend(x *ctx) {
	e, wrong := x.str(x.args[1])
	if wrong {
		x.o.err(errWrongType)
		return
	}
	if e == nil {
		x.setValue(x.args[1], append([]byte(nil), x.args[2]...), false)
		x.o.int(int64(len(x.args[2])))
		return
	}
	e.str = append(e.str[:len(e.str):len(e.str)], x.args[2]...)
	x.db().touch(string(x.args[1]))
	x.o.int(int64(len(e.str)))
}

func cmdStrlen(x *ctx) {
	e, wrong := x.str(x.args[1])
	switch {
	case wrong:
		x.o.err(errWrongType)
	case e == nil:
		x.o.int(0)
	default:
		x.o.int(int64(len(e.str)))
	}
}

func cmdMGet(x *ctx) {
	x.o.array(len(x.args) - 1)
	for _, k := range x.args[1:] {
		if e := x.db().get(string(k), x.now); e != nil && e.kind == kindString {
			x.o.bulk(e.str)
		} else {
			x.o.null()
		}
	}
}

func cmdMSet(x *ctx) {
	nx := strings.EqualFold(string(x.args[0]), "msetnx")
	if len(x.args)%2 == 0 {
		x.o.err(arityErr(strings.ToLower(string(x.args[0]))))
		return
	}
	if nx {
		for i := 1; i < len(x.args); i += 2 {
			if x.db().get(string(x.args[i]), x.now) != nil {
				x.o.int(0)
				return
			}
		}
	}
	for i := 1; i < len(x.args); i += 2 {
		x.setValue(x.args[i], x.args[i+1], false)
	}
	if nx {
		x.o.int(1)
	} else {
		x.o.ok()
	}
}
