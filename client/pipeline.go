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
	c    *Client
	cmds []*command
	errs []error // encoding errors, per command
}

// Pipeline returns an empty pipeline.
func (c *Client) Pipeline() *Pipeline { return &Pipeline{c: c} }

// Do queues a command and returns its index in Exec's results.
func (p *Pipeline) Do(args ...any) int {
	cmd, err := newCommand(args)
	p.cmds = append(p.cmds, cmd)
	p.errs = append(p.errs, err)
	return len(p.cmds) - 1
}

// Len is the number of queued commands.
func (p *Pipeline) Len() int { return len(p.cmds) }

// Reset drops the queued commands.
func (p *Pipeline) Reset() {
	for i, cmd := range p.cmds {
		if cmd != nil {
			cmd.release()
		}
		p.cmds[i] = nil
	}
	p.cmds, p.errs = p.cmds[:0], p.errs[:0]
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
	defer p.Reset()
	out := make([]Result, len(p.cmds))
	if p.c.closed.Load() {
		for i := range out {
			out[i] = errResult(ErrClosed)
		}
		return out, ErrClosed
	}
	todo := make([]*pending, 0, len(p.cmds))
	for i, cmd := range p.cmds {
		if p.errs[i] != nil {
			out[i] = errResult(p.errs[i])
			continue
		}
		pd := &pending{idx: i}
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
	var waitState router.Attempt
	for len(todo) > 0 {
		groups := map[string][]*pending{}
		var order []string
		for _, pd := range todo {
			addr, err := p.c.router.Target(&pd.a)
			if err != nil {
				if p.c.router.OnFailure(ctx, &pd.a, "", err, false).Action == router.Done {
					out[pd.idx] = errResult(err)
					continue
				}
				groups[""] = append(groups[""], pd) // retry after the wait
				continue
			}
			pd.addr, pd.asking = addr, pd.a.Asking()
			if _, ok := groups[addr]; !ok {
				order = append(order, addr)
			}
			groups[addr] = append(groups[addr], pd)
		}
		retry := groups[""]
		var mu sync.Mutex
		backoff := len(retry) > 0
		var wg sync.WaitGroup
		for _, addr := range order {
			batch := groups[addr]
			wg.Add(1)
			run := func() {
				defer wg.Done()
				again, wait := p.send(ctx, addr, batch, out)
				mu.Lock()
				retry = append(retry, again...)
				backoff = backoff || wait
				mu.Unlock()
			}
			if len(order) == 1 {
				run()
			} else {
				go run()
			}
		}
		wg.Wait()
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
	for _, r := range out {
		if err := r.Err(); err != nil && !errors.Is(err, ErrNil) {
			return out, err
		}
	}
	return out, nil
}

// send runs one node's share and sorts each reply into done or again.
func (p *Pipeline) send(ctx context.Context, addr string, batch []*pending, out []Result) (again []*pending, wait bool) {
	n := p.c.node(addr)
	cmds := make([]*command, 0, len(batch))
	asking := make([]bool, 0, len(batch))
	var plain []*pending
	for _, pd := range batch {
		if pd.blocking {
			res, err := n.doDedicated(ctx, p.cmds[pd.idx])
			if a, w := p.judge(ctx, pd, res, err, out); a {
				again, wait = append(again, pd), wait || w
			}
			continue
		}
		plain = append(plain, pd)
		cmds = append(cmds, p.cmds[pd.idx])
		asking = append(asking, pd.asking)
	}
	if len(plain) == 0 {
		return again, wait
	}
	res := make([]Result, len(plain))
	err := n.doMulti(ctx, cmds, res, asking)
	for i, pd := range plain {
		if a, w := p.judge(ctx, pd, res[i], err, out); a {
			again, wait = append(again, pd), wait || w
		}
	}
	return again, wait
}

// judge applies the router's policy to one command's outcome; it reports
// whether the command must be sent again and whether to back off first.
func (p *Pipeline) judge(ctx context.Context, pd *pending, res Result, err error, out []Result) (again, wait bool) {
	if err != nil {
		var ce *ConnError
		sent := !errors.As(err, &ce) || ce.Sent
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
