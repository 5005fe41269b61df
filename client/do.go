package client

import (
	"context"
	"strings"
	"time"

	"github.com/slotrouter/slotrouter/router"
	"github.com/slotrouter/slotrouter/slots"
)

// Do runs one command, args being the command name and its arguments
// (strings, []byte, integers, floats, bools), and returns its reply. The
// command goes to the node that owns its keys (every key must hash to one
// slot); key-less commands go to any master.
//
// Redirects, failovers and resharding are handled inside Do, bounded by ctx:
// Do never returns later than ctx's deadline. A command that surely did not
// run is retried whatever it is; one that may have run (the connection died
// after it was sent) is retried only if it is read-only or ctx was made by
// Idempotent.
func (c *Client) Do(ctx context.Context, args ...any) Result {
	cmd, err := encodeCommand(args, deadlineOf(ctx))
	if err != nil {
		return errResult(err)
	}
	res := c.process(ctx, cmd, "")
	cmd.release()
	return res
}

// DoOn runs a command on the node at addr, without routing or redirects:
// for per-node commands such as INFO, SCAN, KEYS or DBSIZE.
func (c *Client) DoOn(ctx context.Context, addr string, args ...any) Result {
	cmd, err := encodeCommand(args, deadlineOf(ctx))
	if err != nil {
		return errResult(err)
	}
	res := c.process(ctx, cmd, addr)
	cmd.release()
	return res
}

// process runs one command through the attempt state machine (attempt.go):
// the router decides, the node carries. Commands that are not one node's
// business branch off first: connection-state commands are refused,
// cross-slot multi-key commands are split (multikey.go), key-less commands
// the server wants everywhere fan out (fanout.go); their legs come back
// through run.
func (c *Client) process(ctx context.Context, cmd *command, pinned string) Result {
	if c.closed.Load() {
		return errResult(ErrClosed)
	}
	if ctx == nil {
		return errResult(ErrNilContext)
	}
	t := attempt{pinned: pinned}
	info, err := c.classify(ctx, cmd, &t)
	if info != nil {
		if use := connStateUse(info); use != "" {
			return errResult(connStateError(info, use))
		}
	}
	if err != nil {
		if info != nil {
			return c.crossSlot(ctx, cmd, info, err, pinned)
		}
		return errResult(err)
	}
	if info != nil && !t.a.HasSlot && pinned == "" && info.Flags&(slots.AllShards|slots.AllNodes) != 0 {
		return c.fanout(ctx, cmd, info)
	}
	return c.run(ctx, cmd, &t, nil)
}

// attemptLoop runs cmd with a routing decision made by the caller: a
// fan-out leg's Attempt carries a slot of its shard, so failover rules
// re-route it like any command.
func (c *Client) attemptLoop(ctx context.Context, cmd *command, a router.Attempt, blocking bool, pinned string, served *string) Result {
	t := attempt{c: c, a: a, pinned: pinned, blocking: blocking}
	return c.run(ctx, cmd, &t, served)
}

// run drives t until the router is done with it. served, when not nil, is
// set to the last node asked (whose reply or failure is returned): a scan
// needs to know whose cursor it holds.
func (c *Client) run(ctx context.Context, cmd *command, t *attempt, served *string) Result {
	for {
		if t.wait {
			if final, ok := t.backoff(ctx); !ok {
				return final
			}
		}
		addr, final, ok := t.target(ctx)
		if !ok {
			if t.wait {
				continue
			}
			return final
		}
		if served != nil {
			*served = addr
		}
		res, err := c.send(ctx, t, cmd, addr)
		if final, done := t.judge(ctx, res, err); done {
			return final
		}
	}
}

// send is one try of cmd on addr: blocking commands on a dedicated
// connection, retry-safe ones to a suspect node watched for a new owner,
// the rest on the node's shared pipe.
func (c *Client) send(ctx context.Context, t *attempt, cmd *command, addr string) (Result, error) {
	if t.cache != nil {
		return t.cache.send(ctx, t, cmd, addr)
	}
	n := c.node(addr)
	if t.blocking {
		return n.doDedicated(ctx, cmd)
	}
	if t.pinned == "" && c.router.IsSuspect(addr) && t.retrySafe(ctx) {
		wctx, stop := c.watch(ctx, addr, []router.Attempt{{Slot: t.a.Slot, HasSlot: t.a.HasSlot}})
		res, err := n.do(wctx, cmd, false)
		stop()
		return res, ownerChanged(ctx, wctx, addr, err)
	}
	return n.do(ctx, cmd, t.a.Asking())
}

// learnTimeout bounds one COMMAND INFO that learns an unknown command. It
// runs for every caller that needs the answer, under none of their contexts.
const learnTimeout = 5 * time.Second

// lookup finds the command in the key table, learning unknown (module)
// commands from the server's COMMAND INFO once. The question is asked once
// for all callers (singleflight) under the client's own context, and each
// caller waits for the answer only as long as its own ctx allows: nil then,
// with ctx.Err() set.
func (c *Client) lookup(ctx context.Context, args [][]byte) *slots.Command {
	t := c.cmds.Load()
	if info := t.Lookup(args); info != nil {
		return info
	}
	// A known command with an unknown subcommand: the server will refuse
	// it, so asking it about the command teaches nothing.
	if len(args) > 1 && t.Lookup(args[:1]) != nil {
		return nil
	}
	name := strings.ToLower(string(args[0]))
	if _, ok := c.unknown.Load(name); ok {
		return nil
	}
	ch := c.learn.DoChan(name, func() (any, error) { return c.learnCommand(name) })
	select {
	case r := <-ch:
		info, _ := r.Val.(*slots.Command)
		if info != nil {
			return info
		}
		return c.cmds.Load().Lookup(args)
	case <-ctx.Done():
		return nil
	}
}

// learnCommand asks the server about name and adds what it says to the
// table; a name the server does not know either is remembered, so every
// call of a typo does not cost a round trip.
func (c *Client) learnCommand(name string) (any, error) {
	if info := c.cmds.Load().Lookup([][]byte{[]byte(name)}); info != nil {
		return info, nil
	}
	ctx, cancel := context.WithTimeout(c.life, learnTimeout)
	defer cancel()
	reply, err := c.Do(ctx, "COMMAND", "INFO", name).Slice()
	if err != nil {
		return nil, err // maybe transient: ask again next time
	}
	cmds, err := slots.ParseCommandInfo(reply)
	if err != nil || len(cmds) == 0 {
		c.unknown.Store(name, struct{}{})
		return nil, err
	}
	for {
		old := c.cmds.Load()
		if c.cmds.CompareAndSwap(old, old.With(cmds...)) {
			break
		}
	}
	return nil, nil // each caller looks its own args up in the new table
}
