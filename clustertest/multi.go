package clustertest

import (
	"slices"
	"strings"
)

// MULTI/EXEC/DISCARD and WATCH/UNWATCH, as Redis 7.0.15 runs them:
//
//   - in MULTI every command but EXEC, DISCARD, MULTI, WATCH and QUIT is
//     checked (lookup, arity, NOAUTH, the cluster check, READONLY) and
//     answered +QUEUED; a command refused there flags the transaction, and
//     EXEC then answers EXECABORT;
//   - EXEC runs the cluster check once more over the keys of every queued
//     command together (so CROSSSLOT, MOVED, ASK and TRYAGAIN apply to the
//     transaction as a whole, and discard it), then, when no watched key
//     changed, runs them all under the node's data lock: no other
//     connection's command can land in between;
//   - ASKING before MULTI lasts until EXEC;
//   - a watched key is changed by any write to it on this node (by any
//     connection, this one included, by a flush, by a migration moving it
//     away, by replication). Unlike Redis, expiry by time alone does not
//     count, and a replica's full resync does not either.

// multiState is a connection's open transaction.
type multiState struct {
	q     []queuedCmd
	dirty bool // a command was refused while queueing: EXEC aborts
}

type queuedCmd struct {
	cmd  *command
	args [][]byte
}

// watchState is a connection's watched keys, registered with the db they
// were watched in. Guarded by the node's mu.
type watchState struct {
	db      *db
	keys    []string
	changed bool
}

// flagMulti records a command refused inside MULTI.
func (c *conn) flagMulti() {
	if c.multi != nil {
		c.multi.dirty = true
	}
}

// reject answers a command refused before it ran. Like rejectCommand, it
// flags an open transaction, and a refused EXEC discards it with EXECABORT
// (even outside MULTI).
func (c *conn) reject(cmd *command, msg string) {
	c.flagMulti()
	if cmd.name != "exec" {
		c.out.err(msg)
		return
	}
	c.multi, c.asking = nil, false
	c.out.err("EXECABORT Transaction discarded because of: " + strings.TrimPrefix(msg, "ERR "))
}

// unwatch forgets c's watched keys. The node's mu must be held.
func (c *conn) unwatch() {
	w := c.watch
	if w == nil {
		return
	}
	c.watch = nil
	for _, k := range w.keys {
		ws := w.db.watchers[k]
		delete(ws, w)
		if len(ws) == 0 {
			delete(w.db.watchers, k)
		}
	}
}

// txControl commands run at once inside MULTI; every other one is queued.
func txControl(name string) bool {
	switch name {
	case "exec", "discard", "multi", "watch", "quit":
		return true
	}
	return false
}

func cmdMulti(x *ctx) {
	if x.c.multi != nil {
		x.o.err("ERR MULTI calls can not be nested")
		return
	}
	x.c.multi = &multiState{}
	x.c.asking = x.asking // ASKING before MULTI holds until EXEC
	x.o.ok()
}

func cmdDiscard(x *ctx) {
	if x.c.multi == nil {
		x.o.err("ERR DISCARD without MULTI")
		return
	}
	x.c.multi, x.c.asking = nil, false
	x.c.unwatch()
	x.o.ok()
}

func cmdWatch(x *ctx) {
	if x.c.multi != nil {
		x.o.err("ERR WATCH inside MULTI is not allowed")
		return
	}
	d := x.db()
	w := x.c.watch
	if w == nil || w.db != d {
		x.c.unwatch()
		w = &watchState{db: d}
		x.c.watch = w
	}
	if d.watchers == nil {
		d.watchers = map[string]map[*watchState]struct{}{}
	}
	for _, a := range x.args[1:] {
		k := string(a)
		if slices.Contains(w.keys, k) {
			continue
		}
		w.keys = append(w.keys, k)
		ws := d.watchers[k]
		if ws == nil {
			ws = map[*watchState]struct{}{}
			d.watchers[k] = ws
		}
		ws[w] = struct{}{}
	}
	x.o.ok()
}

func cmdUnwatch(x *ctx) {
	x.c.unwatch()
	x.o.ok()
}

func cmdExec(x *ctx) {
	c := x.c
	m := c.multi
	if m == nil {
		x.o.err("ERR EXEC without MULTI")
		return
	}
	asking := c.asking
	c.multi, c.asking = nil, false
	w := c.watch
	defer c.unwatch()
	if m.dirty {
		x.o.err("EXECABORT Transaction discarded because of previous errors.")
		return
	}
	// getNodeByQuery over the keys of all queued commands at once.
	all := [][]byte{[]byte("exec")}
	var flags cmdFlags
	var posBuf [8]int
	for _, q := range m.q {
		for _, p := range q.cmd.keyPositions(q.args, posBuf[:0]) {
			all = append(all, q.args[p])
		}
		flags |= q.cmd.flags
	}
	if len(all) > 1 {
		pos := make([]int, len(all)-1)
		for i := range pos {
			pos[i] = i + 1
		}
		rx := *x
		rx.args = all
		if e := x.n.route(&rx, &command{name: "exec", flags: flags}, pos, asking); e != "" {
			x.o.err(e)
			return
		}
	}
	if w != nil && w.changed {
		x.o.nullArray()
		return
	}
	x.o.array(len(m.q))
	for _, q := range m.q {
		qx := *x
		qx.args = q.args
		if q.cmd.flags&fWrite != 0 && x.t.nodes[x.n.idx].role == RoleReplica {
			qx.o.err(errReadOnly)
			continue
		}
		q.cmd.fn(&qx)
		x.n.replicate(q.args)
	}
}

// queue adds a checked command to c's transaction.
func (c *conn) queue(cmd *command, args [][]byte) {
	cp := make([][]byte, len(args))
	for i, a := range args {
		cp[i] = slices.Clone(a)
	}
	c.multi.q = append(c.multi.q, queuedCmd{cmd: cmd, args: cp})
	c.out.simple("QUEUED")
}

// touchWatchers marks every connection watching key (all keys: "" after a
// flush) as changed.
func (d *db) touchWatchers(key string, all bool) {
	if len(d.watchers) == 0 {
		return
	}
	if all {
		for _, ws := range d.watchers {
			for w := range ws {
				w.changed = true
			}
		}
		return
	}
	for w := range d.watchers[key] {
		w.changed = true
	}
}
