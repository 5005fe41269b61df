package clustertest

import (
	"context"
	"fmt"

	"github.com/slotrouter/slotrouter/slots"
)

func (c *Cluster) checkSlot(slot slots.Slot) error {
	if int(slot) >= slots.Count {
		return fmt.Errorf("%w: %d", ErrInvalidSlot, slot)
	}
	return nil
}

// checkOpenSlot is the precondition of the calls that act on one slot.
func (c *Cluster) checkOpenSlot(slot slots.Slot) error {
	if err := c.checkOpen(); err != nil {
		return err
	}
	return c.checkSlot(slot)
}

// BeginMigration opens slot for migration from its owner to the master to,
// like CLUSTER SETSLOT IMPORTING on the target and MIGRATING on the
// source. From then on the source answers ASK for missing keys and
// TRYAGAIN for mixed multi-key requests, and the target serves ASKING
// clients.
func (c *Cluster) BeginMigration(slot slots.Slot, to *Node) error {
	c.ctrl.Lock()
	defer c.ctrl.Unlock()
	if err := c.checkOpenSlot(slot); err != nil {
		return err
	}
	if _, err := c.node(to); err != nil {
		return err
	}
	t := c.topo.Load()
	from := int(t.owner[slot])
	switch {
	case from < 0:
		return fmt.Errorf("%w: slot %d has no owner", ErrBadState, slot)
	case from == to.idx:
		return fmt.Errorf("%w: %s already owns slot %d", ErrBadState, to, slot)
	case t.nodes[to.idx].role != RoleMaster:
		return fmt.Errorf("%w: %s is not a master", ErrBadState, to)
	}
	if _, busy := t.migr[slot]; busy {
		return fmt.Errorf("%w: slot %d is already migrating", ErrBadState, slot)
	}
	c.update(func(t *topo) { t.migr[slot] = migration{from: from, to: to.idx} })
	return nil
}

// lockPair locks two nodes' data in index order, so concurrent migrations
// cannot deadlock.
func lockPair(a, b *Node) func() {
	if a.idx > b.idx {
		a, b = b, a
	}
	a.mu.Lock()
	b.mu.Lock()
	return func() { b.mu.Unlock(); a.mu.Unlock() }
}

// moveKeys moves up to limit keys (all when limit < 0) of slot; both data
// locks are held.
func moveKeys(src, dst *Node, slot slots.Slot, limit int) int {
	keys := src.db.slotKeys(slot, limit)
	for _, k := range keys {
		e := src.db.keys[k]
		src.db.del(k)
		dst.db.put(k, e)
	}
	if len(keys) > 0 {
		args := [][]byte{[]byte("MIGRATE")}
		for _, k := range keys {
			args = append(args, []byte(k))
		}
		src.replicate(args)
		dst.replicate(args)
	}
	return len(keys)
}

// MoveKeys moves up to n keys of a migrating slot to the target (like
// MIGRATE ... KEYS), all of them when n < 0, and reports how many it
// moved; 0 means none are left.
func (c *Cluster) MoveKeys(slot slots.Slot, n int) (int, error) {
	c.ctrl.Lock()
	defer c.ctrl.Unlock()
	if err := c.checkOpenSlot(slot); err != nil {
		return 0, err
	}
	m, ok := c.topo.Load().migr[slot]
	if !ok {
		return 0, fmt.Errorf("%w: slot %d is not migrating", ErrBadState, slot)
	}
	if n < 0 {
		// All: moving none and reporting 0 would read as "none left".
		n = -1
	}
	src, dst := c.nodes[m.from], c.nodes[m.to]
	unlock := lockPair(src, dst)
	defer unlock()
	return moveKeys(src, dst, slot, n), nil
}

// FinishMigration moves any keys left and assigns slot to the target
// (CLUSTER SETSLOT NODE), which bumps its config epoch. Clients then get
// MOVED from the source.
func (c *Cluster) FinishMigration(slot slots.Slot) error {
	c.ctrl.Lock()
	defer c.ctrl.Unlock()
	if err := c.checkOpenSlot(slot); err != nil {
		return err
	}
	m, ok := c.topo.Load().migr[slot]
	if !ok {
		return fmt.Errorf("%w: slot %d is not migrating", ErrBadState, slot)
	}
	src, dst := c.nodes[m.from], c.nodes[m.to]
	unlock := lockPair(src, dst)
	defer unlock()
	moveKeys(src, dst, slot, -1)
	c.update(func(t *topo) {
		delete(t.migr, slot)
		t.owner[slot] = int16(dst.idx)
		t.currentEpoch++
		t.nodes[dst.idx].epoch = t.currentEpoch
	})
	return nil
}

// MigrateSlot runs a whole migration: BeginMigration, MoveKeys in batches
// of 100, FinishMigration.
func (c *Cluster) MigrateSlot(ctx context.Context, slot slots.Slot, to *Node) error {
	if err := c.BeginMigration(slot, to); err != nil {
		return err
	}
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		moved, err := c.MoveKeys(slot, 100)
		if err != nil {
			return err
		}
		if moved == 0 {
			break
		}
	}
	return c.FinishMigration(slot)
}

// DelSlots removes the owner of the given slots, like CLUSTER DELSLOTS on
// every node. Keyed commands for them then answer "CLUSTERDOWN Hash slot
// not served" and, with full coverage required, every other keyed command
// "CLUSTERDOWN The cluster is down" until AddSlots gives them back.
func (c *Cluster) DelSlots(ss ...slots.Slot) error {
	c.ctrl.Lock()
	defer c.ctrl.Unlock()
	if err := c.checkOpen(); err != nil {
		return err
	}
	for _, s := range ss {
		if err := c.checkSlot(s); err != nil {
			return err
		}
	}
	c.update(func(t *topo) {
		for _, s := range ss {
			t.owner[s] = -1
			delete(t.migr, s)
		}
	})
	return nil
}

// AddSlots assigns unowned slots to the master to (CLUSTER ADDSLOTS).
func (c *Cluster) AddSlots(to *Node, ss ...slots.Slot) error {
	c.ctrl.Lock()
	defer c.ctrl.Unlock()
	if err := c.checkNode(to); err != nil {
		return err
	}
	t := c.topo.Load()
	if t.nodes[to.idx].role != RoleMaster {
		return fmt.Errorf("%w: %s is not a master", ErrBadState, to)
	}
	for _, s := range ss {
		if err := c.checkSlot(s); err != nil {
			return err
		}
		if t.owner[s] >= 0 {
			return fmt.Errorf("%w: slot %d is already owned", ErrBadState, s)
		}
	}
	c.update(func(t *topo) {
		for _, s := range ss {
			t.owner[s] = int16(to.idx)
		}
	})
	return nil
}
