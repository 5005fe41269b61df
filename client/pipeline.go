package client

import (
	"context"
	"errors"
	"sync"

	"github.com/slotrouter/slotrouter/router"
	"github.com/slotrouter/slotrouter/slots"
)

// Pipeline queues commands for any slots and sends them together: each
// node's share goes in one write, the nodes run in parallel, and results
// come back in the order the commands were queued. A MOVED, ASK or failure
// affects only the commands that got it: only those are sent again.
//
// A Pipeline is not safe for concurrent use; it may be reused after Exec.
type Pipeline struct {
	c *Client
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
	wait   bool

	// in flight between start and finish
	pipe *pipe
	call *call
	err  error
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
	idx      int
	a        router.Attempt
	addr     string
	asking   bool
	blocking bool
}

// Exec sends every queued command and returns their results in order; the
// pipeline is then empty. Each Result carries its own error; Exec's error is
// the first of them, for callers that only need to know whether all
// succeeded.
func (p *Pipeline) Exec(ctx context.Context) ([]Result, error) {
	if ctx == nil {
		return nil, ErrNilContext
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
	if cap(p.todo) < len(p.cmds) {
		p.todo = make([]pending, len(p.cmds))
	}
	all := p.todo[:len(p.cmds)]
	todo := p.ptrs[:0]
	for i, cmd := range p.cmds {
		if p.errs[i] != nil {
			out[i] = errResult(p.errs[i])
			continue
		}
		pd := &all[i]
		*pd = pending{idx: i}
		if info := p.c.lookup(ctx, cmd.args); info != nil {
			slot, hasKeys, err := info.Slot(cmd.args)
			if err != nil {
				out[i] = errResult(err)
				continue
			}
			pd.a.Slot, pd.a.HasSlot = slot, hasKeys
			pd.a.ReadOnly = info.Flags&slots.Readonly != 0
			pd.blocking = info.IsBlocking(cmd.args)
		}
		pd.a.Idempotent = isIdempotent(ctx)
		todo = append(todo, pd)
	}
	defer func() {
		clear(all) // drop router state and addresses until the next Exec
		clear(p.ptrs[:cap(p.ptrs)])
	}()
	var waitState router.Attempt
	for len(todo) > 0 {
		groups := p.groups[:0]
		var retry []*pending
		for _, pd := range todo {
			addr, err := p.c.router.Target(&pd.a)
			if err != nil {
				if p.c.router.OnFailure(ctx, &pd.a, "", err, false).Action == router.Done {
					out[pd.idx] = errResult(err)
					continue
				}
				retry = append(retry, pd) // retry after the wait
				continue
			}
			pd.addr, pd.asking = addr, pd.a.Asking()
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
				g.addr, g.batch, g.wait = addr, g.batch[:0], false
				g.again = g.again[:0]
			}
			g.batch = append(g.batch, pd)
		}
		p.groups = groups
		backoff := len(retry) > 0
		// Every node's share is sent before any reply is awaited: the
		// nodes work in parallel without a goroutine per node.
		for _, g := range groups {
			p.start(ctx, g, out)
		}
		for _, g := range groups {
			p.finish(ctx, g, out)
		}
		for _, g := range groups {
			retry = append(retry, g.again...)
			backoff = backoff || g.wait
			clear(g.batch)
			clear(g.plain)
			clear(g.cmds)
			clear(g.res)
			g.addr = ""
		}
		todo = retry
		if len(todo) > 0 && backoff {
			if err := p.c.router.Wait(ctx, &waitState); err != nil {
				for _, pd := range todo {
					last := out[pd.idx].Err()
					if last == nil {
						last = err
					}
					out[pd.idx] = errResult(&RetryError{Attempts: waitState.Redirects() + 1, Err: err, Last: last})
				}
				break
			}
		}
	}
	p.ptrs = todo[:0]
	for _, r := range out {
		if err := r.Err(); err != nil && !errors.Is(err, ErrNil) {
			return out, err
		}
	}
	return out, nil
}

// start sends one node's share: blocking commands at once on dedicated
// connections, the rest as one batch on the node's pipe, left in flight.
func (p *Pipeline) start(ctx context.Context, g *group, out []Result) {
	n := p.c.node(g.addr)
	g.cmds, g.asking, g.plain = g.cmds[:0], g.asking[:0], g.plain[:0]
	g.pipe, g.call, g.err = nil, nil, nil
	for _, pd := range g.batch {
		if pd.blocking {
			res, err := n.doDedicated(ctx, p.cmds[pd.idx])
			if a, w := p.judge(ctx, pd, res, err, out); a {
				g.again, g.wait = append(g.again, pd), g.wait || w
			}
			continue
		}
		g.plain = append(g.plain, pd)
		g.cmds = append(g.cmds, p.cmds[pd.idx])
		g.asking = append(g.asking, pd.asking)
	}
	if len(g.plain) == 0 {
		return
	}
	// As node.doMulti: one more try on a fresh pipe when the one picked
	// broke before the batch left.
	for attempt := 0; ; attempt++ {
		pp, err := n.pipe(ctx)
		if err != nil {
			g.err = err
			return
		}
		c, err := pp.startMulti(ctx, g.cmds, g.asking)
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

// finish collects one node's replies and sorts each into done or g.again.
func (p *Pipeline) finish(ctx context.Context, g *group, out []Result) {
	if len(g.plain) == 0 {
		return
	}
	if cap(g.res) < len(g.plain) {
		g.res = make([]Result, len(g.plain))
	}
	res := g.res[:len(g.plain)]
	err := g.err
	if g.call != nil {
		err = g.pipe.finishMulti(ctx, g.call, g.cmds, res)
		g.pipe, g.call = nil, nil
		if err != nil && retryable(err) {
			// The pipe broke before the batch was written: it surely did
			// not run, so it goes once more on a fresh pipe.
			err = p.c.node(g.addr).doMulti(ctx, g.cmds, res, g.asking)
		}
	} else {
		for i := range res {
			res[i] = errResult(err)
		}
	}
	for i, pd := range g.plain {
		if a, w := p.judge(ctx, pd, res[i], err, out); a {
			g.again, g.wait = append(g.again, pd), g.wait || w
		}
	}
}

// judge applies the router's policy to one command's outcome; it reports
// whether the command must be sent again and whether to back off first.
func (p *Pipeline) judge(ctx context.Context, pd *pending, res Result, err error, out []Result) (again, wait bool) {
	if err != nil {
		var ce *ConnError
		sent := !errors.As(err, &ce) || ce.Sent
		if permanent(err) {
			out[pd.idx] = errResult(err)
			return false, false
		}
		dec := p.c.router.OnFailure(ctx, &pd.a, pd.addr, err, sent)
		if dec.Action == router.Done {
			out[pd.idx] = errResult(dec.Err)
			return false, false
		}
		out[pd.idx] = errResult(err)
		return true, dec.Backoff
	}
	msg, isErr := errorText(res)
	if !isErr || !mayRedirect(msg) {
		out[pd.idx] = res
		return false, false
	}
	dec := p.c.router.OnReply(&pd.a, pd.addr, msg)
	if dec.Action == router.Done {
		if dec.Err != nil {
			res = errResult(dec.Err)
		}
		out[pd.idx] = res
		return false, false
	}
	if dec.Redial {
		p.c.deploy.nameMoved(pd.addr) // resolve the name afresh for the redial
		p.c.dropNode(pd.addr)
	}
	out[pd.idx] = res
	return true, dec.Backoff
}
