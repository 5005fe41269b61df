package client

import (
	"context"
	"errors"
	"os"
	"time"
)

// dedicated is a connection checked out of a node's pool for one owner: a
// Conn session, a Watch transaction, a subscription. Nobody else writes on
// it while it is held, so commands that change the connection's state
// (WATCH, MULTI, WAIT after the owner's writes) are safe on it. It is made
// by the same dial and setup as every shared connection (AUTH, protocol,
// database, client name), so Options apply to it too.
//
// release puts it back in the pool only when it is in the state it was
// dialled in: after a failure, a cancelled call, or any command that changed
// that state (dirty), it is closed instead, so the pool never hands out a
// connection in MULTI, with keys watched, or subscribed.
type dedicated struct {
	n     *node
	dc    *dedicatedConn
	dirty bool // the connection's state may differ from a fresh one's
	dead  bool // closed: a failure or a cancelled read left it unusable
	err   error
}

// dedicate checks a connection to addr out of its node's pool, dialling one
// if none is idle. Errors are the dial's (*ConnError with Sent false).
func (c *Client) dedicate(ctx context.Context, addr string) (*dedicated, error) {
	n := c.node(addr)
	dc, err := n.getDedicated(ctx)
	if err != nil {
		return nil, err
	}
	return &dedicated{n: n, dc: dc}, nil
}

// do writes cmds in one go and reads one reply per command into out. On a
// transport failure every out carries it and the connection is dead.
func (d *dedicated) do(ctx context.Context, cmds []*command, out []Result) error {
	if d.dead {
		for i := range cmds {
			out[i] = errResult(d.err)
		}
		return d.err
	}
	ok, err := d.dc.do(ctx, d.n.addr, cmds, out)
	if !ok {
		d.kill(err)
		if err != nil {
			for i := range cmds {
				out[i] = errResult(err)
			}
		}
	}
	return err
}

// receive returns the next message that answers no request: a RESP3 push
// set aside while replies were read, else the next reply read from the
// connection (MONITOR lines, messages on a subscribed connection). ctx bounds the wait; a wait cut short kills the connection
// (a reply may be half read).
func (d *dedicated) receive(ctx context.Context) (Result, error) {
	if len(d.dc.pushes) > 0 {
		r := d.dc.pushes[0]
		d.dc.pushes = d.dc.pushes[1:]
		return r, nil
	}
	if d.dead {
		return errResult(d.err), d.err
	}
	dl, hasDL := ctx.Deadline()
	_ = d.dc.conn.SetReadDeadline(dl)
	stop := context.AfterFunc(ctx, func() { _ = d.dc.conn.SetReadDeadline(aLongTimeAgo) })
	r, err := d.dc.rd.readReply()
	cancelled := !stop()
	if err == nil {
		return r, nil // even one that beat a cancellation: it is whole
	}
	if cancelled || (hasDL && errors.Is(err, os.ErrDeadlineExceeded)) {
		if cerr := ctx.Err(); cerr != nil {
			err = cerr
		} else {
			err = context.DeadlineExceeded
		}
	} else {
		err = &ConnError{Addr: d.n.addr, Op: "read", Sent: true, Err: err}
	}
	d.kill(err)
	return errResult(err), err
}

func (d *dedicated) kill(err error) {
	if d.dead {
		return
	}
	d.dead = true
	if err == nil {
		err = &ConnError{Addr: d.n.addr, Op: "closed", Err: errors.New("connection left mid-reply")}
	}
	d.err = err
	_ = d.dc.conn.Close()
}

// release returns a clean connection to the pool and closes any other.
func (d *dedicated) release() {
	if d.dead {
		return
	}
	if d.dirty {
		d.kill(&ConnError{Addr: d.n.addr, Op: "closed", Err: errReleased})
		return
	}
	d.dead, d.err = true, &ConnError{Addr: d.n.addr, Op: "closed", Err: errReleased}
	_ = d.dc.conn.SetDeadline(time.Time{})
	clear(d.dc.pushes)
	d.dc.pushes = d.dc.pushes[:0]
	d.n.putDedicated(d.dc)
}

var errReleased = errors.New("slotrouter: dedicated connection released")
