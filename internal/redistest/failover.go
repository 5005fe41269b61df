package redistest

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"
)

// promotionPoll is how often WaitPromoted samples CLUSTER NODES; it bounds
// the error of the promotion time it reports.
const promotionPoll = 10 * time.Millisecond

// Promotion describes a completed failover as observed by the harness.
type Promotion struct {
	Master *Server // the promoted former replica
	// First is when the first live node's CLUSTER NODES showed Master as a
	// master owning slots (the send time of that sample; samples are taken
	// every ~10 ms, the promoted node itself first).
	First time.Time
	// All is when every live node's CLUSTER NODES showed it.
	All time.Time
}

// WaitPromoted waits until a former replica of oldMaster has taken over: it is
// a master owning slots while oldMaster owns none, as seen by every live node.
// at is Promotion.First: the moment the promotion first became visible, for
// tests that measure how long after the promotion something recovers.
func (c *Cluster) WaitPromoted(ctx context.Context, oldMaster *Server) (newMaster *Server, at time.Time) {
	c.t.Helper()
	p := c.WaitPromotion(ctx, oldMaster)
	return p.Master, p.First
}

// WaitPromotion is WaitPromoted with both observation times.
func (c *Cluster) WaitPromotion(ctx context.Context, oldMaster *Server) Promotion {
	c.t.Helper()
	p, err := c.waitPromoted(ctx, oldMaster)
	if err != nil {
		c.t.Fatal(err)
	}
	return p
}

func (c *Cluster) waitPromoted(ctx context.Context, old *Server) (Promotion, error) {
	var p Promotion
	candidates := c.replicaCandidates(ctx, old)
	if len(candidates) == 0 {
		return p, fmt.Errorf("redistest: WaitPromoted: %s has no replicas", old.Name)
	}
	// The promoted replica knows first, so it is sampled first: that keeps
	// First within one poll interval of the real event.
	var order []*Server
	for _, s := range c.servers {
		if candidates[s] {
			order = append(order, s)
		}
	}
	for _, s := range c.servers {
		if !candidates[s] && s != old {
			order = append(order, s)
		}
	}
	err := poll(ctx, promotionPoll, func() error {
		agreed, total := 0, 0
		var complaint error
		for _, s := range order {
			if !s.live() {
				continue
			}
			total++
			sent := time.Now()
			v, err := c.viewOf(ctx, s)
			if err != nil {
				complaint = err
				continue
			}
			m := promotedIn(v, old, candidates)
			if m == nil {
				complaint = fmt.Errorf("%s does not yet see a promoted replica of %s", s.Name, old.Name)
				continue
			}
			if p.Master == nil {
				p.Master, p.First = m, sent
			} else if m != p.Master {
				return fmt.Errorf("redistest: %s was promoted, but %s sees %s", p.Master.Name, s.Name, m.Name)
			}
			agreed++
		}
		if total == 0 {
			return errors.New("no live node left")
		}
		if agreed < total {
			return complaint
		}
		p.All = time.Now()
		return nil
	})
	if err != nil {
		return p, fmt.Errorf("redistest: WaitPromoted(%s): %w", old.Name, err)
	}
	return p, nil
}

// replicaCandidates lists the nodes that replicated old, from the live views
// and from the last agreed topology (a view taken after the failover no
// longer shows the link).
func (c *Cluster) replicaCandidates(ctx context.Context, old *Server) map[*Server]bool {
	out := make(map[*Server]bool)
	c.mu.Lock()
	for r, m := range c.masterOf {
		if m == old {
			out[r] = true
		}
	}
	c.mu.Unlock()
	for _, s := range c.servers {
		if s == old || !s.live() {
			continue
		}
		if v, err := c.viewOf(ctx, s); err == nil {
			for _, n := range v.nodes {
				if n.masterID == old.ID {
					if r := c.byID(n.id); r != nil {
						out[r] = true
					}
				}
			}
		}
	}
	return out
}

// promotedIn returns the candidate that v shows as a master with slots while
// old owns none.
func promotedIn(v *view, old *Server, candidates map[*Server]bool) *Server {
	if o := v.nodes[old.ID]; o != nil && o.master() && len(o.slots) > 0 {
		return nil
	}
	for s := range candidates {
		if n := v.nodes[s.ID]; n != nil && n.master() && len(n.slots) > 0 {
			return s
		}
	}
	return nil
}

// ManualFailover runs CLUSTER FAILOVER on replica and waits until every live
// node sees it as the master and the cluster is consistent again (its old
// master attached as its replica).
func (c *Cluster) ManualFailover(replica *Server) {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	v, err := c.viewOf(ctx, replica)
	if err != nil {
		c.t.Fatal(err)
	}
	me := v.nodes[replica.ID]
	if me == nil || me.master() {
		c.t.Fatalf("redistest: ManualFailover: %s is not a replica", replica.Name)
	}
	old := c.byID(me.masterID)
	if old == nil {
		c.t.Fatalf("redistest: ManualFailover: %s replicates unknown node %s", replica.Name, me.masterID)
	}
	if _, err := replica.Do(ctx, "CLUSTER", "FAILOVER"); err != nil {
		c.t.Fatal(err)
	}
	p, err := c.waitPromoted(ctx, old)
	if err != nil {
		c.t.Fatal(err)
	}
	if p.Master != replica {
		c.t.Fatalf("redistest: ManualFailover: %s promoted instead of %s", p.Master.Name, replica.Name)
	}
	if err := c.waitOK(ctx); err != nil {
		c.t.Fatalf("redistest: after ManualFailover: %v", err)
	}
}

// migrateTimeout bounds each migration step.
const migrateTimeout = 30 * time.Second

// BeginMigration marks slot importing on dst, then migrating on src (the
// order redis-cli uses, so no client is ever sent to a node that refuses the
// slot).
func (c *Cluster) BeginMigration(slot int, src, dst *Server) {
	c.t.Helper()
	c.checkSlot(slot, src, dst)
	ctx, cancel := context.WithTimeout(context.Background(), migrateTimeout)
	defer cancel()
	if _, err := dst.Do(ctx, "CLUSTER", "SETSLOT", slot, "IMPORTING", src.ID); err != nil {
		c.t.Fatal(err)
	}
	if _, err := src.Do(ctx, "CLUSTER", "SETSLOT", slot, "MIGRATING", dst.ID); err != nil {
		c.t.Fatal(err)
	}
}

// MoveKeys moves every key of slot from src to dst with MIGRATE ... KEYS, in
// batches, and returns the number of keys moved.
func (c *Cluster) MoveKeys(slot int, src, dst *Server) int {
	c.t.Helper()
	c.checkSlot(slot, src, dst)
	ctx, cancel := context.WithTimeout(context.Background(), migrateTimeout)
	defer cancel()
	n, err := c.moveKeys(ctx, slot, src, dst)
	if err != nil {
		c.t.Fatal(err)
	}
	return n
}

func (c *Cluster) moveKeys(ctx context.Context, slot int, src, dst *Server) (int, error) {
	const batch = 100
	moved := 0
	// Each round removes up to batch keys from src; the bound only stops a
	// runaway loop if someone keeps writing into the slot.
	for round := 0; round < 100000; round++ {
		v, err := src.Do(ctx, "CLUSTER", "GETKEYSINSLOT", slot, batch)
		if err != nil {
			return moved, err
		}
		keys, _ := v.([]any)
		if len(keys) == 0 {
			return moved, nil
		}
		args := []any{"MIGRATE", dst.Host, dst.Port, "", 0, 5000}
		if c.password != "" {
			args = append(args, "AUTH", c.password)
		}
		args = append(args, "KEYS")
		args = append(args, keys...)
		if _, err := src.Do(ctx, args...); err != nil {
			return moved, err
		}
		moved += len(keys)
	}
	return moved, fmt.Errorf("redistest: slot %d still has keys after many MIGRATE rounds", slot)
}

// FinishMigration assigns slot to dst (on dst first, then src, then the other
// masters) and waits until every live node shows dst as the owner.
func (c *Cluster) FinishMigration(slot int, src, dst *Server) {
	c.t.Helper()
	c.checkSlot(slot, src, dst)
	ctx, cancel := context.WithTimeout(context.Background(), migrateTimeout)
	defer cancel()
	if err := c.finishMigration(ctx, slot, src, dst); err != nil {
		c.t.Fatal(err)
	}
}

func (c *Cluster) finishMigration(ctx context.Context, slot int, src, dst *Server) error {
	targets := []*Server{dst, src}
	v, err := c.viewOf(ctx, dst)
	if err != nil {
		return err
	}
	for _, s := range c.servers {
		if s != dst && s != src && s.live() {
			if n := v.nodes[s.ID]; n != nil && n.master() {
				targets = append(targets, s)
			}
		}
	}
	for _, s := range targets {
		if _, err := s.Do(ctx, "CLUSTER", "SETSLOT", slot, "NODE", dst.ID); err != nil {
			return err
		}
	}
	return poll(ctx, 10*time.Millisecond, func() error {
		for _, s := range c.servers {
			if !s.live() {
				continue
			}
			v, err := c.viewOf(ctx, s)
			if err != nil {
				return err
			}
			if o := v.ownerOf(slot); o == nil || o.id != dst.ID {
				return fmt.Errorf("%s does not yet see %s owning slot %d", s.Name, dst.Name, slot)
			}
		}
		return nil
	})
}

// MigrateSlot moves slot with all its keys from src to dst: BeginMigration,
// MoveKeys, FinishMigration. It returns the number of keys moved.
func (c *Cluster) MigrateSlot(slot int, src, dst *Server) int {
	c.t.Helper()
	c.BeginMigration(slot, src, dst)
	n := c.MoveKeys(slot, src, dst)
	c.FinishMigration(slot, src, dst)
	return n
}

func (c *Cluster) checkSlot(slot int, src, dst *Server) {
	c.t.Helper()
	switch {
	case slot < 0 || slot >= SlotCount:
		c.t.Fatalf("redistest: slot %d out of range", slot)
	case src == nil || dst == nil || src == dst:
		c.t.Fatalf("redistest: migration of slot %d needs two distinct nodes", slot)
	case src.ID == "" || dst.ID == "":
		c.t.Fatalf("redistest: migration of slot %d: not cluster nodes", slot)
	}
}

// String describes the cluster for log messages.
func (c *Cluster) String() string {
	var b strings.Builder
	for i, s := range c.servers {
		if i > 0 {
			b.WriteByte(' ')
		}
		fmt.Fprintf(&b, "%s=%s", s.Name, s.Addr)
	}
	return b.String()
}
