package clustertest

import (
	"bytes"
	"strconv"
	"strings"

	"github.com/slotrouter/slotrouter/slots"
)

type cmdFlags uint8

const (
	fWrite  cmdFlags = 1 << iota
	fRead            // a read: READONLY replicas may serve it
	fNoAuth          // allowed before AUTH
)

// command describes one command as the 7.0.15 command table does: arity
// (negative = at least), flags, and the legacy key positions (first, last,
// step; last < 0 counts from the end), which cover every command served
// here.
type command struct {
	name              string // lowercase, as error texts spell it ("cluster|keyslot")
	arity             int
	flags             cmdFlags
	first, last, step int
	fn                func(*ctx)
	subs              map[string]*command
}

// ctx is what a command handler sees. The node's data lock is held.
type ctx struct {
	n      *Node
	c      *conn
	args   [][]byte
	o      *out
	now    int64 // Unix ms from Options.Now
	t      *topo
	asking bool // ASKING preceded this command (MULTI keeps it until EXEC)
}

func (x *ctx) db() *db { return x.n.db }

const (
	errCrossSlot = "CROSSSLOT Keys in request don't hash to the same slot"
	errTryAgain  = "TRYAGAIN Multiple keys request during rehashing of slot"
	errWrongType = "WRONGTYPE Operation against a key holding the wrong kind of value"
	errNotInt    = "ERR value is not an integer or out of range"
	errSyntax    = "ERR syntax error"
	errNoAuth    = "NOAUTH Authentication required."
	errWrongPass = "WRONGPASS invalid username-password pair or user is disabled."
	errReadOnly  = "READONLY You can't write against a read only replica."
)

func arityErr(name string) string { return "ERR wrong number of arguments for '" + name + "' command" }

// lookup finds a command case-insensitively without allocating for names
// up to 32 bytes.
func lookup(table map[string]*command, name []byte) *command {
	var buf [32]byte
	if len(name) > len(buf) {
		return nil
	}
	for i, ch := range name {
		if 'A' <= ch && ch <= 'Z' {
			ch += 'a' - 'A'
		}
		buf[i] = ch
	}
	return table[string(buf[:len(name)])]
}

// sanitize mirrors rejectCommandFormat: CR and LF become spaces so the
// error stays one protocol line.
func sanitize(s string) string {
	return strings.NewReplacer("\r", " ", "\n", " ").Replace(s)
}

func trunc(b []byte, n int) string {
	if len(b) > n {
		b = b[:n]
	}
	return string(b)
}

func unknownCommand(args [][]byte) string {
	var a strings.Builder
	for _, v := range args[1:] {
		if a.Len() >= 128 {
			break
		}
		a.WriteString("'" + trunc(v, 128-a.Len()) + "' ")
	}
	return sanitize("ERR unknown command '" + trunc(args[0], 128) + "', with args beginning with: " + a.String())
}

func arityOK(arity, n int) bool {
	return (arity > 0 && n == arity) || (arity < 0 && n >= -arity)
}

// keyPositions returns the argument indexes of cmd's keys.
func (cmd *command) keyPositions(args [][]byte, dst []int) []int {
	if cmd.first == 0 {
		return dst
	}
	last := cmd.last
	if last < 0 {
		last = len(args) + last
	}
	for i := cmd.first; i <= last && i < len(args); i += cmd.step {
		dst = append(dst, i)
	}
	return dst
}

// exec runs one command, in processCommand's order: lookup and arity,
// NOAUTH, the cluster check, the READONLY-replica check, then the command.
// It reports whether the connection should close (QUIT).
func (n *Node) exec(c *conn, args [][]byte) (quit bool) {
	o := &c.out
	n.served.Add(1)
	asking := c.asking
	if c.multi == nil {
		c.asking = false // one-shot, except from MULTI to EXEC
	}
	cmd := lookup(n.c.cmds, args[0])
	if cmd == nil {
		o.err(unknownCommand(args))
		c.flagMulti()
		return false
	}
	if !arityOK(cmd.arity, len(args)) {
		c.reject(cmd, arityErr(cmd.name))
		return false
	}
	if cmd.subs != nil {
		sub := lookup(cmd.subs, args[1])
		if sub == nil {
			o.err(sanitize("ERR unknown subcommand '" + trunc(args[1], 128) + "'. Try " + strings.ToUpper(cmd.name) + " HELP."))
			c.flagMulti()
			return false
		}
		if !arityOK(sub.arity, len(args)) {
			o.err(arityErr(sub.name))
			c.flagMulti()
			return false
		}
		cmd = sub
	}
	if cmd.name == "quit" {
		o.ok()
		return true
	}
	if !c.authed && cmd.flags&fNoAuth == 0 {
		c.reject(cmd, errNoAuth)
		return false
	}
	if cmd.name == "asking" {
		c.asking = true
		o.ok()
		return false
	}
	var posBuf [8]int
	pos := cmd.keyPositions(args, posBuf[:0])

	n.mu.Lock()
	defer n.mu.Unlock()
	x := ctx{n: n, c: c, args: args, o: o, now: n.c.opts.Now().UnixMilli(), t: n.c.topo.Load(), asking: asking}
	if len(pos) > 0 {
		if e := n.route(&x, cmd, pos, asking); e != "" {
			o.err(e)
			c.flagMulti()
			n.replicate(args)
			return false
		}
	}
	if cmd.flags&fWrite != 0 && x.t.nodes[n.idx].role == RoleReplica {
		o.err(errReadOnly)
		c.flagMulti()
		return false
	}
	if c.multi != nil && !txControl(cmd.name) {
		c.queue(cmd, args)
		return false
	}
	cmd.fn(&x)
	n.replicate(args)
	return false
}

// route is getNodeByQuery (7.0.15): it returns the redirect or cluster
// error for the command, or "" to serve it here.
func (n *Node) route(x *ctx, cmd *command, pos []int, asking bool) string {
	t, me := x.t, n.idx
	var (
		slot                           slots.Slot
		owner                          int
		mig                            migration
		migrating, importing, multiple bool
		missing, existing              int
	)
	first := x.args[pos[0]]
	for j, p := range pos {
		k := x.args[p]
		s := slots.Of(k)
		if j == 0 {
			slot, owner = s, int(t.owner[s])
			if owner < 0 {
				return "CLUSTERDOWN Hash slot not served"
			}
			if m, ok := t.migr[s]; ok {
				mig = m
				migrating = owner == me && m.from == me
				importing = !migrating && m.to == me
			}
		} else if !bytes.Equal(first, k) {
			if s != slot {
				return errCrossSlot
			}
			multiple = true
		}
		if migrating || importing {
			if n.db.get(string(k), x.now) == nil {
				missing++
			} else {
				existing++
			}
		}
	}
	if !t.ok {
		return "CLUSTERDOWN The cluster is down"
	}
	if migrating && missing > 0 {
		if existing > 0 {
			return errTryAgain
		}
		return "ASK " + strconv.Itoa(int(slot)) + " " + n.c.nodes[mig.to].addr
	}
	if importing && asking {
		if multiple && missing > 0 {
			return errTryAgain
		}
		return ""
	}
	st := t.nodes[me]
	if x.c.readonly && cmd.flags&fWrite == 0 && st.role == RoleReplica && st.master == owner {
		return ""
	}
	if owner != me {
		return "MOVED " + strconv.Itoa(int(slot)) + " " + n.c.nodes[owner].addr
	}
	return ""
}
