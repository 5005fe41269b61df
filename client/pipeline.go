package client

import (
	"context"
	"errors"
	"sync"

	"github.com/slotrouter/slotrouter/router"
)

// Pipeline queues commands for any slots and sends them together: each
// node's share goes in one write, the nodes run in parallel, and results
// come back in the order the commands were queued. A MOVED, ASK or failure
// affects only the commands that got it: only those are sent again.
//
// A Pipeline is not safe for concurrent use; it may be reused after Exec.
type Pipeline struct {
	c  *Client
	tx uint8 // txNone, or a transaction's pipeline (tx.go)
	// shares: the per-slot commands of one split command, which need no
	// expanding (pipeline_expand.go).
	shares bool
	// *pipeState is borrowed from a pool on the first Do and returned by
	// Exec or Reset, so even a Pipeline made for one batch allocates little
	// beyond its results.
	*pipeState
}

type pipeState struct {
	cmds []*command
	errs []error // encoding errors, per command

	// Exec scratch.
	todo   []pending
	ptrs   []*pending
	groups []*group
}

var pipeStatePool = sync.Pool{New: func() any { return new(pipeState) }}

// maxPooledPipeline: the state of bigger pipelines is dropped, not pooled.
const maxPooledPipeline = 4096

// group is one node's share of a round.
type group struct {
	addr   string
	batch  []*pending
	cmds   []*command
	asking []bool
	plain  []*pending
	res    []Result
	again  []*pending

	// in flight between start and finish
	pipe *pipe
	call *call
	err  error
	wctx context.Context // ctx, or a watch of it when the node is suspect
	stop func()          // ends the watch
	// the share run on a dedicated connection (it holds a blocking command)
	dedicated chan error
	dres      []Result
}

// Pipeline returns an empty pipeline.
func (c *Client) Pipeline() *Pipeline { return &Pipeline{c: c} }

// Do queues a command and returns its index in Exec's results.
func (p *Pipeline) Do(args ...any) int {
	if p.pipeState == nil {
		p.pipeState = pipeStatePool.Get().(*pipeState)
	}
	cmd, err := newCommand(args)
	p.cmds = append(p.cmds, cmd)
	p.errs = append(p.errs, err)
	return len(p.cmds) - 1
}

// Len is the number of queued commands.
func (p *Pipeline) Len() int {
	if p.pipeState == nil {
		return 0
	}
	return len(p.cmds)
}

// Reset drops the queued commands.
func (p *Pipeline) Reset() {
	st := p.pipeState
	if st == nil {
		return
	}
	p.pipeState = nil
	for i, cmd := range st.cmds {
		if cmd != nil {
			cmd.release()
		}
		st.cmds[i] = nil
	}
	clear(st.errs)
	st.cmds, st.errs = st.cmds[:0], st.errs[:0]
	if cap(st.cmds) <= maxPooledPipeline && cap(st.todo) <= maxPooledPipeline {
		pipeStatePool.Put(st)
	}
}

// pending is one queued command still looking for its reply.
type pending struct {
	idx    int
	t      attempt
	asking bool
}

// Exec sends every queued command and returns their results in order; the
// pipeline is then empty. Each Result carries its own error; Exec's error is
// the first of them, for callers that only need to know whether all
// succeeded.
//
// Each command drives its own attempt (attempt.go), the same state machine
// as Do, in rounds: every node's share of a round is sent before any reply
// is awaited, and a round that must back off does so once for all.
func (p *Pipeline) Exec(ctx context.Context) ([]Result, error) {
	if ctx == nil {
		return nil, ErrNilContext
	}
	if p.tx != txNone {
		return p.execTx(ctx)
	}
	if p.pipeState == nil {
		return []Result{}, nil
	}
	defer p.Reset()
	out := make([]Result, len(p.cmds))
	if p.c.closed.Load() {
		for i := range out {
			out[i] = errResult(ErrClosed)
		}
		return out, ErrClosed
	}
	var comps []composite
	comps, out = p.expand(ctx, out) // pipeline_expand.go
	if cap(p.todo) < len(p.cmds) {
		p.todo = make([]pending, len(p.cmds))
	}
	all := p.todo[:len(p.cmds)]
	todo := p.ptrs[:0]
	idempotent := isIdempotent(ctx)
	for i, cmd := range p.cmds {
		if p.errs[i] != nil {
			out[i] = errResult(p.errs[i])
			continue
		}
		pd := &all[i]
		*pd = pending{idx: i}
		info, err := p.c.classify(ctx, cmd, &pd.t)
		if info != nil {
			if use := connStateUse(info); use != "" {
				out[i] = errResult(connStateError(info, use))
				continue
			}
		}
		if err != nil {
			out[i] = errResult(err)
			continue
		}
		pd.t.a.Idempotent = idempotent
		todo = append(todo, pd)
	}
	defer func() {
		clear(all) // drop router state and addresses until the next Exec
		clear(p.ptrs[:cap(p.ptrs)])
	}()
	var round router.Attempt // the back-off state shared by the rounds
	for len(todo) > 0 {
		groups := p.groups[:0]
		var retry []*pending
		for _, pd := range todo {
			addr, final, ok := pd.t.target(ctx)
			if !ok {
				if pd.t.wait {
					retry = append(retry, pd) // retry after the round's back-off
				} else {
					out[pd.idx] = final
				}
				continue
			}
			pd.asking = pd.t.a.Asking()
			var g *group
			for _, x := range groups { // a handful of nodes: a scan beats a map
				if x.addr == addr {
					g = x
					break
				}
			}
			if g == nil {
				if len(groups) < cap(groups) {
					groups = groups[:len(groups)+1]
					g = groups[len(groups)-1]
				}
				if g == nil {
					g = &group{}
					groups = append(groups, g)
				}
				g.addr, g.batch = addr, g.batch[:0]
				g.again = g.again[:0]
			}
			g.batch = append(g.batch, pd)
		}
		p.groups = groups
		for _, g := range groups {
			p.start(ctx, g)
		}
		for _, g := range groups {
			p.finish(ctx, g, out)
		}
		for _, g := range groups {
			retry = append(retry, g.again...)
			clear(g.batch)
			clear(g.plain)
			clear(g.cmds)
			clear(g.res)
			g.addr = ""
		}
		todo = retry
		backoff := false
		for _, pd := range todo {
			backoff = backoff || pd.t.wait
			pd.t.wait = false
		}
		if len(todo) > 0 && backoff {
			if err := p.c.router.Wait(ctx, &round); err != nil {
				for _, pd := range todo {
					out[pd.idx] = pd.t.giveUp(err)
				}
				break
			}
		}
	}
	p.ptrs = todo[:0]
	out = p.finishComposites(ctx, comps, out)
	for _, r := range out {
		if err := r.Err(); err != nil && !errors.Is(err, ErrNil) {
			return out, err
		}
	}
	return out, nil
}

// start sends one node's share as one batch on the node's pipe, left in
// flight; a share holding a blocking command goes whole, in queue order, to
// one dedicated connection instead (see startDedicated). A share for a
// suspect node whose commands may all run twice is watched, as Do's are,
// and abandoned when a new view routes it elsewhere.
func (p *Pipeline) start(ctx context.Context, g *group) {
	n := p.c.node(g.addr)
	g.cmds, g.asking, g.plain = g.cmds[:0], g.asking[:0], g.plain[:0]
	g.pipe, g.call, g.err, g.dedicated = nil, nil, nil, nil
	g.wctx, g.stop = ctx, nil
	safe := true
	for _, pd := range g.batch {
		if pd.t.blocking {
			p.startDedicated(ctx, g, n)
			return
		}
		safe = safe && pd.t.retrySafe(ctx)
		g.plain = append(g.plain, pd)
		g.cmds = append(g.cmds, p.cmds[pd.idx])
		g.asking = append(g.asking, pd.asking)
	}
	if safe && p.c.router.IsSuspect(g.addr) {
		keys := make([]router.Attempt, len(g.plain))
		for i, pd := range g.plain {
			keys[i] = router.Attempt{Slot: pd.t.a.Slot, HasSlot: pd.t.a.HasSlot}
		}
		g.wctx, g.stop = p.c.watch(ctx, g.addr, keys)
	}
	// As node.doMulti: one more try on a fresh pipe when the one picked
	// broke before the batch left.
	for attempt := 0; ; attempt++ {
		pp, err := n.pipe(g.wctx)
		if err != nil {
			g.err = err
			return
		}
		c, err := pp.startMulti(g.wctx, g.cmds, g.asking)
		if err == nil {
			g.pipe, g.call = pp, c
			return
		}
		if attempt > 0 || !retryable(err) {
			g.err = err
			return
		}
	}
}

// startDedicated runs g's whole share on one dedicated connection, in
// queue order: a blocking command must see the writes queued before it (a
// pipeline [DEL q, RPUSH q x, BLPOP q 1] pops x), and it would hold a shared
// pipe for every other caller. The share runs on a goroutine so the other
// nodes' shares go out meanwhile; finish collects it.
func (p *Pipeline) startDedicated(ctx context.Context, g *group, n *node) {
	cmds := make([]*command, 0, len(g.batch)+1)
	var asking *command
	for _, pd := range g.batch {
		if pd.asking {
			if asking == nil {
				asking, _ = newCommand([]any{"ASKING"})
			}
			cmds = append(cmds, asking)
		}
		cmds = append(cmds, p.cmds[pd.idx])
	}
	g.dres = make([]Result, len(cmds))
	g.dedicated = make(chan error, 1)
	go func(res []Result, done chan<- error) {
		err := n.doDedicatedMulti(ctx, cmds, res)
		asking.release()
		done <- err
	}(g.dres, g.dedicated)
}

// finishDedicated sorts the replies of a share run by startDedicated.
func (p *Pipeline) finishDedicated(ctx context.Context, g *group, out []Result) {
	err := <-g.dedicated
	j := 0
	for _, pd := range g.batch {
		var ack Result
		if pd.asking {
			ack = g.dres[j]
			j++
		}
		res := g.dres[j]
		j++
		if ack.kind == KindError && err == nil && isRedirect(res) {
			res = ack // bounced because ASKING was refused: the refusal is the cause
		}
		p.judge(ctx, g, pd, res, err, out)
	}
	g.dedicated, g.dres = nil, nil
}

// finish collects one node's replies and judges each.
func (p *Pipeline) finish(ctx context.Context, g *group, out []Result) {
	if g.dedicated != nil {
		p.finishDedicated(ctx, g, out)
		return
	}
	if len(g.plain) == 0 {
		return
	}
	if cap(g.res) < len(g.plain) {
		g.res = make([]Result, len(g.plain))
	}
	res := g.res[:len(g.plain)]
	err := g.err
	if g.call != nil {
		err = g.pipe.finishMulti(g.wctx, g.call, g.cmds, res)
		g.pipe, g.call = nil, nil
		if err != nil && retryable(err) {
			// The pipe broke before the batch was written: it surely did
			// not run, so it goes once more on a fresh pipe.
			err = p.c.node(g.addr).doMulti(g.wctx, g.cmds, res, g.asking)
		}
	}
	if g.stop != nil {
		g.stop()
		err = ownerChanged(ctx, g.wctx, g.addr, err)
		g.wctx, g.stop = nil, nil
	}
	for i, pd := range g.plain {
		p.judge(ctx, g, pd, res[i], err, out)
	}
}

// judge runs one command's outcome through its attempt: a final result
// goes to out, anything else into the next round.
func (p *Pipeline) judge(ctx context.Context, g *group, pd *pending, res Result, err error, out []Result) {
	if final, done := pd.t.judge(ctx, res, err); done {
		out[pd.idx] = final
		return
	}
	g.again = append(g.again, pd)
}
