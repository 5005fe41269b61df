package clustertest

import (
	"bufio"
	"errors"
	"net"
	"time"

	"github.com/tidwall/resp"

	"github.com/slotrouter/slotrouter/internal/respw"
)

// out accumulates RESP2 replies in memory. Commands write here while the
// node's data lock is held; the bytes reach the socket only after the lock
// is released, so no lock is ever held during network I/O.
type out struct{ b []byte }

func (o *out) simple(s string)     { o.b = respw.Simple(o.b, s) }
func (o *out) err(s string)        { o.b = respw.Error(o.b, s) }
func (o *out) ok()                 { o.b = respw.Simple(o.b, "OK") }
func (o *out) null()               { o.b = respw.Header(o.b, '$', -1) }
func (o *out) nullArray()          { o.b = respw.Header(o.b, '*', -1) }
func (o *out) int(n int64)         { o.b = respw.Int(o.b, n) }
func (o *out) array(n int)         { o.b = respw.Header(o.b, '*', n) }
func (o *out) bulk(v []byte)       { o.b = respw.Bulk(o.b, v) }
func (o *out) bulkString(v string) { o.b = respw.Bulk(o.b, v) }

// bulkOrNull writes a null bulk for a nil slice (missing value).
func (o *out) bulkOrNull(v []byte) {
	if v == nil {
		o.null()
		return
	}
	o.bulk(v)
}

// conn is one client connection and its per-connection state.
type conn struct {
	nc       net.Conn
	br       *bufio.Reader
	rd       *resp.Reader
	id       int64
	authed   bool
	readonly bool
	asking   bool
	name     string
	out      out
	multi    *multiState // open MULTI (multi.go)
	watch    *watchState // watched keys; guarded by the node's mu
}

// listen binds the node's port ("" picks a free one; a restart reuses the
// old port so the cluster map stays valid).
func (n *Node) listen(addr string) error {
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	n.life.Lock()
	n.ln = ln
	if a := ln.Addr().String(); a != n.addr {
		// Only the first start changes the address: a restart rebinds the
		// same one, and other nodes read addr and port (CLUSTER NODES)
		// without this lock, so rewriting them would race.
		n.addr, n.port = a, ln.Addr().(*net.TCPAddr).Port
	}
	n.conns = map[*conn]struct{}{}
	n.gen = make(chan struct{})
	n.dead = false
	n.life.Unlock()
	return nil
}

// serve starts the accept loop for the current incarnation.
func (n *Node) serve() {
	n.life.Lock()
	ln, gen := n.ln, n.gen
	n.life.Unlock()
	n.wg.Add(1)
	go func() {
		defer n.wg.Done()
		for {
			nc, err := ln.Accept()
			if err != nil {
				var ne net.Error
				if errors.As(err, &ne) && ne.Timeout() {
					continue
				}
				return
			}
			c := &conn{nc: nc, id: n.c.ids.Add(1), authed: n.c.opts.Password == ""}
			// resp.NewReader keeps a *bufio.Reader of default size as
			// is, so br.Buffered() tells us whether a pipeline is
			// still pending and the flush can wait.
			c.br = bufio.NewReader(nc)
			c.rd = resp.NewReader(c.br)
			n.life.Lock()
			if n.gen != gen {
				n.life.Unlock()
				_ = nc.Close()
				return
			}
			n.conns[c] = struct{}{}
			n.wg.Add(1)
			n.life.Unlock()
			go n.handle(c, gen)
		}
	}()
}

// isDead reports whether n was killed and not restarted since.
func (n *Node) isDead() bool {
	n.life.Lock()
	defer n.life.Unlock()
	return n.dead
}

// shutdown kills the current incarnation: listener and every connection.
func (n *Node) shutdown() {
	n.life.Lock()
	defer n.life.Unlock()
	if n.dead {
		return
	}
	n.dead = true
	if n.ln != nil {
		_ = n.ln.Close()
	}
	for c := range n.conns {
		_ = c.nc.Close()
	}
	close(n.gen)
	if n.hang != nil {
		close(n.hang)
		n.hang = nil
	}
}

func (n *Node) handle(c *conn, gen chan struct{}) {
	defer n.wg.Done()
	defer func() {
		_ = c.nc.Close()
		n.mu.Lock()
		c.unwatch()
		n.mu.Unlock()
		n.life.Lock()
		delete(n.conns, c)
		n.life.Unlock()
	}()
	var args [][]byte
	for {
		v, _, _, err := c.rd.ReadMultiBulk()
		if err != nil {
			if isProtocolError(err) {
				c.out.err("ERR " + err.Error())
				_, _ = c.nc.Write(c.out.b)
			}
			return
		}
		vals := v.Array()
		if len(vals) == 0 {
			continue
		}
		args = args[:0]
		for _, a := range vals {
			args = append(args, a.Bytes())
		}
		if !n.waitHang(gen) {
			return
		}
		quit := n.exec(c, args)
		if d := time.Duration(n.latency.Load()); d > 0 {
			t := time.NewTimer(d)
			select {
			case <-t.C:
			case <-gen:
				t.Stop()
				return
			}
		}
		if quit || c.br.Buffered() == 0 || len(c.out.b) > 64<<10 {
			if _, err := c.nc.Write(c.out.b); err != nil {
				return
			}
			if cap(c.out.b) > 1<<20 {
				c.out.b = nil
			} else {
				c.out.b = c.out.b[:0]
			}
		}
		if quit {
			return
		}
	}
}

func isProtocolError(err error) bool {
	s := err.Error()
	return len(s) > 15 && s[:15] == "Protocol error:"
}

// waitHang blocks while the node is hung, as a SIGSTOPped process would.
// It reports false when the node died meanwhile.
func (n *Node) waitHang(gen chan struct{}) bool {
	for {
		n.life.Lock()
		h := n.hang
		n.life.Unlock()
		if h == nil {
			select {
			case <-gen:
				return false
			default:
				return true
			}
		}
		select {
		case <-h:
		case <-gen:
			return false
		}
	}
}
