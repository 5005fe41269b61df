package proxy

import "github.com/slotrouter/slotrouter/client"

// shape says how a command's RESP2 reply (what the backend connections
// speak) differs from what redis-server itself would send the session:
// RESP3 maps, sets, doubles and [member, score] pairs, and RESP2's *-1
// where the client package only reports "nil". The table was read off a
// real redis-server 7.0.15 with HELLO 2 and HELLO 3; shape_test.go compares
// the two byte for byte.
type shape uint8

const (
	asIs             shape = iota
	asNilArray             // RESP2 *-1 for nil (BLPOP timed out, LPOP key count)
	asMap                  // flat field/value array -> map (HGETALL, CONFIG GET)
	asSet                  // array -> set (SMEMBERS)
	asDouble               // bulk -> double (ZSCORE); nil stays nil
	asDoubles              // array of bulks -> doubles (ZMSCORE)
	asPairs                // flat [m, s, ...] -> [[m, double], ...] (WITHSCORES)
	asPairsText            // flat [f, v, ...] -> [[f, v], ...] (HRANDFIELD WITHVALUES)
	asFlatScores           // flat [m, s] with every second a double (ZPOPMIN key)
	asKeyMemberScore       // [key, member, double] (BZPOPMIN), *-1 for nil
	asMpop                 // [key, [[m, double], ...]] (ZMPOP), *-1 for nil
	asStreams              // [[stream, entries], ...] -> map (XREAD), *-1 for nil
)

// shapeOf finds the shape of a request's reply.
func shapeOf(args [][]byte) shape {
	var buf [16]byte
	name := lowerName(buf[:0], args[0])
	switch string(name) {
	case "hgetall":
		return asMap
	case "config":
		if len(args) > 1 && equalFold(args[1], "get") {
			return asMap
		}
	case "smembers", "sinter", "sunion", "sdiff":
		return asSet
	case "spop":
		if len(args) == 3 {
			return asSet
		}
	case "zscore", "zincrby":
		return asDouble
	case "zadd":
		if hasArg(args, "incr") {
			return asDouble
		}
	case "zmscore":
		return asDoubles
	case "zrange", "zrangebyscore", "zrevrange", "zrevrangebyscore", "zunion", "zinter", "zdiff", "zrandmember":
		if hasArg(args, "withscores") {
			return asPairs
		}
	case "hrandfield":
		if hasArg(args, "withvalues") {
			return asPairsText
		}
	case "zpopmin", "zpopmax":
		if len(args) == 3 {
			return asPairs
		}
		return asFlatScores
	case "bzpopmin", "bzpopmax":
		return asKeyMemberScore
	case "zmpop", "bzmpop":
		return asMpop
	case "xread", "xreadgroup":
		return asStreams
	case "blpop", "brpop", "blmpop", "lmpop", "brpoplpush", "blmove":
		return asNilArray
	case "lpop", "rpop":
		if len(args) == 3 {
			return asNilArray
		}
	}
	return asIs
}

// shaped writes r as redis-server would have answered the session.
func (w *replyWriter) shaped(r client.Result, sh shape) {
	if sh == asIs {
		w.result(r)
		return
	}
	if r.Kind() == client.KindNil {
		switch sh {
		case asNilArray, asKeyMemberScore, asMpop, asStreams:
			w.nullArray()
		default:
			w.null()
		}
		return
	}
	if !w.resp3 {
		w.result(r)
		return
	}
	if sh == asDouble {
		if s, err := r.Text(); err == nil && r.Kind() == client.KindBulk {
			w.doubleText(s)
			return
		}
		w.result(r)
		return
	}
	elems, err := r.Results()
	if err != nil {
		w.result(r) // an error reply, or not the shape expected: as it came
		return
	}
	switch sh {
	case asMap:
		if len(elems)%2 != 0 {
			break
		}
		w.mapOf(len(elems) / 2)
		for _, e := range elems {
			w.result(e)
		}
		return
	case asSet:
		w.setOf(len(elems))
		for _, e := range elems {
			w.result(e)
		}
		return
	case asDoubles, asFlatScores:
		w.array(len(elems))
		for i, e := range elems {
			if sh == asDoubles || i%2 == 1 {
				w.shaped(e, asDouble)
			} else {
				w.result(e)
			}
		}
		return
	case asPairs, asPairsText:
		if len(elems)%2 != 0 {
			break
		}
		w.pairs(elems, sh == asPairs)
		return
	case asKeyMemberScore:
		if len(elems) != 3 {
			break
		}
		w.array(3)
		w.result(elems[0])
		w.result(elems[1])
		w.shaped(elems[2], asDouble)
		return
	case asMpop:
		if len(elems) != 2 {
			break
		}
		inner, err := elems[1].Results()
		if err != nil {
			break
		}
		w.array(2)
		w.result(elems[0])
		w.array(len(inner))
		for _, p := range inner {
			w.shaped(p, asFlatScores)
		}
		return
	case asStreams:
		w.streams(elems, r)
		return
	}
	w.result(r)
}

// pairs writes a flat [a, b, a, b...] array as [[a, b], ...].
func (w *replyWriter) pairs(elems []client.Result, score bool) {
	w.array(len(elems) / 2)
	for i := 0; i < len(elems); i += 2 {
		w.array(2)
		w.result(elems[i])
		if score {
			w.shaped(elems[i+1], asDouble)
		} else {
			w.result(elems[i+1])
		}
	}
}

// streams writes XREAD's [[name, entries], ...] as RESP3's map.
func (w *replyWriter) streams(elems []client.Result, r client.Result) {
	for _, e := range elems {
		if kv, err := e.Results(); err != nil || len(kv) != 2 {
			w.result(r)
			return
		}
	}
	w.mapOf(len(elems))
	for _, e := range elems {
		kv, _ := e.Results()
		w.result(kv[0])
		w.result(kv[1])
	}
}

// lowerName lower-cases a command name into dst; names longer than dst's
// capacity are not commands the proxy looks at, and come back empty.
func lowerName(dst, name []byte) []byte {
	if len(name) > cap(dst) {
		return dst[:0]
	}
	for _, c := range name {
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		dst = append(dst, c)
	}
	return dst
}

func equalFold(b []byte, lower string) bool {
	if len(b) != len(lower) {
		return false
	}
	for i := range b {
		c := b[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != lower[i] {
			return false
		}
	}
	return true
}

// hasArg reports an option among the arguments after the key.
func hasArg(args [][]byte, lower string) bool {
	if len(args) < 3 {
		return false
	}
	for _, a := range args[2:] {
		if equalFold(a, lower) {
			return true
		}
	}
	return false
}
