package clustertest

import (
	"context"
	"fmt"
	"time"

	"github.com/slotrouter/slotrouter/slots"
)

// update applies f to a copy of the topology and publishes it. c.ctrl must
// be held.
func (c *Cluster) update(f func(t *topo)) *topo {
	t := c.topo.Load().clone()
	f(t)
	t.finish()
	c.topo.Store(t)
	return t
}

func (c *Cluster) checkOpen() error {
	if c.closed.Load() {
		return ErrClosed
	}
	return nil
}

// checkNode is the precondition of every call that acts on a node: the
// cluster is open and n is one of its nodes.
func (c *Cluster) checkNode(n *Node) error {
	if err := c.checkOpen(); err != nil {
		return err
	}
	_, err := c.node(n)
	return err
}

// Kill stops node like kill -9: the listener and every connection close
// and dials are refused. Writes still on their way to its replicas are
// lost. The node keeps its data, as if persisted, for Restart. The other
// nodes notice after NodeTimeout and, for a master with a live replica,
// fail over.
func (c *Cluster) Kill(n *Node) error {
	c.ctrl.Lock()
	defer c.ctrl.Unlock()
	if err := c.checkNode(n); err != nil {
		return err
	}
	if n.isDead() {
		return fmt.Errorf("%w: %s is already dead", ErrBadState, n)
	}
	n.shutdown()
	n.mu.Lock()
	links := append([]*link(nil), n.links...)
	n.mu.Unlock()
	for _, l := range links {
		c.detach(l.replica)
	}
	c.detach(n)
	c.markDown(n)
	c.log.Info("clustertest: node killed", "node", n.addr)
	return nil
}

// Hang freezes node like SIGSTOP: connections stay open and new ones are
// accepted, but nothing is answered until Resume. The cluster treats it
// as down (and fails it over) just as for Kill.
func (c *Cluster) Hang(n *Node) error {
	c.ctrl.Lock()
	defer c.ctrl.Unlock()
	if err := c.checkNode(n); err != nil {
		return err
	}
	n.life.Lock()
	if n.dead || n.hang != nil {
		n.life.Unlock()
		return fmt.Errorf("%w: %s is dead or already hung", ErrBadState, n)
	}
	n.hang = make(chan struct{})
	n.life.Unlock()
	c.markDown(n)
	c.log.Info("clustertest: node hung", "node", n.addr)
	return nil
}

// Resume undoes Hang. A master that was failed over meanwhile rejoins as a
// replica of its successor (after a full resync), as Redis does.
func (c *Cluster) Resume(n *Node) error {
	c.ctrl.Lock()
	defer c.ctrl.Unlock()
	if err := c.checkNode(n); err != nil {
		return err
	}
	n.life.Lock()
	h := n.hang
	n.hang = nil
	n.life.Unlock()
	if h == nil {
		return fmt.Errorf("%w: %s is not hung", ErrBadState, n)
	}
	c.rejoin(n)
	close(h)
	return nil
}

// Restart brings a killed node back on its old port. A master that was
// failed over comes back as a replica of the new master; others resume
// their role and replicas resync.
func (c *Cluster) Restart(n *Node) error {
	c.ctrl.Lock()
	defer c.ctrl.Unlock()
	if err := c.checkNode(n); err != nil {
		return err
	}
	if !n.isDead() {
		return fmt.Errorf("%w: %s is running", ErrBadState, n)
	}
	if err := n.listen(n.addr); err != nil {
		return err
	}
	c.rejoin(n)
	n.serve()
	c.log.Info("clustertest: node restarted", "node", n.addr, "role", n.Role())
	return nil
}

// rejoin clears n's failure flags and fixes its role; c.ctrl is held.
func (c *Cluster) rejoin(n *Node) {
	n.downGen++
	t := c.update(func(t *topo) {
		st := &t.nodes[n.idx]
		st.down, st.pfail, st.fail, st.pingSent = false, false, false, 0
		if st.role == RoleMaster && !t.ownsAny(n.idx) {
			if m := t.shardMaster(st.shard); m >= 0 && m != n.idx {
				st.role, st.master = RoleReplica, m
			}
		}
	})
	st := t.nodes[n.idx]
	if st.role == RoleReplica {
		n.mu.Lock()
		n.db.record = false
		n.mu.Unlock()
		c.detach(n)
		c.attach(c.nodes[st.master], n)
		return
	}
	for i, rs := range t.nodes {
		if rs.role == RoleReplica && rs.master == n.idx && !rs.down {
			r := c.nodes[i]
			r.mu.Lock()
			linked := r.up != nil
			r.mu.Unlock()
			if !linked {
				c.attach(n, r)
			}
		}
	}
}

// markDown starts failure detection for n; c.ctrl is held.
func (c *Cluster) markDown(n *Node) {
	n.downGen++
	gen := n.downGen
	c.update(func(t *topo) {
		st := &t.nodes[n.idx]
		st.down, st.pingSent = true, time.Now().UnixMilli()
	})
	c.wg.Add(1)
	go c.detect(n, gen)
}

// detect plays the failure detection timeline: fail? after NodeTimeout,
// fail NodeTimeout/2 later (cluster down if n served slots), then, after
// FailoverDelay, promotion of n's best replica.
func (c *Cluster) detect(n *Node, gen uint64) {
	defer c.wg.Done()
	sleep := func(d time.Duration) bool {
		t := time.NewTimer(d)
		defer t.Stop()
		select {
		case <-t.C:
			return true
		case <-c.done:
			return false
		}
	}
	step := func(f func() bool) bool {
		c.ctrl.Lock()
		defer c.ctrl.Unlock()
		if c.closed.Load() || n.downGen != gen {
			return false
		}
		return f()
	}
	if !sleep(c.opts.NodeTimeout) || !step(func() bool {
		c.update(func(t *topo) { t.nodes[n.idx].pfail = true })
		return true
	}) {
		return
	}
	if !sleep(c.opts.NodeTimeout/2) || !step(func() bool {
		t := c.update(func(t *topo) {
			t.nodes[n.idx].pfail, t.nodes[n.idx].fail = false, true
		})
		c.log.Info("clustertest: node marked fail", "node", n.addr, "cluster_ok", t.ok)
		return t.nodes[n.idx].role == RoleMaster && t.ownsAny(n.idx)
	}) {
		return
	}
	if !sleep(c.opts.FailoverDelay) {
		return
	}
	step(func() bool {
		if r := c.bestReplica(n); r != nil {
			c.promote(n, r)
		}
		return true
	})
}

// bestReplica picks the live replica of master with the highest offset.
func (c *Cluster) bestReplica(master *Node) *Node {
	t := c.topo.Load()
	var best *Node
	for i, st := range t.nodes {
		if st.role != RoleReplica || st.master != master.idx || st.down || st.fail {
			continue
		}
		if r := c.nodes[i]; best == nil || r.offset.Load() > best.offset.Load() {
			best = r
		}
	}
	return best
}

// promote makes r the master of old's slots with a bumped epoch; old stays
// a slotless master (flagged fail while down). c.ctrl is held.
func (c *Cluster) promote(old, r *Node) {
	c.detach(r)
	r.mu.Lock()
	r.becomeMaster()
	r.mu.Unlock()
	var others []*Node
	c.update(func(t *topo) {
		t.currentEpoch++
		rs := &t.nodes[r.idx]
		rs.role, rs.master, rs.epoch = RoleMaster, -1, t.currentEpoch
		for s, o := range t.owner {
			if int(o) == old.idx {
				t.owner[s] = int16(r.idx)
			}
		}
		for s, m := range t.migr {
			if m.from == old.idx {
				m.from = r.idx
			}
			if m.to == old.idx {
				m.to = r.idx
			}
			t.migr[slots.Slot(s)] = m
		}
		for i := range t.nodes {
			if st := &t.nodes[i]; st.role == RoleReplica && st.master == old.idx {
				st.master = r.idx
				others = append(others, c.nodes[i])
			}
		}
	})
	for _, o := range others {
		c.detach(o)
		if !c.topo.Load().nodes[o.idx].down {
			c.attach(r, o)
		}
	}
	c.log.Info("clustertest: failover", "old", old.addr, "new", r.addr, "epoch", c.topo.Load().currentEpoch)
}

// Failover kills the current master of shard (unless it is already dead)
// and waits until a replica has taken over, about NodeTimeout*1.5 +
// FailoverDelay later, returning the new master.
func (c *Cluster) Failover(ctx context.Context, shard int) (*Node, error) {
	if shard < 0 || shard >= c.opts.Masters {
		return nil, ErrInvalidShard
	}
	t := c.topo.Load()
	m := t.shardMaster(shard)
	if m < 0 {
		return nil, fmt.Errorf("%w: shard %d has no master", ErrBadState, shard)
	}
	old := c.nodes[m]
	if c.bestReplica(old) == nil {
		return nil, ErrNoReplica
	}
	if !old.isDead() {
		if err := c.Kill(old); err != nil {
			return nil, err
		}
	}
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for {
		t := c.topo.Load()
		if nm := t.shardMaster(shard); nm >= 0 && nm != old.idx && t.ok {
			return c.nodes[nm], nil
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-c.done:
			return nil, ErrClosed
		case <-tick.C:
		}
	}
}

// ManualFailover is CLUSTER FAILOVER on replica: it waits for the replica
// to catch up, then swaps roles with its master. No command fails.
func (c *Cluster) ManualFailover(replica *Node) error {
	c.ctrl.Lock()
	defer c.ctrl.Unlock()
	if err := c.checkNode(replica); err != nil {
		return err
	}
	t := c.topo.Load()
	st := t.nodes[replica.idx]
	if st.role != RoleReplica || st.down || t.nodes[st.master].down {
		return fmt.Errorf("%w: %s is not a live replica of a live master", ErrBadState, replica)
	}
	m := c.nodes[st.master]
	m.mu.Lock()
	var others []*link
	for _, l := range m.links {
		if l.replica == replica {
			l.drain()
		} else {
			others = append(others, l)
		}
	}
	m.links = nil
	for _, l := range others {
		l.stop()
	}
	m.db.record = false
	replica.mu.Lock()
	replica.up = nil
	replica.offset.Store(m.offset.Load())
	replica.becomeMaster()
	replica.mu.Unlock()
	var followers []*Node
	c.update(func(t *topo) {
		t.currentEpoch++
		t.nodes[replica.idx].role, t.nodes[replica.idx].master, t.nodes[replica.idx].epoch = RoleMaster, -1, t.currentEpoch
		for s, o := range t.owner {
			if int(o) == m.idx {
				t.owner[s] = int16(replica.idx)
			}
		}
		t.nodes[m.idx].role, t.nodes[m.idx].master = RoleReplica, replica.idx
		for i := range t.nodes {
			if s := &t.nodes[i]; s.role == RoleReplica && (s.master == m.idx || i == m.idx) {
				s.master = replica.idx
				followers = append(followers, c.nodes[i])
			}
		}
	})
	m.mu.Unlock()
	for _, f := range followers {
		c.detach(f)
		c.attach(replica, f)
	}
	c.log.Info("clustertest: manual failover", "old", m.addr, "new", replica.addr)
	return nil
}

// SetLatency delays every reply of node by d (0 turns it off).
func (c *Cluster) SetLatency(n *Node, d time.Duration) error {
	if _, err := c.node(n); err != nil {
		return err
	}
	n.latency.Store(int64(d))
	return nil
}
