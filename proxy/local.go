package proxy

import (
	"strconv"
	"strings"
)

// kind is how the session treats a command.
type kind uint8

const (
	kForward kind = iota // to the client: routed, split, fanned out there
	kPing
	kEcho
	kAuth
	kHello
	kSelect
	kClient
	kQuit
	kReset
	kRefused     // cluster plumbing: the proxy's clients must not need it
	kUnsupported // needs a server connection of its own (MONITOR, SYNC ...)
	kMulti
	kExec
	kDiscard
	kWatch
	kUnwatch
	kSubscribe
	kUnsubscribe
)

// classify looks at the command name only: the answer decides whether a
// request can join a pipelined run, so it must be cheap.
func classify(name []byte) kind {
	if len(name) < 4 || len(name) > 12 {
		return kForward
	}
	var buf [12]byte
	switch string(lowerName(buf[:0], name)) {
	case "ping":
		return kPing
	case "echo":
		return kEcho
	case "auth":
		return kAuth
	case "hello":
		return kHello
	case "select":
		return kSelect
	case "client":
		return kClient
	case "quit":
		return kQuit
	case "reset":
		return kReset
	case "cluster", "readonly", "readwrite", "asking":
		return kRefused
	case "monitor", "sync", "psync", "replconf", "shutdown", "failover", "replicaof", "slaveof", "swapdb":
		return kUnsupported
	case "multi":
		return kMulti
	case "exec":
		return kExec
	case "discard":
		return kDiscard
	case "watch":
		return kWatch
	case "unwatch":
		return kUnwatch
	case "subscribe", "psubscribe", "ssubscribe":
		return kSubscribe
	case "unsubscribe", "punsubscribe", "sunsubscribe":
		return kUnsubscribe
	}
	return kForward
}

// handle answers one request that is not part of a forwarded run.
func (s *session) handle(args [][]byte, k kind) {
	if !s.authed && k != kAuth && k != kHello && k != kQuit && k != kReset {
		s.w.error("NOAUTH Authentication required.")
		return
	}
	if s.tx.multi && !txControl(k) {
		s.queue(args, k)
		return
	}
	if s.subscribedRESP2() && k != kSubscribe && k != kUnsubscribe && k != kPing && k != kQuit && k != kReset {
		s.w.error("ERR Can't execute '" + strings.ToLower(string(args[0])) +
			"': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / QUIT / RESET are allowed in this context")
		return
	}
	switch k {
	case kForward:
		if s.tx.watch != nil {
			s.w.shaped(s.tx.watch.Do(s.ctx, s.anyArgs(args)...), shapeOf(args))
			return
		}
		s.forward([]request{{args: args}})
	case kPing:
		s.ping(args)
	case kEcho:
		if len(args) != 2 {
			s.arityError(args)
			return
		}
		s.w.bulk(string(args[1]))
	case kAuth:
		s.auth(args)
	case kHello:
		s.hello(args)
	case kSelect:
		s.selectDB(args)
	case kClient:
		s.clientCmd(args)
	case kQuit:
		s.w.simple("OK")
		s.closing = true
	case kReset:
		s.reset()
	case kRefused:
		s.w.error("ERR " + strings.ToUpper(string(args[0])) + " is not supported by the slotrouter proxy: " +
			"it is one ordinary Redis server to its clients and routes every key itself")
	case kUnsupported:
		s.w.error("ERR " + strings.ToUpper(string(args[0])) + " is not supported by the slotrouter proxy")
	default:
		s.txOrSub(args, k)
	}
}

func (s *session) arityError(args [][]byte) {
	s.w.error("ERR wrong number of arguments for '" + strings.ToLower(string(args[0])) + "' command")
}

func (s *session) ping(args [][]byte) {
	if len(args) > 2 {
		s.arityError(args)
		return
	}
	if s.subscribedRESP2() {
		// In RESP2 subscribe mode a reply must look like a message.
		s.w.array(2)
		s.w.bulk("pong")
		if len(args) == 2 {
			s.w.bulk(string(args[1]))
		} else {
			s.w.bulk("")
		}
		return
	}
	if len(args) == 2 {
		s.w.bulk(string(args[1]))
		return
	}
	s.w.simple("PONG")
}

// checkAuth reports whether user/password are the proxy's credentials.
func (s *session) checkAuth(user, pass string) bool {
	o := &s.srv.opts
	if user == "" || user == "default" {
		return o.Password != "" && pass == o.Password || !o.authRequired()
	}
	want, ok := o.Users[user]
	return ok && pass == want
}

func (s *session) auth(args [][]byte) {
	var user, pass string
	switch len(args) {
	case 2:
		pass = string(args[1])
	case 3:
		user, pass = string(args[1]), string(args[2])
	default:
		s.arityError(args)
		return
	}
	if len(args) == 2 && s.srv.opts.Password == "" {
		s.w.error("ERR AUTH <password> called without any password configured for the default user. Are you sure your configuration is correct?")
		return
	}
	if !s.checkAuth(user, pass) {
		s.w.error("WRONGPASS invalid username-password pair or user is disabled.")
		return
	}
	s.setAuthed(true)
	s.w.simple("OK")
}

func (s *session) setAuthed(v bool) {
	s.authed = v
	s.rd.authed = v
}

// hello: HELLO [protover [AUTH user pass] [SETNAME name]].
func (s *session) hello(args [][]byte) {
	proto := 0
	if len(args) > 1 {
		n, err := strconv.Atoi(string(args[1]))
		if err != nil {
			s.w.error("ERR Protocol version is not an integer or out of range")
			return
		}
		if n != 2 && n != 3 {
			s.w.error("NOPROTO unsupported protocol version")
			return
		}
		proto = n
	}
	authed, name, setName := s.authed, "", false
	for i := 2; i < len(args); i++ {
		switch {
		case equalFold(args[i], "auth") && i+2 < len(args):
			if !s.checkAuth(string(args[i+1]), string(args[i+2])) {
				s.w.error("WRONGPASS invalid username-password pair or user is disabled.")
				return
			}
			authed = true
			i += 2
		case equalFold(args[i], "setname") && i+1 < len(args):
			name, setName = string(args[i+1]), true
			i++
		default:
			s.w.error("ERR Syntax error in HELLO option '" + string(args[i]) + "'")
			return
		}
	}
	if !authed {
		s.w.error("NOAUTH HELLO must be called with the client already authenticated, otherwise the HELLO <proto> AUTH <user> <pass> option can be used to authenticate the client and select the RESP protocol version at the same time")
		return
	}
	if setName && !validName(name) {
		s.w.error("ERR Client names cannot contain spaces, newlines or special characters.")
		return
	}
	s.setAuthed(true)
	if setName {
		s.name = name
	}
	if proto != 0 {
		s.setRESP3(proto == 3)
	}
	s.w.mapOf(7)
	s.w.bulk("server")
	s.w.bulk("redis")
	s.w.bulk("version")
	s.w.bulk(s.srv.opts.Version)
	s.w.bulk("proto")
	if s.w.resp3 {
		s.w.int(3)
	} else {
		s.w.int(2)
	}
	s.w.bulk("id")
	s.w.int(s.id)
	s.w.bulk("mode")
	s.w.bulk("standalone")
	s.w.bulk("role")
	s.w.bulk("master")
	s.w.bulk("modules")
	s.w.array(0)
}

// setRESP3 switches the protocol; the subscriptions' messages read the
// flag under wmu.
func (s *session) setRESP3(v bool) {
	s.wmu.Lock()
	s.w.resp3 = v
	s.wmu.Unlock()
}

func (s *session) selectDB(args [][]byte) {
	if len(args) != 2 {
		s.arityError(args)
		return
	}
	n, err := strconv.Atoi(string(args[1]))
	switch {
	case err != nil:
		s.w.error("ERR value is not an integer or out of range")
	case n != 0:
		s.w.error("ERR DB index is out of range (the slotrouter proxy serves database 0, as Redis Cluster does)")
	default:
		s.w.simple("OK")
	}
}

// clientCmd answers the CLIENT subcommands a connection pool uses; the
// rest concern server connections the session does not have.
func (s *session) clientCmd(args [][]byte) {
	if len(args) < 2 {
		s.arityError(args)
		return
	}
	sub := strings.ToLower(string(args[1]))
	switch {
	case sub == "id" && len(args) == 2:
		s.w.int(s.id)
	case sub == "getname" && len(args) == 2:
		if s.name == "" {
			s.w.null()
		} else {
			s.w.bulk(s.name)
		}
	case sub == "setname" && len(args) == 3:
		if !validName(string(args[2])) {
			s.w.error("ERR Client names cannot contain spaces, newlines or special characters.")
			return
		}
		s.name = string(args[2])
		s.w.simple("OK")
	case sub == "setinfo" && len(args) == 4, sub == "no-evict" && len(args) == 3, sub == "no-touch" && len(args) == 3:
		s.w.simple("OK") // hints for a server's bookkeeping; nothing to keep here
	case sub == "info" && len(args) == 2:
		s.w.bulk("id=" + strconv.FormatInt(s.id, 10) + " addr=" + s.conn.RemoteAddr().String() + " name=" + s.name +
			" resp=" + map[bool]string{false: "2", true: "3"}[s.w.resp3] + "\n")
	case sub == "id" || sub == "getname" || sub == "setname" || sub == "info" || sub == "setinfo":
		s.w.error("ERR wrong number of arguments for 'client|" + sub + "' command")
	default:
		s.w.error("ERR CLIENT " + strings.ToUpper(sub) + " is not supported by the slotrouter proxy")
	}
}

// validName is redis-server's rule for client names: printable, no spaces.
func validName(n string) bool {
	for i := 0; i < len(n); i++ {
		if n[i] < '!' || n[i] > '~' {
			return false
		}
	}
	return true
}

// reset is RESET: the session as it was after connecting.
func (s *session) reset() {
	s.tx.discard()
	s.tx.watch = nil // ends an inner WATCH loop (tx.go)
	s.endSubscriptions()
	s.setRESP3(false)
	s.name = ""
	s.setAuthed(!s.srv.opts.authRequired())
	s.w.simple("RESET")
}
