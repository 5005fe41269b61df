package client

import (
	"context"
	"errors"
	"strings"

	"github.com/slotrouter/slotrouter/router"
	"github.com/slotrouter/slotrouter/slots"
)

// Multi-key commands across slots (request_policy:multi_shard: MGET, MSET,
// DEL, UNLINK, EXISTS, TOUCH, and module commands with the same tip) are
// split into one command per slot, sent as one pipeline (one write per
// node, each node's share in parallel), and merged in the caller's key
// order. The split is not atomic: each slot's share runs on its own, and a
// failure leaves the others done. Keys that share a slot still go as one
// command, exactly as the caller wrote it.

// crossSlot handles a command whose keys hash to different slots.
func (c *Client) crossSlot(ctx context.Context, cmd *command, info *slots.Command, err error) Result {
	if !errors.Is(err, slots.ErrCrossSlot) {
		return errResult(err)
	}
	plan, res := c.planSplit(info, cmd.args)
	if plan == nil {
		return res
	}
	p := c.Pipeline()
	for _, g := range plan.groups {
		p.Do(g.args...)
	}
	results, _ := p.Exec(ctx)
	return plan.merge(results)
}

// crossSlotReply is the server's CROSSSLOT error, as if a node had sent it.
func crossSlotReply(msg string) Result {
	if msg == "" {
		msg = slots.ErrCrossSlot.Error()
	}
	return Result{kind: KindError, err: &Error{msg: msg}}
}

// splitPlan is a multi-key command cut into one command per slot.
type splitPlan struct {
	c      *Client
	name   string
	info   *slots.Command
	units  int // keys (key-value pairs for MSET) in the caller's command
	groups []slotGroup
}

// slotGroup is the share of one slot.
type slotGroup struct {
	slot  slots.Slot
	units []int // indexes of the caller's keys, in order
	keys  []string
	args  []any
}

// planSplit cuts args by slot, or returns the error reply when the command
// must not or cannot be split.
func (c *Client) planSplit(info *slots.Command, args [][]byte) (*splitPlan, Result) {
	if info.Flags&slots.MultiShard == 0 || c.opts.RefuseCrossSlot {
		return nil, crossSlotReply("")
	}
	if info.Response == slots.ResponseAggMin { // MSETNX: all or nothing cannot span nodes
		return nil, crossSlotReply("CROSSSLOT Keys in request don't hash to the same slot (slotrouter does not split " +
			strings.ToUpper(info.Name) + ": it must set all keys or none, which only one slot can promise)")
	}
	pos := info.AppendRoutingKeys(nil, args)
	if len(pos) < 2 {
		return nil, crossSlotReply("")
	}
	// Keys (with their values) must form one regular run, the shape every
	// multi_shard command has: prefix, units of step arguments, suffix.
	step := pos[1] - pos[0]
	for i := range pos {
		if pos[i] != pos[0]+i*step {
			return nil, crossSlotReply("")
		}
	}
	end := pos[len(pos)-1] + step
	if step < 1 || end > len(args) {
		return nil, crossSlotReply("")
	}
	prefix, suffix := args[:pos[0]], args[end:]
	plan := &splitPlan{c: c, name: string(args[0]), info: info, units: len(pos)}
	bySlot := map[slots.Slot]int{}
	for u, p := range pos {
		s := slots.Of(args[p])
		gi, ok := bySlot[s]
		if !ok {
			gi = len(plan.groups)
			bySlot[s] = gi
			g := slotGroup{slot: s}
			for _, a := range prefix {
				g.args = append(g.args, a)
			}
			plan.groups = append(plan.groups, g)
		}
		g := &plan.groups[gi]
		g.units = append(g.units, u)
		g.keys = append(g.keys, string(args[p]))
		for _, a := range args[p : p+step] {
			g.args = append(g.args, a)
		}
	}
	for i := range plan.groups {
		for _, a := range suffix {
			plan.groups[i].args = append(plan.groups[i].args, a)
		}
	}
	return plan, Result{}
}

// merge combines the per-slot replies: by the response policy, or, for a
// command without one (MGET), element by element back in the caller's key
// order.
func (p *splitPlan) merge(results []Result) Result {
	rs := make([]NodeResult, len(p.groups))
	for i, g := range p.groups {
		rs[i] = NodeResult{Addr: p.addrOf(g, results[i]), Master: true, Keys: g.keys, Result: results[i]}
	}
	if p.info.Response != slots.ResponseDefault {
		return merge(p.name, p.info, rs)
	}
	out := make([]Result, p.units)
	var ok, bad []NodeResult
	for i, g := range p.groups {
		r := results[i]
		if r.kind == KindError || r.kind == KindInvalid || !r.isAggregate() || len(r.arr) != len(g.units) {
			if !r.failed() {
				rs[i].Result = errResult(&ReplyTypeError{Want: "one reply per key", Got: r.kind})
			}
			bad = append(bad, rs[i])
			continue
		}
		ok = append(ok, rs[i])
		for j, u := range g.units {
			out[u] = r.arr[j]
		}
	}
	if len(bad) > 0 {
		return errResult(&FanoutError{Command: p.name, Failed: bad, Succeeded: ok})
	}
	return Result{kind: KindArray, arr: out}
}

// failed reports whether r carries no usable reply.
func (r Result) failed() bool { return r.kind == KindError || r.kind == KindInvalid }

// addrOf names the node a slot's share went to: the one a routing error
// names, else the slot's owner now.
func (p *splitPlan) addrOf(g slotGroup, r Result) string {
	var ne *router.NodeError
	if r.err != nil && errors.As(r.err, &ne) {
		return ne.Addr
	}
	a := router.Attempt{Slot: g.slot, HasSlot: true}
	addr, _ := p.c.router.Target(&a)
	return addr
}
