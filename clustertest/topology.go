package clustertest

import (
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/slotrouter/slotrouter/slots"
)

// nodeState is one node's place in the shared cluster view. Every node
// answers from the same view: gossip delays are modelled by the timers in
// control.go, not by per-node views.
type nodeState struct {
	role     Role
	master   int // index of the master for a replica, else -1
	epoch    uint64
	shard    int
	down     bool // link disconnected: killed or hung
	pfail    bool
	fail     bool
	pingSent int64 // Unix ms of the unanswered ping while down
}

type migration struct{ from, to int }

// topo is immutable once stored; changes copy it (see Cluster.update).
type topo struct {
	nodes        []nodeState
	owner        [slots.Count]int16
	migr         map[slots.Slot]migration
	currentEpoch uint64
	ok           bool
	assigned     int
	failSlots    int
	pfailSlots   int
}

func (t *topo) clone() *topo {
	c := *t
	c.nodes = append([]nodeState(nil), t.nodes...)
	c.migr = make(map[slots.Slot]migration, len(t.migr))
	for k, v := range t.migr {
		c.migr[k] = v
	}
	return &c
}

// finish recomputes the derived cluster state. With the default
// cluster-require-full-coverage yes, any unowned slot or slot of a FAIL
// master puts the whole cluster in state fail.
func (t *topo) finish() {
	t.assigned, t.failSlots, t.pfailSlots = 0, 0, 0
	for _, o := range t.owner {
		if o < 0 {
			continue
		}
		t.assigned++
		switch st := t.nodes[o]; {
		case st.fail:
			t.failSlots++
		case st.pfail:
			t.pfailSlots++
		}
	}
	t.ok = t.assigned == slots.Count && t.failSlots == 0
}

// shardMaster returns the index of the node serving shard's slots, or the
// shard's master-role node when it owns none, or -1.
func (t *topo) shardMaster(shard int) int {
	best := -1
	for i, st := range t.nodes {
		if st.shard != shard || st.role != RoleMaster {
			continue
		}
		if t.ownsAny(i) {
			return i
		}
		if best < 0 && !st.fail {
			best = i
		}
	}
	return best
}

func (t *topo) ownsAny(i int) bool {
	for _, o := range t.owner {
		if int(o) == i {
			return true
		}
	}
	return false
}

// ranges returns node i's slots as inclusive [start,end] pairs.
func (t *topo) ranges(i int) [][2]int {
	var out [][2]int
	for s := 0; s < slots.Count; s++ {
		if int(t.owner[s]) != i {
			continue
		}
		if len(out) > 0 && out[len(out)-1][1] == s-1 {
			out[len(out)-1][1] = s
		} else {
			out = append(out, [2]int{s, s})
		}
	}
	return out
}

func (t *topo) configEpoch(i int) uint64 {
	st := t.nodes[i]
	if st.role == RoleReplica && st.master >= 0 {
		return t.nodes[st.master].epoch
	}
	return st.epoch
}

func (c *Cluster) nodeFlags(t *topo, i, me int) string {
	st := t.nodes[i]
	var f []string
	if i == me {
		f = append(f, "myself")
	}
	if st.role == RoleMaster {
		f = append(f, "master")
	} else {
		f = append(f, "slave")
	}
	if st.pfail {
		f = append(f, "fail?")
	}
	if st.fail {
		f = append(f, "fail")
	}
	return strings.Join(f, ",")
}

func cport(port int) int {
	if port+10000 <= 65535 {
		return port + 10000
	}
	return port - 10000
}

// clusterNodes renders CLUSTER NODES as node me sees it. Migration markers
// appear only on the myself line, as in Redis.
func (c *Cluster) clusterNodes(t *topo, me int) string {
	var b strings.Builder
	now := time.Now().UnixMilli()
	for i, n := range c.nodes {
		st := t.nodes[i]
		b.WriteString(n.id)
		b.WriteByte(' ')
		b.WriteString(n.addr)
		b.WriteByte('@')
		b.WriteString(strconv.Itoa(cport(n.port)))
		b.WriteByte(' ')
		b.WriteString(c.nodeFlags(t, i, me))
		b.WriteByte(' ')
		if st.role == RoleReplica && st.master >= 0 {
			b.WriteString(c.nodes[st.master].id)
		} else {
			b.WriteByte('-')
		}
		ping, pong := int64(0), now
		if i == me {
			pong = now / 1000 * 1000
		} else if st.down {
			ping, pong = st.pingSent, st.pingSent-1
		}
		b.WriteString(" " + strconv.FormatInt(ping, 10) + " " + strconv.FormatInt(pong, 10) + " ")
		b.WriteString(strconv.FormatUint(t.configEpoch(i), 10))
		if st.down && i != me {
			b.WriteString(" disconnected")
		} else {
			b.WriteString(" connected")
		}
		for _, r := range t.ranges(i) {
			b.WriteByte(' ')
			b.WriteString(strconv.Itoa(r[0]))
			if r[1] != r[0] {
				b.WriteByte('-')
				b.WriteString(strconv.Itoa(r[1]))
			}
		}
		if i == me {
			for _, s := range sortedSlots(t.migr) {
				m := t.migr[s]
				switch me {
				case m.from:
					b.WriteString(" [" + strconv.Itoa(int(s)) + "->-" + c.nodes[m.to].id + "]")
				case m.to:
					b.WriteString(" [" + strconv.Itoa(int(s)) + "-<-" + c.nodes[m.from].id + "]")
				}
			}
		}
		b.WriteByte('\n')
	}
	return b.String()
}

func sortedSlots(m map[slots.Slot]migration) []slots.Slot {
	out := make([]slots.Slot, 0, len(m))
	for s := range m {
		out = append(out, s)
	}
	slices.Sort(out)
	return out
}

// replicasFor lists the replicas of master i that CLUSTER SLOTS would show:
// 7.0 leaves out failed replicas and those that never synced (offset 0).
func (c *Cluster) replicasFor(t *topo, i int, forSlots bool) []int {
	var out []int
	for j, st := range t.nodes {
		if st.role != RoleReplica || st.master != i {
			continue
		}
		if forSlots && (st.fail || c.nodes[j].Offset() == 0) {
			continue
		}
		out = append(out, j)
	}
	return out
}

func (c *Cluster) writeSlotNode(o *out, i int) {
	n := c.nodes[i]
	o.array(4)
	o.bulkString("127.0.0.1")
	o.int(int64(n.port))
	o.bulkString(n.id)
	o.array(0)
}

// clusterSlots renders CLUSTER SLOTS: one entry per contiguous run of one
// owner, sorted by start slot (6.2+ order).
func (c *Cluster) clusterSlots(o *out, t *topo) {
	type run struct{ start, end, owner int }
	var runs []run
	for s := 0; s < slots.Count; s++ {
		ow := int(t.owner[s])
		if ow < 0 {
			continue
		}
		if len(runs) > 0 && runs[len(runs)-1].owner == ow && runs[len(runs)-1].end == s-1 {
			runs[len(runs)-1].end = s
			continue
		}
		runs = append(runs, run{s, s, ow})
	}
	o.array(len(runs))
	for _, r := range runs {
		reps := c.replicasFor(t, r.owner, true)
		o.array(3 + len(reps))
		o.int(int64(r.start))
		o.int(int64(r.end))
		c.writeSlotNode(o, r.owner)
		for _, rp := range reps {
			c.writeSlotNode(o, rp)
		}
	}
}

// clusterShards renders CLUSTER SHARDS the 7.0 way: one shard per master
// (a failed ex-master without slots is its own shard), nodes master first.
func (c *Cluster) clusterShards(o *out, t *topo) {
	var masters []int
	for i, st := range t.nodes {
		if st.role == RoleMaster {
			masters = append(masters, i)
		}
	}
	o.array(len(masters))
	for _, m := range masters {
		o.array(4)
		o.bulkString("slots")
		rs := t.ranges(m)
		o.array(2 * len(rs))
		for _, r := range rs {
			o.int(int64(r[0]))
			o.int(int64(r[1]))
		}
		o.bulkString("nodes")
		members := append([]int{m}, c.replicasFor(t, m, false)...)
		o.array(len(members))
		for _, i := range members {
			n := c.nodes[i]
			st := t.nodes[i]
			o.array(14)
			o.bulkString("id")
			o.bulkString(n.id)
			o.bulkString("port")
			o.int(int64(n.port))
			o.bulkString("ip")
			o.bulkString("127.0.0.1")
			o.bulkString("endpoint")
			o.bulkString("127.0.0.1")
			o.bulkString("role")
			o.bulkString(string(st.role))
			o.bulkString("replication-offset")
			off := n.Offset()
			o.int(off)
			o.bulkString("health")
			switch {
			case st.fail:
				o.bulkString("fail")
			case st.role == RoleReplica && off == 0:
				o.bulkString("loading")
			default:
				o.bulkString("online")
			}
		}
	}
}

func (c *Cluster) clusterInfo(t *topo, me int) string {
	state := "ok"
	if !t.ok {
		state = "fail"
	}
	size := 0
	for i, st := range t.nodes {
		if st.role == RoleMaster && t.ownsAny(i) {
			size++
		}
	}
	lines := []string{
		"cluster_state:" + state,
		"cluster_slots_assigned:" + strconv.Itoa(t.assigned),
		"cluster_slots_ok:" + strconv.Itoa(t.assigned-t.failSlots-t.pfailSlots),
		"cluster_slots_pfail:" + strconv.Itoa(t.pfailSlots),
		"cluster_slots_fail:" + strconv.Itoa(t.failSlots),
		"cluster_known_nodes:" + strconv.Itoa(len(t.nodes)),
		"cluster_size:" + strconv.Itoa(size),
		"cluster_current_epoch:" + strconv.FormatUint(t.currentEpoch, 10),
		"cluster_my_epoch:" + strconv.FormatUint(t.configEpoch(me), 10),
		"cluster_stats_messages_sent:0",
		"cluster_stats_messages_received:0",
		"total_cluster_links_buffer_limit_exceeded:0",
	}
	return strings.Join(lines, "\r\n") + "\r\n"
}
