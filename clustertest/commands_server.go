package clustertest

import (
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/slotrouter/slotrouter/slots"
)

func buildTable() map[string]*command {
	t := map[string]*command{}
	add := func(name string, arity int, flags cmdFlags, first, last, step int, fn func(*ctx)) *command {
		c := &command{name: name, arity: arity, flags: flags, first: first, last: last, step: step, fn: fn}
		t[name] = c
		return c
	}
	w, r := fWrite, fRead
	// strings
	add("get", 2, r, 1, 1, 1, cmdGet)
	add("set", -3, w, 1, 1, 1, cmdSet)
	add("setnx", 3, w, 1, 1, 1, cmdSetNX)
	add("setex", 4, w, 1, 1, 1, cmdSetEX)
	add("psetex", 4, w, 1, 1, 1, cmdSetEX)
	add("getset", 3, w, 1, 1, 1, cmdGetSet)
	add("getdel", 2, w, 1, 1, 1, cmdGetDel)
	for _, n := range []string{"incr", "decr"} {
		add(n, 2, w, 1, 1, 1, cmdIncrBy)
	}
	for _, n := range []string{"incrby", "decrby"} {
		add(n, 3, w, 1, 1, 1, cmdIncrBy)
	}
	add("incrbyfloat", 3, w, 1, 1, 1, cmdIncrByFloat)
	add("append", 3, w, 1, 1, 1, cmdAppend)
	add("strlen", 2, r, 1, 1, 1, cmdStrlen)
	add("mget", -2, r, 1, -1, 1, cmdMGet)
	add("mset", -3, w, 1, -1, 2, cmdMSet)
	add("msetnx", -3, w, 1, -1, 2, cmdMSet)
	// keyspace
	add("del", -2, w, 1, -1, 1, cmdDel)
	add("unlink", -2, w, 1, -1, 1, cmdDel)
	add("exists", -2, r, 1, -1, 1, cmdExists)
	add("type", 2, r, 1, 1, 1, cmdType)
	for _, n := range []string{"expire", "pexpire", "expireat", "pexpireat"} {
		add(n, -3, w, 1, 1, 1, cmdExpire)
	}
	add("ttl", 2, r, 1, 1, 1, cmdTTL)
	add("pttl", 2, r, 1, 1, 1, cmdTTL)
	add("persist", 2, w, 1, 1, 1, cmdPersist)
	add("scan", -2, r, 0, 0, 0, cmdScan)
	add("keys", 2, r, 0, 0, 0, cmdKeys)
	add("dbsize", 1, r, 0, 0, 0, cmdDBSize)
	add("flushall", -1, w, 0, 0, 0, cmdFlush)
	add("flushdb", -1, w, 0, 0, 0, cmdFlush)
	// hashes
	add("hset", -4, w, 1, 1, 1, cmdHSet)
	add("hmset", -4, w, 1, 1, 1, cmdHSet)
	add("hsetnx", 4, w, 1, 1, 1, cmdHSetNX)
	add("hget", 3, r, 1, 1, 1, cmdHGet)
	add("hmget", -3, r, 1, 1, 1, cmdHMGet)
	for _, n := range []string{"hgetall", "hkeys", "hvals"} {
		add(n, 2, r, 1, 1, 1, cmdHGetAll)
	}
	add("hdel", -3, w, 1, 1, 1, cmdHDel)
	add("hexists", 3, r, 1, 1, 1, cmdHExists)
	add("hlen", 2, r, 1, 1, 1, cmdHLen)
	add("hincrby", 4, w, 1, 1, 1, cmdHIncrBy)
	// lists
	add("lpush", -3, w, 1, 1, 1, cmdPush)
	add("rpush", -3, w, 1, 1, 1, cmdPush)
	add("lpop", -2, w, 1, 1, 1, cmdPop)
	add("rpop", -2, w, 1, 1, 1, cmdPop)
	add("llen", 2, r, 1, 1, 1, cmdLLen)
	add("lrange", 4, r, 1, 1, 1, cmdLRange)
	add("lindex", 3, r, 1, 1, 1, cmdLIndex)
	// sets
	add("sadd", -3, w, 1, 1, 1, cmdSAdd)
	add("srem", -3, w, 1, 1, 1, cmdSRem)
	add("smembers", 2, r, 1, 1, 1, cmdSMembers)
	add("sismember", 3, r, 1, 1, 1, cmdSIsMember)
	add("scard", 2, r, 1, 1, 1, cmdSCard)
	// connection and server
	add("ping", -1, 0, 0, 0, 0, cmdPing)
	add("echo", 2, 0, 0, 0, 0, func(x *ctx) { x.o.bulk(x.args[1]) })
	add("select", 2, 0, 0, 0, 0, cmdSelect)
	add("auth", -2, fNoAuth, 0, 0, 0, cmdAuth)
	add("hello", -1, fNoAuth, 0, 0, 0, cmdHello)
	add("quit", -1, fNoAuth, 0, 0, 0, nil)
	add("asking", 1, 0, 0, 0, 0, nil)
	// transactions (multi.go)
	add("multi", 1, 0, 0, 0, 0, cmdMulti)
	add("exec", 1, 0, 0, 0, 0, cmdExec)
	add("discard", 1, 0, 0, 0, 0, cmdDiscard)
	add("watch", -2, 0, 1, -1, 1, cmdWatch)
	add("unwatch", 1, 0, 0, 0, 0, cmdUnwatch)
	add("readonly", 1, 0, 0, 0, 0, func(x *ctx) { x.c.readonly = true; x.o.ok() })
	add("readwrite", 1, 0, 0, 0, 0, func(x *ctx) { x.c.readonly = false; x.o.ok() })
	add("role", 1, 0, 0, 0, 0, cmdRole)
	add("info", -1, 0, 0, 0, 0, cmdInfo)
	add("command", -1, 0, 0, 0, 0, cmdCommand)
	add("time", 1, 0, 0, 0, 0, func(x *ctx) {
		now := time.Now()
		x.o.array(2)
		x.o.bulkString(strconv.FormatInt(now.Unix(), 10))
		x.o.bulkString(strconv.Itoa(now.Nanosecond() / 1000))
	})
	client := add("client", -2, 0, 0, 0, 0, nil)
	client.subs = map[string]*command{
		"id":      {name: "client|id", arity: 2, fn: func(x *ctx) { x.o.int(x.c.id) }},
		"getname": {name: "client|getname", arity: 2, fn: cmdClientGetName},
		"setname": {name: "client|setname", arity: 3, fn: cmdClientSetName},
	}
	cl := add("cluster", -2, 0, 0, 0, 0, nil)
	cl.subs = map[string]*command{
		"nodes":           {name: "cluster|nodes", arity: 2, fn: func(x *ctx) { x.o.bulkString(x.n.c.clusterNodes(x.t, x.n.idx)) }},
		"slots":           {name: "cluster|slots", arity: 2, fn: func(x *ctx) { x.n.c.clusterSlots(x.o, x.t) }},
		"shards":          {name: "cluster|shards", arity: 2, fn: func(x *ctx) { x.n.c.clusterShards(x.o, x.t) }},
		"info":            {name: "cluster|info", arity: 2, fn: func(x *ctx) { x.o.bulkString(x.n.c.clusterInfo(x.t, x.n.idx)) }},
		"myid":            {name: "cluster|myid", arity: 2, fn: func(x *ctx) { x.o.bulkString(x.n.id) }},
		"keyslot":         {name: "cluster|keyslot", arity: 3, fn: func(x *ctx) { x.o.int(int64(slots.Of(x.args[2]))) }},
		"countkeysinslot": {name: "cluster|countkeysinslot", arity: 3, fn: cmdCountKeysInSlot},
		"getkeysinslot":   {name: "cluster|getkeysinslot", arity: 4, fn: cmdGetKeysInSlot},
	}
	return t
}

func cmdPing(x *ctx) {
	switch len(x.args) {
	case 1:
		x.o.simple("PONG")
	case 2:
		x.o.bulk(x.args[1])
	default:
		x.o.err(arityErr("ping"))
	}
}

func cmdSelect(x *ctx) {
	v, ok := parseInt(x.args[1])
	switch {
	case !ok || v < -2147483648 || v > 2147483647:
		x.o.err(errNotInt)
	case v != 0:
		x.o.err("ERR SELECT is not allowed in cluster mode")
	default:
		x.o.ok()
	}
}

// authenticate is ACLAuthenticateUser for the single "default" user.
func (x *ctx) authenticate(user, pass []byte) bool {
	if string(user) != "default" || (x.n.c.opts.Password != "" && string(pass) != x.n.c.opts.Password) {
		x.o.err(errWrongPass)
		return false
	}
	x.c.authed = true
	return true
}

func cmdAuth(x *ctx) {
	switch len(x.args) {
	case 2:
		if x.n.c.opts.Password == "" {
			x.o.err("ERR AUTH <password> called without any password configured for the default user. Are you sure your configuration is correct?")
			return
		}
		if x.authenticate([]byte("default"), x.args[1]) {
			x.o.ok()
		}
	case 3:
		if x.authenticate(x.args[1], x.args[2]) {
			x.o.ok()
		}
	default:
		x.o.err(errSyntax)
	}
}

// cmdHello speaks RESP2 only: HELLO 3 gets the reply Redis gives for a
// version it does not know, which clients (go-redis included) take as
// "fall back to RESP2".
func cmdHello(x *ctx) {
	ver := int64(2)
	if len(x.args) >= 2 {
		v, ok := parseInt(x.args[1])
		if !ok {
			x.o.err("ERR Protocol version is not an integer or out of range")
			return
		}
		if v != 2 {
			x.o.err("NOPROTO unsupported protocol version")
			return
		}
		ver = v
	}
	var user, pass, name []byte
	for j := 2; j < len(x.args); j++ {
		more := len(x.args) - 1 - j
		switch opt := strings.ToLower(string(x.args[j])); {
		case opt == "auth" && more >= 2:
			user, pass = x.args[j+1], x.args[j+2]
			j += 2
		case opt == "setname" && more >= 1:
			name = x.args[j+1]
			j++
		default:
			x.o.err("ERR Syntax error in HELLO option '" + string(x.args[j]) + "'")
			return
		}
	}
	if user != nil && !x.authenticate(user, pass) {
		return
	}
	if !x.c.authed {
		x.o.err("NOAUTH HELLO must be called with the client already authenticated, otherwise the HELLO AUTH <user> <pass> option can be used to authenticate the client and select the RESP protocol version at the same time")
		return
	}
	if name != nil && !x.setName(name) {
		return
	}
	role := "master"
	if x.t.nodes[x.n.idx].role == RoleReplica {
		role = "replica"
	}
	x.o.array(14)
	for _, kv := range [][2]string{{"server", "redis"}, {"version", "7.0.15"}} {
		x.o.bulkString(kv[0])
		x.o.bulkString(kv[1])
	}
	x.o.bulkString("proto")
	x.o.int(ver)
	x.o.bulkString("id")
	x.o.int(x.c.id)
	x.o.bulkString("mode")
	x.o.bulkString("cluster")
	x.o.bulkString("role")
	x.o.bulkString(role)
	x.o.bulkString("modules")
	x.o.array(0)
}

func (x *ctx) setName(name []byte) bool {
	for _, ch := range name {
		if ch < '!' || ch > '~' {
			x.o.err("ERR Client names cannot contain spaces, newlines or special characters.")
			return false
		}
	}
	x.c.name = string(name)
	return true
}

func cmdClientSetName(x *ctx) {
	if x.setName(x.args[2]) {
		x.o.ok()
	}
}

func cmdClientGetName(x *ctx) {
	if x.c.name == "" {
		x.o.null()
		return
	}
	x.o.bulkString(x.c.name)
}

func cmdCountKeysInSlot(x *ctx) {
	v, ok := parseInt(x.args[2])
	switch {
	case !ok:
		x.o.err(errNotInt)
	case v < 0 || v >= slots.Count:
		x.o.err("ERR Invalid slot")
	default:
		x.o.int(int64(len(x.db().bySlot[slots.Slot(v)])))
	}
}

func cmdGetKeysInSlot(x *ctx) {
	s, ok1 := parseInt(x.args[2])
	max, ok2 := parseInt(x.args[3])
	if !ok1 || !ok2 {
		x.o.err(errNotInt)
		return
	}
	if s < 0 || s >= slots.Count || max < 0 {
		x.o.err("ERR Invalid slot or number of keys")
		return
	}
	keys := x.db().slotKeys(slots.Slot(s), int(max))
	x.o.array(len(keys))
	for _, k := range keys {
		x.o.bulkString(k)
	}
}

// cmdCommand answers COMMAND, COMMAND COUNT and COMMAND INFO in the 7.0
// ten-element shape, with the flags and legacy key positions clients route
// by; tips, key-specs and subcommands are left empty.
func cmdCommand(x *ctx) {
	table := x.n.c.cmds
	names := make([]string, 0, len(table))
	if len(x.args) == 1 {
		for n := range table {
			names = append(names, n)
		}
		sort.Strings(names)
	} else {
		switch strings.ToLower(string(x.args[1])) {
		case "count":
			x.o.int(int64(len(table)))
			return
		case "info":
			for _, a := range x.args[2:] {
				names = append(names, strings.ToLower(string(a)))
			}
		default:
			x.o.err(sanitize("ERR unknown subcommand '" + trunc(x.args[1], 128) + "'. Try COMMAND HELP."))
			return
		}
	}
	x.o.array(len(names))
	for _, n := range names {
		c := table[n]
		if c == nil {
			x.o.nullArray()
			continue
		}
		x.o.array(10)
		x.o.bulkString(c.name)
		x.o.int(int64(c.arity))
		var flags []string
		if c.flags&fWrite != 0 {
			flags = append(flags, "write")
		}
		if c.flags&fRead != 0 {
			flags = append(flags, "readonly")
		}
		if c.flags&fNoAuth != 0 {
			flags = append(flags, "no_auth")
		}
		x.o.array(len(flags))
		for _, f := range flags {
			x.o.simple(f)
		}
		x.o.int(int64(c.first))
		x.o.int(int64(c.last))
		x.o.int(int64(c.step))
		x.o.array(0)
		x.o.array(0)
		x.o.array(0)
		x.o.array(len(c.subs))
		subNames := make([]string, 0, len(c.subs))
		for s := range c.subs {
			subNames = append(subNames, s)
		}
		sort.Strings(subNames)
		for _, s := range subNames {
			sc := c.subs[s]
			x.o.array(10)
			x.o.bulkString(sc.name)
			x.o.int(int64(sc.arity))
			x.o.array(0)
			for range 3 {
				x.o.int(0)
			}
			for range 4 {
				x.o.array(0)
			}
		}
	}
}
