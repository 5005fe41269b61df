package client

import (
	"context"
	"errors"

	"github.com/slotrouter/slotrouter/slots"
)

// A pipeline holds the same commands Do takes, so a multi-key command across
// slots and a command for every node work there too. A split command's
// per-slot shares join the pipeline's own round (one write per node); a
// fan-out command runs after the round, on every node its tips name, since
// its legs are not the pipeline's to route.

// composite is a queued command that is not sent as written.
type composite struct {
	idx   int
	plan  *splitPlan // split, its shares queued from index first on
	first int
	info  *slots.Command // fan-out
	res   Result         // refused: the reply to give
}

// errComposite stands in p.errs for a composite command, so the round
// leaves it alone.
var errComposite = errors.New("slotrouter: composite command")

// expand queues the shares of split commands and marks composites; out
// grows by one slot per share.
func (p *Pipeline) expand(ctx context.Context, out []Result) ([]composite, []Result) {
	if p.shares {
		return nil, out
	}
	var comps []composite
	n := len(p.cmds)
	for i := range n {
		if p.errs[i] != nil {
			continue
		}
		cmd := p.cmds[i]
		info := p.c.lookup(ctx, cmd.args)
		if info == nil || info.Flags&(slots.AllShards|slots.AllNodes|slots.MultiShard) == 0 || connStateUse(info) != "" {
			continue // connection-state commands (WAIT has all_shards tips) are refused by Exec
		}
		_, hasKeys, err := info.Slot(cmd.args)
		switch {
		case errors.Is(err, slots.ErrCrossSlot):
			plan, res := p.c.planSplit(info, cmd.args)
			cp := composite{idx: i, plan: plan, first: len(p.cmds), res: res}
			if plan != nil {
				for j := range plan.groups {
					p.queue(plan.encode(j))
				}
			}
			comps = append(comps, cp)
		case err == nil && !hasKeys && info.Flags&(slots.AllShards|slots.AllNodes) != 0:
			comps = append(comps, composite{idx: i, info: info})
		default:
			continue
		}
		p.errs[i] = errComposite
	}
	if extra := len(p.cmds) - n; extra > 0 {
		out = append(out, make([]Result, extra)...)
	}
	return comps, out
}

// finishComposites merges the shares and runs the fan-outs, and drops the
// shares from out.
func (p *Pipeline) finishComposites(ctx context.Context, comps []composite, out []Result) []Result {
	if len(comps) == 0 {
		return out
	}
	for _, cp := range comps {
		switch {
		case cp.plan != nil:
			out[cp.idx] = cp.plan.merge(out[cp.first : cp.first+len(cp.plan.groups)])
		case cp.info != nil:
			out[cp.idx] = p.c.fanout(ctx, p.cmds[cp.idx], cp.info)
		default:
			out[cp.idx] = cp.res
		}
	}
	for _, cp := range comps {
		if cp.plan != nil {
			// The first split's shares were queued right after the
			// caller's last command.
			return out[:cp.first]
		}
	}
	return out
}

// queue appends an encoded command.
func (p *Pipeline) queue(cmd *command) {
	if p.pipeState == nil {
		p.pipeState = pipeStatePool.Get().(*pipeState)
	}
	p.cmds = append(p.cmds, cmd)
	p.errs = append(p.errs, nil)
}
