package client

import (
	"context"
	"errors"
	"math/rand/v2"
	"sync"

	"github.com/slotrouter/slotrouter/router"
	"github.com/slotrouter/slotrouter/slots"
)

// Fan-out: a key-less command whose request_policy tip is all_shards goes
// to every master, all_nodes to every master and replica, and the replies
// are merged as its response_policy tip says (notes §7.4). The tips come
// from the command table, so a module command learnt at run time follows
// its own tips the same way.
//
// Each master's leg is an ordinary routed attempt (see router.Leg): the
// redirect, failover and deadline rules of any command apply to it, and a
// leg never outlives the caller's context.

// NodeResult is one node's share of a command sent to several nodes.
type NodeResult struct {
	Addr   string
	Master bool
	// Keys are the keys this node was sent, for a multi-key command split
	// by slot; nil otherwise.
	Keys   []string
	Result Result
}

// fanout runs a key-less all_shards/all_nodes command on its nodes and
// merges the replies.
func (c *Client) fanout(ctx context.Context, cmd *command, info *slots.Command) Result {
	legs := c.legsFor(info.Flags&slots.AllNodes != 0, info.Flags&slots.Readonly != 0)
	rs := c.runLegs(ctx, cmd, legs, info.IsBlocking(cmd.args))
	return merge(string(cmd.name()), info, rs)
}

// legsFor plans a fan-out. Master legs of a read-only command may be served
// by replicas when the ReadPolicy says so; an all_nodes command must reach
// the masters themselves, its replicas having their own legs.
func (c *Client) legsFor(allNodes, readOnly bool) []router.Leg {
	var legs []router.Leg
	if allNodes {
		legs = c.router.Nodes()
	} else {
		legs = c.router.Masters()
	}
	for i := range legs {
		if allNodes {
			legs[i].Attempt.Idempotent = readOnly
		} else {
			legs[i].Attempt.ReadOnly = readOnly
		}
	}
	return legs
}

// runLegs sends cmd on every leg at once and waits for all of them; each
// leg returns by ctx's deadline, so the whole call does too.
func (c *Client) runLegs(ctx context.Context, cmd *command, legs []router.Leg, blocking bool) []NodeResult {
	out := make([]NodeResult, len(legs))
	var wg sync.WaitGroup
	for i := range legs {
		run := func() { out[i] = c.runLeg(ctx, cmd, legs[i], blocking) }
		if i == len(legs)-1 {
			run() // the caller's goroutine takes the last leg
			continue
		}
		wg.Go(run)
	}
	wg.Wait()
	return out
}

// runLeg sends cmd on one leg through the attempt loop.
func (c *Client) runLeg(ctx context.Context, cmd *command, leg router.Leg, blocking bool) NodeResult {
	pinned := ""
	if leg.Pinned {
		pinned = leg.Addr
	}
	var served string
	res := c.attemptLoop(ctx, cmd, leg.Attempt, blocking, pinned, &served)
	if served == "" {
		served = leg.Addr // never got as far as a node
	}
	return NodeResult{Addr: served, Master: leg.Master, Result: res}
}

// merge combines the legs' replies by the command's response policy.
func merge(name string, info *slots.Command, rs []NodeResult) Result {
	var ok, bad []NodeResult
	for _, r := range rs {
		if r.Result.failed() {
			bad = append(bad, r)
		} else {
			ok = append(ok, r)
		}
	}
	if info.Response == slots.ResponseOneSucceeded {
		if len(ok) > 0 {
			return ok[0].Result
		}
		return errResult(&FanoutError{Command: name, Failed: bad})
	}
	if len(bad) > 0 {
		return errResult(&FanoutError{Command: name, Failed: bad, Succeeded: ok})
	}
	if len(ok) == 0 {
		return errResult(&FanoutError{Command: name}) // no node to ask
	}
	switch info.Response {
	case slots.ResponseAllSucceeded:
		return ok[0].Result
	case slots.ResponseAggSum, slots.ResponseAggMin, slots.ResponseAggMax:
		return mergeByPolicy(info.Response, ok)
	case slots.ResponseAggLogicalAnd, slots.ResponseAggLogicalOr:
		return logical(info.Response == slots.ResponseAggLogicalAnd, ok)
	case slots.ResponseSpecial:
		return perNode(ok)
	}
	// No response policy (KEYS, RANDOMKEY, SLOWLOG GET): arrays from the
	// masters are one key space and concatenate; anything from every node
	// (replicas repeat their masters) is per node; a single value is any
	// node's, as if the whole deployment had answered.
	if info.Flags&slots.AllNodes != 0 {
		return perNode(ok)
	}
	if ok[0].Result.isAggregate() {
		parts := make([]Result, len(ok))
		for i, r := range ok {
			parts[i] = r.Result
		}
		return concat(parts)
	}
	start := rand.IntN(len(ok))
	for i := range ok {
		if r := ok[(start+i)%len(ok)].Result; r.kind != KindNil {
			return r
		}
	}
	return ok[start].Result
}

// mergeByPolicy sums, or takes the minimum or maximum of, integer replies.
func mergeByPolicy(p slots.ResponsePolicy, ok []NodeResult) Result {
	var acc int64
	for i, r := range ok {
		n, err := r.Result.Int64()
		if err != nil {
			return errResult(err)
		}
		switch {
		case i == 0, p == slots.ResponseAggMin && n < acc, p == slots.ResponseAggMax && n > acc:
			acc = n
		case p == slots.ResponseAggSum:
			acc += n
		}
	}
	return Result{kind: KindInt, num: acc}
}

// logical ANDs or ORs 0/1 replies, element by element for arrays (SCRIPT
// EXISTS answers one flag per script).
func logical(and bool, ok []NodeResult) Result {
	first := ok[0].Result
	if !first.isAggregate() {
		acc := and
		for _, r := range ok {
			b, err := r.Result.Bool()
			if err != nil {
				return errResult(err)
			}
			acc = combine(and, acc, b)
		}
		return intResult(acc)
	}
	flags := make([]bool, first.Len())
	for i := range flags {
		flags[i] = and
	}
	for _, r := range ok {
		if !r.Result.isAggregate() || r.Result.Len() != len(flags) {
			return errResult(&ReplyTypeError{Want: "array of flags", Got: r.Result.kind})
		}
		for i, e := range r.Result.All() {
			b, err := e.Bool()
			if err != nil {
				return errResult(err)
			}
			flags[i] = combine(and, flags[i], b)
		}
	}
	arr := make([]Result, len(flags))
	for i, f := range flags {
		arr[i] = intResult(f)
	}
	return Result{kind: KindArray, arr: arr}
}

func combine(and, acc, b bool) bool {
	if and {
		return acc && b
	}
	return acc || b
}

func intResult(b bool) Result {
	if b {
		return Result{kind: KindInt, num: 1}
	}
	return Result{kind: KindInt}
}

// perNode keeps every node's reply: alternating address and reply (an
// address's num marks a master, for Nodes).
func perNode(rs []NodeResult) Result {
	arr := make([]Result, 0, 2*len(rs))
	for _, r := range rs {
		addr := Result{kind: KindBulk, str: r.Addr}
		if r.Master {
			addr.num = 1
		}
		arr = append(arr, addr, r.Result)
	}
	return Result{kind: KindNodes, arr: arr}
}

// Nodes returns the node-by-node replies of a fan-out without a merge rule
// (INFO, MEMORY STATS, LATENCY, SLOWLOG GET, and everything DoMasters and
// DoNodes return). When some node failed, the error is a *FanoutError and
// the replies are those of the nodes that answered.
func (r Result) Nodes() ([]NodeResult, error) {
	var fe *FanoutError
	if r.kind == KindInvalid && errors.As(r.err, &fe) {
		return fe.Succeeded, r.err
	}
	if r.kind != KindNodes {
		return nil, r.typeErr("per-node replies")
	}
	out := make([]NodeResult, 0, len(r.arr)/2)
	for i := 0; i+1 < len(r.arr); i += 2 {
		out = append(out, NodeResult{Addr: r.arr[i].str, Master: r.arr[i].num == 1, Result: r.arr[i+1]})
	}
	return out, nil
}

// DoMasters runs a command on every master (one per shard, following each
// shard through a failover) and returns every reply unmerged: for commands
// whose replies only make sense per node, such as CONFIG GET or CLIENT LIST.
// Read the replies with Result.Nodes.
func (c *Client) DoMasters(ctx context.Context, args ...any) Result {
	return c.doEach(ctx, false, args)
}

// DoNodes is DoMasters for every node, masters and replicas.
func (c *Client) DoNodes(ctx context.Context, args ...any) Result {
	return c.doEach(ctx, true, args)
}

// legCommand encodes and looks up a command for a call that picks its own
// nodes; the caller releases cmd.
func (c *Client) legCommand(ctx context.Context, args []any) (cmd *command, readOnly, blocking bool, err error) {
	if c.closed.Load() {
		return nil, false, false, ErrClosed
	}
	if cmd, err = newCommand(args); err != nil {
		return nil, false, false, err
	}
	info := c.lookup(ctx, cmd.args)
	return cmd, info != nil && info.Flags&slots.Readonly != 0, info.IsBlocking(cmd.args), nil
}

func (c *Client) doEach(ctx context.Context, all bool, args []any) Result {
	cmd, readOnly, blocking, err := c.legCommand(ctx, args)
	if err != nil {
		return errResult(err)
	}
	defer cmd.release()
	rs := c.runLegs(ctx, cmd, c.legsFor(all, readOnly), blocking)
	var ok, bad []NodeResult
	for _, r := range rs {
		if r.Result.kind == KindInvalid {
			bad = append(bad, r)
		} else {
			ok = append(ok, r) // an error reply is that node's answer
		}
	}
	if len(bad) > 0 {
		return errResult(&FanoutError{Command: string(cmd.name()), Failed: bad, Succeeded: ok})
	}
	return perNode(ok)
}

// Leg is one node a ForEachMaster or ForEachNode callback runs for.
type Leg struct {
	c   *Client
	leg router.Leg
}

// Addr is the node's address when the callback started.
func (l Leg) Addr() string { return l.leg.Addr }

// Master reports whether the node is a master.
func (l Leg) Master() bool { return l.leg.Master }

// Do runs a command on the leg's node, with the redirect, failover and
// deadline rules of Client.Do: a master's leg follows its shard to the
// promoted replica; a replica's leg goes to that replica only.
func (l Leg) Do(ctx context.Context, args ...any) Result {
	cmd, readOnly, blocking, err := l.c.legCommand(ctx, args)
	if err != nil {
		return errResult(err)
	}
	defer cmd.release()
	leg := l.leg
	leg.Attempt.Idempotent = readOnly
	return l.c.runLeg(ctx, cmd, leg, blocking).Result
}

// ForEachMaster calls fn for every master (one per shard) concurrently and
// waits for all. When some fail, the error is a *FanoutError whose Failed
// legs carry fn's errors.
func (c *Client) ForEachMaster(ctx context.Context, fn func(context.Context, Leg) error) error {
	return c.forEach(ctx, c.router.Masters(), fn)
}

// ForEachNode is ForEachMaster for every node, masters and replicas.
func (c *Client) ForEachNode(ctx context.Context, fn func(context.Context, Leg) error) error {
	return c.forEach(ctx, c.router.Nodes(), fn)
}

func (c *Client) forEach(ctx context.Context, legs []router.Leg, fn func(context.Context, Leg) error) error {
	if c.closed.Load() {
		return ErrClosed
	}
	errs := make([]error, len(legs))
	var wg sync.WaitGroup
	for i, leg := range legs {
		wg.Go(func() { errs[i] = fn(ctx, Leg{c: c, leg: leg}) })
	}
	wg.Wait()
	fe := &FanoutError{Command: "ForEach"}
	for i, err := range errs {
		nr := NodeResult{Addr: legs[i].Addr, Master: legs[i].Master}
		if err != nil {
			nr.Result = errResult(err)
			fe.Failed = append(fe.Failed, nr)
		} else {
			fe.Succeeded = append(fe.Succeeded, nr)
		}
	}
	if len(fe.Failed) > 0 {
		return fe
	}
	return nil
}
