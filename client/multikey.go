package client

import (
	"context"
	"errors"
	"slices"
	"strconv"
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
// DoOn's pinned commands are never split: they go nowhere but addr.
func (c *Client) crossSlot(ctx context.Context, cmd *command, info *slots.Command, err error, pinned string) Result {
	if !errors.Is(err, slots.ErrCrossSlot) {
		return errResult(err)
	}
	if pinned != "" {
		return crossSlotReply("")
	}
	plan, res := c.planSplit(info, cmd.args)
	if plan == nil {
		return res
	}
	p := &Pipeline{c: c, shares: true}
	for i := range plan.groups {
		p.queue(plan.encode(i))
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

// splitPlan is a multi-key command cut into one command per slot. It reads
// the caller's argument bytes, so it lives no longer than the command.
type splitPlan struct {
	c    *Client
	info *slots.Command
	args [][]byte
	// The caller's keys are units of step arguments from pos[u], between
	// args[:pos[0]] and the suffix args[end:].
	pos       []int
	step, end int
	// order lists the units slot by slot, each slot's in the caller's
	// order; groups[i] is order[lo:hi].
	order  []unitSlot
	groups []slotGroup
}

type unitSlot struct {
	slot slots.Slot
	unit int32
}

type slotGroup struct {
	slot   slots.Slot
	lo, hi int
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
	p := &splitPlan{c: c, info: info, args: args, pos: pos, step: step, end: end}
	p.order = make([]unitSlot, len(pos))
	for u, at := range pos {
		p.order[u] = unitSlot{slots.Of(args[at]), int32(u)}
	}
	// By slot, each slot's keys in the caller's order: units are distinct,
	// so an unstable sort on both is the stable sort on slot, and faster.
	slices.SortFunc(p.order, func(a, b unitSlot) int {
		if a.slot != b.slot {
			return int(a.slot) - int(b.slot)
		}
		return int(a.unit - b.unit)
	})
	for i := 0; i < len(p.order); {
		j := i + 1
		for j < len(p.order) && p.order[j].slot == p.order[i].slot {
			j++
		}
		p.groups = append(p.groups, slotGroup{p.order[i].slot, i, j})
		i = j
	}
	return p, Result{}
}

// encode builds group i's command straight from the caller's bytes.
func (p *splitPlan) encode(i int) *command {
	g := p.groups[i]
	prefix, suffix := p.args[:p.pos[0]], p.args[p.end:]
	argc := len(prefix) + (g.hi-g.lo)*p.step + len(suffix)
	c := commandPool.Get().(*command)
	b := append(c.buf[:0], '*')
	b = strconv.AppendInt(b, int64(argc), 10)
	b = append(b, '\r', '\n')
	offs := c.offs[:0]
	add := func(a []byte) {
		b = append(b, '$')
		b = strconv.AppendInt(b, int64(len(a)), 10)
		b = append(b, '\r', '\n')
		offs = append(offs, len(b), len(a))
		b = append(b, a...)
		b = append(b, '\r', '\n')
	}
	for _, a := range prefix {
		add(a)
	}
	for _, us := range p.order[g.lo:g.hi] {
		at := p.pos[us.unit]
		for _, a := range p.args[at : at+p.step] {
			add(a)
		}
	}
	for _, a := range suffix {
		add(a)
	}
	c.seal(b, offs)
	return c
}

// merge combines the per-slot replies: by the response policy, or, for a
// command without one (MGET), element by element back in the caller's key
// order.
func (p *splitPlan) merge(results []Result) Result {
	name := string(p.args[0])
	if p.info.Response != slots.ResponseDefault {
		return merge(name, p.info, p.nodeResults(results))
	}
	out := make([]Result, len(p.pos))
	for i, g := range p.groups {
		r := results[i]
		if r.failed() || !r.isAggregate() || r.Len() != g.hi-g.lo {
			return p.partial(name, results)
		}
		for j, e := range r.All() {
			out[p.order[g.lo+j].unit] = e
		}
	}
	return Result{kind: KindArray, arr: out}
}

// partial is the error of a split some of whose shares failed.
func (p *splitPlan) partial(name string, results []Result) Result {
	var ok, bad []NodeResult
	for i, nr := range p.nodeResults(results) {
		r := results[i]
		switch {
		case r.failed():
		case p.info.Response == slots.ResponseDefault && (!r.isAggregate() || r.Len() != len(nr.Keys)):
			nr.Result = errResult(&ReplyTypeError{Want: "one reply per key", Got: r.kind})
		default:
			ok = append(ok, nr)
			continue
		}
		bad = append(bad, nr)
	}
	return errResult(&FanoutError{Command: name, Failed: bad, Succeeded: ok})
}

// nodeResults names each share's node and keys.
func (p *splitPlan) nodeResults(results []Result) []NodeResult {
	rs := make([]NodeResult, len(p.groups))
	for i, g := range p.groups {
		keys := make([]string, 0, g.hi-g.lo)
		for _, us := range p.order[g.lo:g.hi] {
			keys = append(keys, string(p.args[p.pos[us.unit]]))
		}
		rs[i] = NodeResult{Addr: p.addrOf(g, results[i]), Master: true, Keys: keys, Result: results[i]}
	}
	return rs
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
