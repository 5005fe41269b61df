package clustertest

import (
	"strconv"

	"github.com/slotrouter/slotrouter/slots"
)

// diffSteps is the command script of TestDiffAgainstRedis. "on" picks the
// node: "" = owner of the first key, "other:" = a master that does not own
// it, "replica:K" = the replica of K's owner, "src"/"dst" = the nodes of
// the running migration, "m0".."m2" = masters by slot range.
func diffSteps() []diffStep {
	var s []diffStep
	gs := strconv.Itoa(int(slots.Of("{g}")))
	ss := strconv.Itoa(int(slots.Of("{s}")))
	add := func(st ...diffStep) { s = append(s, st...) }
	addAll := func(st []diffStep) { s = append(s, st...) }
	// Strings.
	addAll(steps("",
		"SET {s}a hello", "GET {s}a", "GET {s}missing", "SET {s}a world GET", "SET {s}a x NX", "SET {s}a y XX",
		"SET {s}new y XX", "GET {s}new", "SET {s}b v EX 100", "TTL {s}b", "PTTL {s}b", "SET {s}b v2 KEEPTTL", "TTL {s}b",
		"SET {s}b v3", "TTL {s}b", "SET {s}c v PX 100000", "SET {s}c v EXAT 99999999999", "SET {s}c v PXAT 99999999999999",
		"SET {s}c v EX 0", "SET {s}c v EX -1", "SET {s}c v EX abc", "SET {s}c v NX XX", "SET {s}c v EX 10 PX 100",
		"SET {s}c v KEEPTTL EX 5", "SET {s}c v FOO", "SET {s}c v EX", "SET {s}c v EX 9223372036854775807",
		"SET {s}c v PXAT 1", "EXISTS {s}c", "SET {s}c v get nx", "SET {s}c v2 GET NX", "SET {s}c", "SET",
		"SETNX {s}d 1", "SETNX {s}d 2", "GET {s}d", "SETNX {s}d",
		"SETEX {s}e 100 v", "TTL {s}e", "SETEX {s}e 0 v", "SETEX {s}e abc v", "SETEX {s}e -1 v", "PSETEX {s}e 100000 v",
		"PSETEX {s}e -1 v", "PSETEX {s}e 0 v", "SETEX {s}e 10",
		"GETSET {s}d 3", "GETSET {s}nokey 1", "GETDEL {s}d", "GETDEL {s}d", "GETDEL {s}d x",
		"INCR {n}i", "INCRBY {n}i 10", "DECR {n}i", "DECRBY {n}i 5", "INCRBY {n}i abc", "INCRBY {n}i 1.5",
		"DECRBY {n}i -9223372036854775808", "SET {n}big 9223372036854775807", "INCR {n}big", "DECRBY {n}i 01",
		"SET {n}neg -9223372036854775808", "DECR {n}neg", "SET {n}s abc", "INCR {n}s", "DECR {n}s", "INCR {n}i x",
		"INCRBYFLOAT {n}f 0.1", "INCRBYFLOAT {n}f 0.2", "INCRBYFLOAT {n}f 1e3", "INCRBYFLOAT {n}f -1000.3",
		"INCRBYFLOAT {n}f abc", "INCRBYFLOAT {n}s 1", "INCRBYFLOAT {n}f 5.0e3", "SET {n}f 10.50", "INCRBYFLOAT {n}f 0",
		"INCRBYFLOAT {n}f -10.5", "INCRBYFLOAT {n}i 1.25", "INCRBYFLOAT {n}g 3", "GET {n}g",
		"APPEND {s}ap abc", "APPEND {s}ap def", "GET {s}ap", "STRLEN {s}ap", "STRLEN {s}none", "APPEND {s}ap",
		"MSET {m}a 1 {m}b 2", "MGET {m}a {m}b {m}c", "MSET {m}a 1 {m}b", "MSETNX {m}a 1 {m}z 2", "MSETNX {m}y 1 {m}z 2",
		"MGET {m}y {m}z", "MSETNX {m}q", "DEL {m}a {m}b {m}nope", "EXISTS {m}y {m}y {m}z {m}none", "UNLINK {m}y {m}x",
		"TYPE {m}z", "TYPE {s}none", "MGET", "DEL", "EXISTS",
	))
	// WRONGTYPE everywhere.
	addAll(steps("",
		"RPUSH {w}list a", "GET {w}list", "APPEND {w}list x", "INCR {w}list", "INCRBYFLOAT {w}list 1", "STRLEN {w}list",
		"GETDEL {w}list", "SET {w}list x GET", "GETSET {w}list x", "MGET {w}list {w}nx", "TYPE {w}list",
		"HSET {w}list f v", "HGET {w}list f", "SADD {w}list x", "SCARD {w}list", "SETNX {w}list v",
		"HSET {w}hash f v", "LPUSH {w}hash x", "LLEN {w}hash", "LRANGE {w}hash 0 -1", "LINDEX {w}hash 0", "LPOP {w}hash",
		"RPOP {w}hash 2", "SISMEMBER {w}hash x", "SMEMBERS {w}hash", "SREM {w}hash x", "HGETALL {w}list", "HKEYS {w}list",
		"HVALS {w}list", "HMGET {w}list a", "HDEL {w}list a", "HEXISTS {w}list a", "HLEN {w}list", "HINCRBY {w}list a 1",
		"HSETNX {w}list a 1", "HMSET {w}list a 1", "SET {w}list plain", "TYPE {w}list",
	))
	// Expiry.
	addAll(steps("",
		"SET {e}k v", "EXPIRE {e}k 100", "TTL {e}k", "EXPIRE {e}k 200 NX", "EXPIRE {e}k 200 XX", "EXPIRE {e}k 50 GT",
		"EXPIRE {e}k 300 gt", "EXPIRE {e}k 400 LT", "EXPIRE {e}k 100 LT", "TTL {e}k", "EXPIRE {e}k 10 NX XX",
		"EXPIRE {e}k 10 GT LT", "EXPIRE {e}k 10 FOO", "EXPIRE {e}k abc", "EXPIRE {e}k 9223372036854775807",
		"PEXPIRE {e}k 100000", "TTL {e}k", "PERSIST {e}k", "PERSIST {e}k", "TTL {e}k", "TTL {e}none", "PTTL {e}none",
		"PTTL {e}k", "EXPIREAT {e}k 99999999999", "PEXPIREAT {e}k 99999999999000", "EXPIRE {e}none 10",
		"EXPIRE {e}k 100 XX", "EXPIRE {e}p 10 XX", "SET {e}p v", "EXPIRE {e}p 10 XX", "EXPIRE {e}p 10 GT", "EXPIRE {e}p 10 LT",
		"TTL {e}p", "EXPIRE {e}k -1", "EXISTS {e}k", "SET {e}k2 v", "PEXPIRE {e}k2 -5", "GET {e}k2", "EXPIRE {e}k2",
		"EXPIREAT {e}k2 1", "PEXPIREAT {e}k2 x", "PERSIST {e}none", "TTL", "PERSIST",
	))
	// Hashes.
	addAll(steps("",
		"HSET {h}h z 1 a 2 m 3", "HSET {h}h a 4", "HDEL {h}h z nope", "HSET {h}h z 9", "HGETALL {h}h", "HKEYS {h}h",
		"HVALS {h}h", "HGET {h}h a", "HGET {h}h nope", "HGET {h}none a", "HMGET {h}h a nope m", "HMGET {h}none a b",
		"HLEN {h}h", "HLEN {h}none", "HEXISTS {h}h a", "HEXISTS {h}h x", "HEXISTS {h}none x", "HINCRBY {h}h cnt 5",
		"HINCRBY {h}h cnt -2", "HINCRBY {h}h a x", "HSET {h}h s abc", "HINCRBY {h}h s 1", "HSET {h}h f", "HSET {h}h f v g",
		"HMSET {h}h q 1", "HMSET {h}h q", "HSETNX {h}h q 2", "HSETNX {h}h q2 2", "HSETNX {h}new f v", "HGETALL {h}new",
		"HSET {h}h2 big 9223372036854775807", "HINCRBY {h}h2 big 1", "HINCRBY {h}h3 f 7", "HGETALL {h}h3",
		"HDEL {h}h z a m cnt s q q2", "HGETALL {h}h", "HDEL {h}h2 big", "EXISTS {h}h2", "HGETALL {h}none",
		"HKEYS {h}none", "HVALS {h}none", "HDEL {h}none a", "HDEL {h}h", "HGET {h}h", "HINCRBY {h}h a",
	))
	// Lists.
	addAll(steps("",
		"RPUSH {l}l a b c", "LPUSH {l}l x y", "LRANGE {l}l 0 -1", "LRANGE {l}l 1 2", "LRANGE {l}l -100 100",
		"LRANGE {l}l 5 1", "LRANGE {l}l -2 -1", "LRANGE {l}l 0 x", "LRANGE {l}none 0 -1", "LRANGE {l}none x 1",
		"LINDEX {l}l 0", "LINDEX {l}l -1", "LINDEX {l}l 99", "LINDEX {l}l -99", "LINDEX {l}l x", "LINDEX {l}none x",
		"LLEN {l}l", "LPOP {l}l", "RPOP {l}l", "LPOP {l}l 2", "RPOP {l}l 0", "LPOP {l}l -1", "LPOP {l}l x", "LPOP {l}l 1 2",
		"LRANGE {l}l 0 -1", "RPOP {l}l 10", "EXISTS {l}l", "LPOP {l}l 2", "LPOP {l}l", "RPOP {l}l", "LLEN {l}none",
		"LPUSH {l}l", "RPUSH {l}l", "LPOP", "LLEN", "LPOP {l}none 0",
	))
	// Sets.
	addAll(steps("",
		"SADD {t}s 3 1 2 10", "SADD {t}s 1", "SMEMBERS {t}s", "SCARD {t}s", "SISMEMBER {t}s 1", "SISMEMBER {t}s 9",
		"SREM {t}s 1 9", "SMEMBERS {t}s", "SADD {t}w b a c", "SMEMBERS {t}w", "SREM {t}w a b c", "EXISTS {t}w",
		"SCARD {t}none", "SMEMBERS {t}none", "SISMEMBER {t}none a", "SREM {t}none a", "SADD {t}s", "SREM {t}s",
		"SISMEMBER {t}s", "SADD {t}neg -5 -10 7", "SMEMBERS {t}neg",
	))
	// Redirects: a key owned elsewhere, CROSSSLOT before ownership, and
	// "Hash slot" checks on multi-key commands.
	addAll(steps("other:{s}a", "GET {s}a", "SET {s}a 1", "MGET {s}a {s}b", "DEL {s}a", "HGET {s}a f", "EXPIRE {s}a 10"))
	addAll(steps("m0", "MGET foo bar", "MSET foo 1 bar 2", "DEL foo bar", "EXISTS a b", "MGET {a}x {a}y"))
	addAll(steps("", "MGET {s}a {h}h", "DEL {s}a {l}l"))
	// Replicas: MOVED without READONLY, reads with it, writes still MOVED.
	add(ctl("sync", ""))
	addAll(steps("replica:{s}a", "GET {s}a", "READONLY", "GET {s}a", "MGET {s}a {s}missing", "TTL {s}b", "HGETALL {h}x",
		"SET {s}a 1", "DEL {s}a", "FLUSHALL", "FLUSHDB", "GET {l}x", "ROLE", "INFO replication", "READWRITE", "GET {s}a",
		"DBSIZE", "PING", "HELLO 2", "CLUSTER MYID"))
	addAll(steps("replica:{h}h", "READONLY", "HGETALL {h}h3", "SMEMBERS {t}s", "LRANGE {l}l 0 -1", "TYPE {h}h3", "EXISTS {h}h3"))
	// Keyspace and server commands, per master.
	for _, m := range []string{"m0", "m1", "m2"} {
		addAll(steps(m, "DBSIZE", "KEYS *", "KEYS {s}*", "KEYS *a?", "KEYS [a-z]*", "KEYS \\{*", "SCAN 0 COUNT 1000",
			"SCAN 0 MATCH {s}* COUNT 1000", "SCAN 0 TYPE string COUNT 1000", "SCAN 0 TYPE hash MATCH *h* COUNT 1000",
			"INFO keyspace", "INFO replication", "INFO cluster", "ROLE", "CLUSTER INFO", "CLUSTER MYID", "CLUSTER NODES",
			"CLUSTER SLOTS", "CLUSTER SHARDS"))
	}
	addAll(steps("m0",
		"SCAN x", "SCAN 0 COUNT 0", "SCAN 0 COUNT", "SCAN 0 FOO bar", "SCAN 0 COUNT x", "SCAN", "KEYS",
		"INFO bogus", "INFO cluster keyspace", "DBSIZE x", "FLUSHDB FOO", "FLUSHALL a b",
		"PING", "PING hi", "PING a b", "ECHO hi", "ECHO", "SELECT 0", "SELECT 1", "SELECT x", "SELECT",
		"CLIENT SETNAME app", "CLIENT GETNAME", "CLIENT ID", "CLIENT bogus", "CLIENT", "CLIENT SETNAME", "CLIENT GETNAME x",
		"HELLO 2", "HELLO 4", "HELLO x", "HELLO 2 FOO", "HELLO 2 SETNAME n", "CLIENT GETNAME", "HELLO 2 AUTH default",
		"HELLO", "AUTH x", "AUTH default x", "AUTH a b c", "AUTH", "READONLY", "READWRITE", "READONLY x", "ASKING",
		"ASKING x", "foo a b", "foo", "ROLE x", "TIME", "TIME x",
		"CLUSTER", "CLUSTER bogus x", "CLUSTER KEYSLOT", "CLUSTER KEYSLOT {user1000}.following", "CLUSTER KEYSLOT 123456789",
		"CLUSTER KEYSLOT a b", "CLUSTER COUNTKEYSINSLOT 0", "CLUSTER COUNTKEYSINSLOT 99999", "CLUSTER COUNTKEYSINSLOT x",
		"CLUSTER COUNTKEYSINSLOT -1", "CLUSTER GETKEYSINSLOT 0 10", "CLUSTER GETKEYSINSLOT 0 -1",
		"CLUSTER GETKEYSINSLOT 16384 1", "CLUSTER GETKEYSINSLOT x 1", "CLUSTER GETKEYSINSLOT 0", "CLUSTER NODES x",
		"CLUSTER MYID x", "CLUSTER INFO x", "CLUSTER SLOTS x", "CLUSTER SHARDS x",
	))
	addAll(steps("", "CLUSTER COUNTKEYSINSLOT "+ss, "CLUSTER GETKEYSINSLOT "+ss+" 2"))
	// Migration: ASK, TRYAGAIN, ASKING, MOVED back to the source.
	addAll(steps("", "SET {g}a 1", "SET {g}b 2"))
	add(ctl("begin", "{g}a"))
	addAll(steps("src", "GET {g}a", "CLUSTER NODES"))
	addAll(steps("dst", "CLUSTER NODES", "GET {g}a"))
	add(ctl("move-one", "{g}a"))
	addAll(steps("src", "GET {g}b", "GET {g}a", "MGET {g}a {g}b", "MGET {g}a {g}zz", "SET {g}c 1", "DEL {g}a {g}b",
		"EXISTS {g}a", "CLUSTER COUNTKEYSINSLOT "+gs, "CLUSTER GETKEYSINSLOT "+gs+" 10"))
	addAll(steps("dst", "GET {g}a", "ASKING", "GET {g}a", "GET {g}a", "ASKING", "MGET {g}a {g}b", "ASKING",
		"GET {g}missing", "ASKING", "SET {g}c 3", "ASKING", "GET {g}c", "ASKING", "PING", "GET {g}c",
		"CLUSTER COUNTKEYSINSLOT "+gs))
	addAll(steps("replica:{g}a", "READONLY", "GET {g}b", "ASKING", "GET {g}a"))
	add(ctl("finish", "{g}a"))
	addAll(steps("src", "GET {g}b", "MGET {g}a {g}b"))
	addAll(steps("dst", "MGET {g}a {g}b {g}c", "CLUSTER COUNTKEYSINSLOT "+gs))
	// Transactions: queueing, EXECABORT, nesting, WATCH on this connection's
	// own writes, MOVED inside MULTI.
	addAll(steps("",
		"MULTI", "SET {x}a 1", "INCR {x}a", "GET {x}a", "GET {x}none", "EXEC", "EXEC", "DISCARD",
		"MULTI", "MULTI", "GET {x}a", "DISCARD", "MULTI", "FOO", "GET {x}a", "EXEC",
		"MULTI", "SET {x}a", "EXEC", "MULTI", "EXEC", "MULTI", "PING", "UNWATCH", "EXEC",
		"MULTI", "SET {x}s str", "LPUSH {x}s a", "GET {x}s", "EXEC",
		"WATCH {x}a", "SET {x}a 5", "MULTI", "GET {x}a", "EXEC", "GET {x}a",
		"WATCH {x}a {x}b", "MULTI", "WATCH {x}a", "INCR {x}a", "EXEC",
		"WATCH {x}a", "UNWATCH", "SET {x}a 6", "MULTI", "GET {x}a", "EXEC",
		"WATCH {x}a", "MULTI", "INCR {x}b", "EXEC", "WATCH", "EXEC x", "MULTI x", "DISCARD x",
		"WATCH {x}a", "DEL {x}a", "MULTI", "GET {x}a", "EXEC",
	))
	addAll(steps("other:{x}a", "MULTI", "GET {x}a", "PING", "EXEC", "WATCH {x}a", "MULTI", "DISCARD"))
	// Flushes, then QUIT.
	for _, m := range []string{"m0", "m1", "m2"} {
		addAll(steps(m, "FLUSHALL", "DBSIZE", "FLUSHDB ASYNC", "FLUSHALL SYNC", "KEYS *"))
	}
	addAll(steps("m1", "QUIT"))
	return s
}
