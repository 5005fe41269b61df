package clustertest

import (
	"context"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"
)

// replOp ships one key's new state; a nil entry deletes the key.
type replOp struct {
	key string
	e   *entry
}

type batch struct {
	offset int64
	at     time.Time
	flush  bool
	ops    []replOp
}

// link is the asynchronous replication stream from a master to one
// replica: a queue drained by its own goroutine, so a slow or lagging
// replica never blocks the master.
type link struct {
	master, replica *Node
	mu              sync.Mutex
	q               []batch
	wake            chan struct{}
	quit            chan struct{}
	done            chan struct{}
	once            sync.Once
}

func respLen(args [][]byte) int64 {
	n := 1 + len(strconv.Itoa(len(args))) + 2
	for _, a := range args {
		n += 1 + len(strconv.Itoa(len(a))) + 2 + len(a) + 2
	}
	return int64(n)
}

// replicate ships the keys the last command touched to every replica. It
// runs with n.mu held, so batches are queued in execution order.
func (n *Node) replicate(args [][]byte) {
	d := n.db
	if !d.record || (len(d.touched) == 0 && !d.flushed) {
		return
	}
	b := batch{at: time.Now(), flush: d.flushed}
	for k := range d.touched {
		var e *entry
		if cur := d.keys[k]; cur != nil {
			e = cur.clone()
		}
		b.ops = append(b.ops, replOp{k, e})
	}
	clear(d.touched)
	d.flushed = false
	b.offset = n.offset.Add(respLen(args))
	for _, l := range n.links {
		l.enqueue(b)
	}
}

func (l *link) enqueue(b batch) {
	l.mu.Lock()
	l.q = append(l.q, b)
	l.mu.Unlock()
	select {
	case l.wake <- struct{}{}:
	default:
	}
}

func (l *link) run(lag time.Duration) {
	defer close(l.done)
	for {
		l.mu.Lock()
		for len(l.q) == 0 {
			l.mu.Unlock()
			select {
			case <-l.wake:
			case <-l.quit:
				return
			}
			l.mu.Lock()
		}
		b := l.q[0]
		l.mu.Unlock()
		if wait := time.Until(b.at.Add(lag)); lag > 0 && wait > 0 {
			t := time.NewTimer(wait)
			select {
			case <-t.C:
			case <-l.quit:
				t.Stop()
				return
			}
		}
		select {
		case <-l.quit:
			return
		default:
		}
		l.replica.mu.Lock()
		if l.replica.up == l {
			l.apply(b)
		}
		l.replica.mu.Unlock()
		l.mu.Lock()
		l.q = l.q[1:]
		l.mu.Unlock()
	}
}

// apply installs a batch; the replica's lock is held.
func (l *link) apply(b batch) {
	d := l.replica.db
	if b.flush {
		d.flush()
	}
	for _, op := range b.ops {
		if op.e == nil {
			d.del(op.key)
		} else {
			d.put(op.key, op.e.clone())
		}
	}
	l.replica.offset.Store(b.offset)
}

// stop ends the stream; writes still queued are dropped, which is how a
// lagging replica loses writes when its master dies.
func (l *link) stop() {
	l.once.Do(func() { close(l.quit) })
	<-l.done
}

// drain stops the stream and applies everything queued: the catch-up a
// manual failover waits for. The replica's lock must not be held.
func (l *link) drain() {
	l.stop()
	l.replica.mu.Lock()
	defer l.replica.mu.Unlock()
	l.mu.Lock()
	q := l.q
	l.q = nil
	l.mu.Unlock()
	for _, b := range q {
		l.apply(b)
	}
}

// attach makes replica follow master with a full resync: the replica's
// data is replaced by a copy of the master's.
func (c *Cluster) attach(master, replica *Node) {
	l := &link{master: master, replica: replica, wake: make(chan struct{}, 1), quit: make(chan struct{}), done: make(chan struct{})}
	master.mu.Lock()
	snap := master.db.clone()
	off := master.offset.Load()
	replid := master.replid
	master.links = append(master.links, l)
	master.mu.Unlock()

	replica.mu.Lock()
	snap.record = false
	replica.db = snap
	replica.up = l
	replica.replid, replica.replid2, replica.second = replid, noReplID, -1
	replica.offset.Store(off)
	replica.mu.Unlock()

	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		l.run(c.opts.ReplicationLag)
	}()
}

// detach cuts replica from its master (if any) and returns the link, which
// is already stopped.
func (c *Cluster) detach(replica *Node) *link {
	replica.mu.Lock()
	l := replica.up
	replica.up = nil
	replica.mu.Unlock()
	if l == nil {
		return nil
	}
	l.master.mu.Lock()
	for i, x := range l.master.links {
		if x == l {
			l.master.links = append(l.master.links[:i:i], l.master.links[i+1:]...)
			break
		}
	}
	l.master.mu.Unlock()
	l.stop()
	return l
}

const noReplID = "0000000000000000000000000000000000000000"

// becomeMaster is shiftReplicationId: a promoted replica keeps its old
// history as replid2 (so its replicas can resync partially) and starts a
// new one. n.mu is held.
func (n *Node) becomeMaster() {
	n.db.record = true
	n.replid2, n.second = n.replid, n.offset.Load()+1
	n.replid = randomID()
}

// WaitReplicated blocks until every live replica has applied all writes its
// master had produced when the call began, or ctx ends.
func (c *Cluster) WaitReplicated(ctx context.Context) error {
	type target struct {
		r   *Node
		off int64
	}
	var targets []target
	for _, m := range c.nodes {
		m.mu.Lock()
		off := m.offset.Load()
		for _, l := range m.links {
			targets = append(targets, target{l.replica, off})
		}
		m.mu.Unlock()
	}
	tick := time.NewTicker(time.Millisecond)
	defer tick.Stop()
	for _, tg := range targets {
		for tg.r.offset.Load() < tg.off {
			tg.r.mu.Lock()
			attached := tg.r.up != nil
			tg.r.mu.Unlock()
			if !attached {
				break
			}
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-c.done:
				return ErrClosed
			case <-tick.C:
			}
		}
	}
	return nil
}

// runID is a stable 40-hex run id derived from the node id.
func (n *Node) runID() string {
	b := []byte(n.id)
	for i, j := 0, len(b)-1; i < j; i, j = i+1, j-1 {
		b[i], b[j] = b[j], b[i]
	}
	return string(b)
}

// liveReplicas lists the links to replicas that are up; n.mu is held.
func (n *Node) liveReplicas(t *topo) []*link {
	var out []*link
	for _, l := range n.links {
		if !t.nodes[l.replica.idx].down {
			out = append(out, l)
		}
	}
	return out
}

func cmdRole(x *ctx) {
	n, st := x.n, x.t.nodes[x.n.idx]
	if st.role == RoleMaster {
		reps := n.liveReplicas(x.t)
		x.o.array(3)
		x.o.bulkString("master")
		x.o.int(n.offset.Load())
		x.o.array(len(reps))
		for _, l := range reps {
			x.o.array(3)
			x.o.bulkString("127.0.0.1")
			x.o.bulkString(strconv.Itoa(l.replica.port))
			x.o.bulkString(strconv.FormatInt(l.replica.offset.Load(), 10))
		}
		return
	}
	m := n.c.nodes[st.master]
	x.o.array(5)
	x.o.bulkString("slave")
	x.o.bulkString("127.0.0.1")
	x.o.int(int64(m.port))
	if n.linkUp(x.t) {
		x.o.bulkString("connected")
	} else {
		x.o.bulkString("connect")
	}
	x.o.int(n.offset.Load())
}

// linkUp reports whether a replica's master link is established; n.mu held.
func (n *Node) linkUp(t *topo) bool {
	st := t.nodes[n.idx]
	return n.up != nil && st.master >= 0 && !t.nodes[st.master].down
}

func (x *ctx) infoSection(name string) (string, bool) {
	n, t := x.n, x.t
	st := t.nodes[n.idx]
	var lines []string
	switch name {
	case "server":
		lines = []string{"# Server", "redis_version:7.0.15", "redis_git_sha1:00000000", "redis_git_dirty:0",
			"redis_mode:cluster", "arch_bits:64", "process_id:" + strconv.Itoa(os.Getpid()),
			"run_id:" + n.runID(), "tcp_port:" + strconv.Itoa(n.port), "executable:clustertest"}
	case "clients":
		n.life.Lock()
		cc := len(n.conns)
		n.life.Unlock()
		lines = []string{"# Clients", "connected_clients:" + strconv.Itoa(cc)}
	case "replication":
		lines = []string{"# Replication"}
		off := strconv.FormatInt(n.offset.Load(), 10)
		if st.role == RoleMaster {
			reps := n.liveReplicas(t)
			lines = append(lines, "role:master", "connected_slaves:"+strconv.Itoa(len(reps)))
			for i, l := range reps {
				lines = append(lines, "slave"+strconv.Itoa(i)+":ip=127.0.0.1,port="+strconv.Itoa(l.replica.port)+
					",state=online,offset="+strconv.FormatInt(l.replica.offset.Load(), 10)+",lag=0")
			}
		} else {
			m := n.c.nodes[st.master]
			status := "down"
			if n.linkUp(t) {
				status = "up"
			}
			lines = append(lines, "role:slave", "master_host:127.0.0.1", "master_port:"+strconv.Itoa(m.port),
				"master_link_status:"+status, "master_last_io_seconds_ago:0", "master_sync_in_progress:0")
			if status == "down" {
				lines = append(lines, "master_link_down_since_seconds:1")
			}
			lines = append(lines, "slave_read_repl_offset:"+off, "slave_repl_offset:"+off, "slave_priority:100",
				"slave_read_only:1", "replica_announced:1", "connected_slaves:0")
		}
		lines = append(lines, "master_failover_state:no-failover", "master_replid:"+n.replid,
			"master_replid2:"+n.replid2, "master_repl_offset:"+off,
			"second_repl_offset:"+strconv.FormatInt(n.second, 10), "repl_backlog_active:1", "repl_backlog_size:1048576",
			"repl_backlog_first_byte_offset:1", "repl_backlog_histlen:"+off)
	case "cluster":
		lines = []string{"# Cluster", "cluster_enabled:1"}
	case "keyspace":
		lines = []string{"# Keyspace"}
		if k := len(n.db.keys); k > 0 {
			exp := 0
			for _, e := range n.db.keys {
				if e.expireAt != 0 {
					exp++
				}
			}
			lines = append(lines, "db0:keys="+strconv.Itoa(k)+",expires="+strconv.Itoa(exp)+",avg_ttl=0")
		}
	default:
		return "", false
	}
	return strings.Join(lines, "\r\n") + "\r\n", true
}

var defaultSections = []string{"server", "clients", "replication", "cluster", "keyspace"}

// cmdInfo serves the sections a routing client looks at: server, clients,
// replication, cluster and keyspace. Unknown sections add nothing, as on
// Redis.
func cmdInfo(x *ctx) {
	var want []string
	for _, a := range x.args[1:] {
		s := strings.ToLower(string(a))
		if s == "all" || s == "everything" || s == "default" {
			want = append(want, defaultSections...)
			continue
		}
		want = append(want, s)
	}
	if len(want) == 0 {
		want = defaultSections
	}
	seen := map[string]bool{}
	var parts []string
	for _, s := range defaultSections {
		for _, w := range want {
			if w == s && !seen[s] {
				seen[s] = true
				if txt, ok := x.infoSection(s); ok {
					parts = append(parts, txt)
				}
			}
		}
	}
	x.o.bulkString(strings.Join(parts, "\r\n"))
}
