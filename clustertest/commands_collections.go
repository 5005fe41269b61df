package clustertest

import (
	"math"
	"sort"
	"strconv"
)

// typed returns the entry at key if it has kind k; wrong reports another
// type (and writes WRONGTYPE).
func (x *ctx) typed(key []byte, k string) (e *entry, wrong bool) {
	e = x.db().get(string(key), x.now)
	if e != nil && e.kind != k {
		x.o.err(errWrongType)
		return nil, true
	}
	return e, false
}

// settle follows a removal from the collection at args[1]: an emptied
// collection is deleted, as Redis never keeps an empty one; a changed one is
// marked touched so that its new state reaches the replicas.
func (x *ctx) settle(empty, changed bool) {
	if empty {
		x.db().del(string(x.args[1]))
	} else if changed {
		x.db().touch(string(x.args[1]))
	}
}

func (x *ctx) hashFor(key []byte) (*entry, bool) {
	e, wrong := x.typed(key, kindHash)
	if wrong {
		return nil, false
	}
	if e == nil {
		e = &entry{kind: kindHash, hash: newHash()}
		x.db().put(string(key), e)
	}
	return e, true
}

func cmdHSet(x *ctx) {
	if len(x.args)%2 == 1 {
		x.o.err(arityErr(string(lower(x.args[0]))))
		return
	}
	e, ok := x.hashFor(x.args[1])
	if !ok {
		return
	}
	var added int64
	for i := 2; i < len(x.args); i += 2 {
		if e.hash.set(string(x.args[i]), x.args[i+1]) {
			added++
		}
	}
	x.db().touch(string(x.args[1]))
	if string(lower(x.args[0])) == "hmset" {
		x.o.ok()
		return
	}
	x.o.int(added)
}

func cmdHSetNX(x *ctx) {
	e, wrong := x.typed(x.args[1], kindHash)
	if wrong {
		return
	}
	if e != nil {
		if _, ok := e.hash.values[string(x.args[2])]; ok {
			x.o.int(0)
			return
		}
	}
	e, _ = x.hashFor(x.args[1])
	e.hash.set(string(x.args[2]), x.args[3])
	x.db().touch(string(x.args[1]))
	x.o.int(1)
}

func cmdHGet(x *ctx) {
	e, wrong := x.typed(x.args[1], kindHash)
	if wrong {
		return
	}
	if e == nil {
		x.o.null()
		return
	}
	x.o.bulkOrNull(e.hash.values[string(x.args[2])])
}

func cmdHMGet(x *ctx) {
	e, wrong := x.typed(x.args[1], kindHash)
	if wrong {
		return
	}
	x.o.array(len(x.args) - 2)
	for _, f := range x.args[2:] {
		if e == nil {
			x.o.null()
			continue
		}
		x.o.bulkOrNull(e.hash.values[string(f)])
	}
}

func cmdHGetAll(x *ctx) {
	e, wrong := x.typed(x.args[1], kindHash)
	if wrong {
		return
	}
	if e == nil {
		x.o.array(0)
		return
	}
	what := string(lower(x.args[0]))
	n := len(e.hash.fields)
	if what == "hgetall" {
		n *= 2
	}
	x.o.array(n)
	for _, f := range e.hash.fields {
		if what != "hvals" {
			x.o.bulkString(f)
		}
		if what != "hkeys" {
			x.o.bulk(e.hash.values[f])
		}
	}
}

func cmdHDel(x *ctx) {
	e, wrong := x.typed(x.args[1], kindHash)
	if wrong {
		return
	}
	var n int64
	if e != nil {
		for _, f := range x.args[2:] {
			if e.hash.del(string(f)) {
				n++
			}
		}
		x.settle(len(e.hash.fields) == 0, n > 0)
	}
	x.o.int(n)
}

func cmdHExists(x *ctx) {
	e, wrong := x.typed(x.args[1], kindHash)
	if wrong {
		return
	}
	if e == nil {
		x.o.int(0)
		return
	}
	if _, ok := e.hash.values[string(x.args[2])]; ok {
		x.o.int(1)
		return
	}
	x.o.int(0)
}

func cmdHLen(x *ctx) {
	e, wrong := x.typed(x.args[1], kindHash)
	if wrong {
		return
	}
	if e == nil {
		x.o.int(0)
		return
	}
	x.o.int(int64(len(e.hash.fields)))
}

func cmdHIncrBy(x *ctx) {
	by, ok := parseInt(x.args[3])
	if !ok {
		x.o.err(errNotInt)
		return
	}
	e, wrong := x.typed(x.args[1], kindHash)
	if wrong {
		return
	}
	var cur int64
	if e != nil {
		if v, found := e.hash.values[string(x.args[2])]; found {
			if cur, ok = parseInt(v); !ok {
				x.o.err("ERR hash value is not an integer")
				return
			}
		}
	}
	if (by < 0 && cur < 0 && by < math.MinInt64-cur) || (by > 0 && cur > 0 && by > math.MaxInt64-cur) {
		x.o.err("ERR increment or decrement would overflow")
		return
	}
	cur += by
	e, _ = x.hashFor(x.args[1])
	e.hash.set(string(x.args[2]), strconv.AppendInt(nil, cur, 10))
	x.db().touch(string(x.args[1]))
	x.o.int(cur)
}

func cmdPush(x *ctx) {
	e, wrong := x.typed(x.args[1], kindList)
	if wrong {
		return
	}
	if e == nil {
		e = &entry{kind: kindList, list: &listValue{}}
		x.db().put(string(x.args[1]), e)
	}
	left := string(lower(x.args[0])) == "lpush"
	for _, v := range x.args[2:] {
		if left {
			e.list.pushFront(v)
		} else {
			e.list.pushBack(v)
		}
	}
	x.db().touch(string(x.args[1]))
	x.o.int(int64(e.list.len()))
}

func cmdPop(x *ctx) {
	count, withCount := int64(1), len(x.args) == 3
	if len(x.args) > 3 {
		x.o.err(arityErr(string(lower(x.args[0]))))
		return
	}
	if withCount {
		v, ok := parseInt(x.args[2])
		if !ok || v < 0 {
			x.o.err("ERR value is out of range, must be positive")
			return
		}
		count = v
	}
	e, wrong := x.typed(x.args[1], kindList)
	if wrong {
		return
	}
	if e == nil {
		if withCount {
			x.o.nullArray()
		} else {
			x.o.null()
		}
		return
	}
	left := string(lower(x.args[0])) == "lpop"
	pop := func() []byte {
		if left {
			return e.list.popFront()
		}
		return e.list.popBack()
	}
	if !withCount {
		x.o.bulk(pop())
	} else {
		n := min(count, int64(e.list.len()))
		x.o.array(int(n))
		for i := int64(0); i < n; i++ {
			x.o.bulk(pop())
		}
	}
	x.settle(e.list.len() == 0, true)
}

func cmdLLen(x *ctx) {
	e, wrong := x.typed(x.args[1], kindList)
	if wrong {
		return
	}
	if e == nil {
		x.o.int(0)
		return
	}
	x.o.int(int64(e.list.len()))
}

func cmdLRange(x *ctx) {
	start, ok1 := parseInt(x.args[2])
	stop, ok2 := parseInt(x.args[3])
	if !ok1 || !ok2 {
		x.o.err(errNotInt)
		return
	}
	e, wrong := x.typed(x.args[1], kindList)
	if wrong {
		return
	}
	if e == nil {
		x.o.array(0)
		return
	}
	n := int64(e.list.len())
	if start < 0 {
		start += n
	}
	if stop < 0 {
		stop += n
	}
	if start < 0 {
		start = 0
	}
	if start > stop || start >= n {
		x.o.array(0)
		return
	}
	if stop >= n {
		stop = n - 1
	}
	x.o.array(int(stop - start + 1))
	for i := start; i <= stop; i++ {
		x.o.bulk(e.list.at(int(i)))
	}
}

func cmdLIndex(x *ctx) {
	e, wrong := x.typed(x.args[1], kindList)
	if wrong {
		return
	}
	if e == nil {
		x.o.null()
		return
	}
	i, ok := parseInt(x.args[2])
	if !ok {
		x.o.err(errNotInt)
		return
	}
	n := int64(e.list.len())
	if i < 0 {
		i += n
	}
	if i < 0 || i >= n {
		x.o.null()
		return
	}
	x.o.bulk(e.list.at(int(i)))
}

func cmdSAdd(x *ctx) {
	e, wrong := x.typed(x.args[1], kindSet)
	if wrong {
		return
	}
	if e == nil {
		e = &entry{kind: kindSet, set: map[string]struct{}{}}
		x.db().put(string(x.args[1]), e)
	}
	var n int64
	for _, m := range x.args[2:] {
		if _, ok := e.set[string(m)]; !ok {
			e.set[string(m)] = struct{}{}
			n++
		}
	}
	x.db().touch(string(x.args[1]))
	x.o.int(n)
}

func cmdSRem(x *ctx) {
	e, wrong := x.typed(x.args[1], kindSet)
	if wrong {
		return
	}
	var n int64
	if e != nil {
		for _, m := range x.args[2:] {
			if _, ok := e.set[string(m)]; ok {
				delete(e.set, string(m))
				n++
			}
		}
		x.settle(len(e.set) == 0, n > 0)
	}
	x.o.int(n)
}

// cmdSMembers answers small all-integer sets in ascending order, as an
// intset does on Redis; other sets have no defined order.
func cmdSMembers(x *ctx) {
	e, wrong := x.typed(x.args[1], kindSet)
	if wrong {
		return
	}
	if e == nil {
		x.o.array(0)
		return
	}
	members := make([]string, 0, len(e.set))
	ints := make(map[string]int64, len(e.set))
	for m := range e.set {
		members = append(members, m)
		if v, ok := parseInt([]byte(m)); ok {
			ints[m] = v
		}
	}
	if len(ints) == len(members) && len(members) <= 512 {
		sort.Slice(members, func(i, j int) bool { return ints[members[i]] < ints[members[j]] })
	} else {
		sort.Strings(members)
	}
	x.o.array(len(members))
	for _, m := range members {
		x.o.bulkString(m)
	}
}

func cmdSIsMember(x *ctx) {
	e, wrong := x.typed(x.args[1], kindSet)
	if wrong {
		return
	}
	if e != nil {
		if _, ok := e.set[string(x.args[2])]; ok {
			x.o.int(1)
			return
		}
	}
	x.o.int(0)
}

func cmdSCard(x *ctx) {
	e, wrong := x.typed(x.args[1], kindSet)
	if wrong {
		return
	}
	if e == nil {
		x.o.int(0)
		return
	}
	x.o.int(int64(len(e.set)))
}

func lower(b []byte) []byte {
	out := make([]byte, len(b))
	for i, c := range b {
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		out[i] = c
	}
	return out
}
