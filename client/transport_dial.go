package client

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"sync/atomic"
	"time"
)

// connConfig is how every connection to a node is made. Zero values mean the
// documented defaults.
type connConfig struct {
	// Dial opens the TCP connection; default net.Dialer with keep-alive.
	Dial func(ctx context.Context, network, addr string) (net.Conn, error)
	// TLS, when set, wraps each connection; an empty ServerName becomes the
	// node's host so every node gets its own SNI.
	TLS *tls.Config
	// Username and Password are sent with AUTH on every new connection
	// (password only: AUTH <password>).
	Username, Password string
	// ClientName is set with CLIENT SETNAME.
	ClientName string
	// Protocol 3 sends HELLO 3; DB, when not 0, is SELECTed.
	Protocol, DB int
	// ReadOnly sends READONLY so a replica serves reads for its master's slots.
	ReadOnly bool
	// DialTimeout bounds dial, TLS handshake and setup; default 5 s.
	DialTimeout time.Duration
	// HealthTimeout: a pipe whose oldest outstanding request got no reply
	// for this long is closed (and a write blocked this long fails); default 2 s.
	HealthTimeout time.Duration
	// Conns is the number of multiplexed pipes per node; default 1.
	Conns int
	// MaxInflight and MaxInflightBytes bound what one node has queued or
	// in flight (Options.MaxInflight, Options.MaxInflightBytes).
	MaxInflight, MaxInflightBytes int64
	// MaxReply caps one reply's memory (Options.MaxReplyBytes); default
	// DefaultMaxReplyBytes, negative for none.
	MaxReply int64
	// DedicatedIdle is how many idle dedicated connections (blocking
	// commands) a node keeps; default 4.
	DedicatedIdle int
	// Logger receives connection events; default discards.
	Logger *slog.Logger
	// Resolve, when set, turns a host name into addresses at dial time
	// (see dns.go); every returned address is tried in turn. IP literals
	// never reach it.
	Resolve func(ctx context.Context, host string) ([]string, error)
	// Tracking, when set, is a CLIENT TRACKING command run at setup (after
	// HELLO 3), and OnPush gets every push the connection's reader meets,
	// on that reader, before the next reply: the cache's invalidations.
	Tracking []any
	OnPush   func(*pipe, Result)
	// Standalone, once true, stops READONLY from being sent: the nodes
	// turned out to be plain servers (Sentinel, role probes), which refuse
	// it and serve reads on replicas without it. A pointer so the flag can
	// flip while dials read it.
	Standalone *atomic.Bool
}

const (
	defaultDialTimeout   = 5 * time.Second
	defaultHealthTimeout = 2 * time.Second
	defaultDedicatedIdle = 4
	// dialBackoff: after a failed dial, callers within this window get the
	// cached error at once instead of hammering a dead node.
	dialBackoff = 25 * time.Millisecond
)

func (c *connConfig) dialTimeout() time.Duration {
	if c.DialTimeout > 0 {
		return c.DialTimeout
	}
	return defaultDialTimeout
}

func (c *connConfig) healthTimeout() time.Duration {
	if c.HealthTimeout > 0 {
		return c.HealthTimeout
	}
	return defaultHealthTimeout
}

func (c *connConfig) maxReply() int64 {
	switch {
	case c.MaxReply < 0:
		return 0 // no cap
	case c.MaxReply == 0:
		return DefaultMaxReplyBytes
	}
	return c.MaxReply
}

func (c *connConfig) dialer() func(ctx context.Context, network, addr string) (net.Conn, error) {
	if c.Dial != nil {
		return c.Dial
	}
	d := &net.Dialer{KeepAlive: 30 * time.Second}
	return d.DialContext
}

func (c *connConfig) conns() int { return max(c.Conns, 1) }

func (c *connConfig) dedicatedIdle() int {
	if c.DedicatedIdle > 0 {
		return c.DedicatedIdle
	}
	return defaultDedicatedIdle
}

var discardLogger = slog.New(slog.DiscardHandler)

func (c *connConfig) logger() *slog.Logger {
	if c.Logger != nil {
		return c.Logger
	}
	return discardLogger
}

// aLongTimeAgo is a deadline that makes pending I/O fail at once.
var aLongTimeAgo = time.Unix(1, 0)

// dialConn dials addr and runs the connection setup (AUTH, HELLO 3, SELECT,
// READONLY, CLIENT SETNAME) in one round trip. ctx bounds all of it. Failures are *ConnError
// with Sent false; a refused setup command's *Error is inside.
func dialConn(ctx context.Context, addr string, cfg *connConfig) (net.Conn, *respReader, error) {
	ctx, cancel := context.WithTimeout(ctx, cfg.dialTimeout())
	defer cancel()
	conn, err := dialResolved(ctx, cfg.dialer(), addr, cfg.Resolve)
	if err != nil {
		return nil, nil, &ConnError{Addr: addr, Op: "dial", Err: err}
	}
	if cfg.TLS != nil {
		tc := cfg.TLS
		if tc.ServerName == "" {
			tc = tc.Clone()
			if host, _, err := net.SplitHostPort(addr); err == nil {
				tc.ServerName = host
			} else {
				tc.ServerName = addr
			}
		}
		tconn := tls.Client(conn, tc)
		if err := handshake(ctx, tconn, addr, cfg); err != nil {
			_ = conn.Close()
			return nil, nil, &ConnError{Addr: addr, Op: "dial", Err: err}
		}
		conn = tconn
	}
	rd := newRespReader(conn)
	rd.limit = cfg.maxReply()
	if err := setupConn(ctx, conn, rd, cfg); err != nil {
		_ = conn.Close()
		if cfg.TLS == nil && closedBeforeReply(err, rd) && speaksTLS(ctx, addr, cfg) {
			err = errors.Join(ErrProtocolMismatch, errors.New("the server speaks TLS; Options.TLS is nil"), err)
		}
		return nil, nil, &ConnError{Addr: addr, Op: "setup", Err: err}
	}
	return conn, rd, nil
}

func setupConn(ctx context.Context, conn net.Conn, rd *respReader, cfg *connConfig) error {
	var cmds [][]any
	if cfg.Password != "" || cfg.Username != "" {
		if cfg.Username != "" {
			cmds = append(cmds, []any{"AUTH", cfg.Username, cfg.Password})
		} else {
			cmds = append(cmds, []any{"AUTH", cfg.Password})
		}
	}
	if cfg.Protocol == 3 {
		cmds = append(cmds, []any{"HELLO", 3})
	}
	if cfg.Tracking != nil {
		cmds = append(cmds, cfg.Tracking)
	}
	if cfg.DB != 0 {
		cmds = append(cmds, []any{"SELECT", cfg.DB})
	}
	if cfg.ReadOnly && (cfg.Standalone == nil || !cfg.Standalone.Load()) {
		cmds = append(cmds, []any{"READONLY"})
	}
	if cfg.ClientName != "" {
		cmds = append(cmds, []any{"CLIENT", "SETNAME", cfg.ClientName})
	}
	sniff := len(cmds) == 0 && cfg.TLS == nil
	if sniff {
		// One round trip at dial time, so a TLS port (which resets a
		// plaintext client) is recognised here, where it can be told
		// apart. Any reply, even an error, proves the port speaks RESP.
		cmds = append(cmds, []any{"PING"})
	}
	if len(cmds) == 0 {
		return nil
	}
	var buf []byte
	for _, args := range cmds {
		c, err := newCommand(args)
		if err != nil {
			return err
		}
		buf = append(buf, c.buf...)
		c.release()
	}
	if dl, ok := ctx.Deadline(); ok {
		_ = conn.SetDeadline(dl)
		defer conn.SetDeadline(time.Time{})
	}
	if _, err := conn.Write(buf); err != nil {
		return err
	}
	var first error
	for _, args := range cmds {
		r, err := rd.readReply()
		if err != nil {
			return err
		}
		if r.kind == KindError && first == nil && !sniff {
			first = r.err
			if e, ok := r.err.(*Error); ok && e.Prefix() == "ERR" && configCommand(args) {
				// The server refuses what Options asked for (SELECT on a
				// cluster node, HELLO 3 on Redis 5): every dial would.
				first = fmt.Errorf("%w: %v: %w", ErrSetupRefused, args[0], r.err)
			}
		}
	}
	return first
}

// configCommand reports whether a setup command comes from Options alone
// (not from what the client found out about the node, as READONLY does).
func configCommand(args []any) bool {
	switch args[0] {
	case "SELECT", "HELLO", "CLIENT":
		return true
	}
	return false
}

// dedicatedConn is a non-shared connection for blocking commands, where one
// request may legitimately hold the connection for a long time.
type dedicatedConn struct {
	conn net.Conn
	rd   *respReader
	wbuf []byte
	// pushes are RESP3 out-of-band messages (tracking invalidations) read
	// while waiting for replies; a session's Receive hands them out.
	pushes []Result
}

// reply reads the next reply, setting RESP3 pushes aside: they answer no
// request.
func (dc *dedicatedConn) reply() (Result, error) {
	for {
		r, err := dc.rd.readReply()
		if err != nil || r.kind != KindPush {
			return r, err
		}
		if len(dc.pushes) < maxHeldPushes {
			dc.pushes = append(dc.pushes, r)
		}
	}
}

// maxHeldPushes bounds the pushes kept for a session that never reads them.
const maxHeldPushes = 1024

// do runs cmds on dc. ctx bounds everything: its deadline becomes the
// connection's (so the poller itself wakes the read on time) and a
// cancellation forces the deadline into the past. A connection that hit
// either is not reusable (ok == false): a reply may still be in flight.
func (dc *dedicatedConn) do(ctx context.Context, addr string, cmds []*command, out []Result) (ok bool, err error) {
	dc.wbuf = dc.wbuf[:0]
	for _, c := range cmds {
		dc.wbuf = append(dc.wbuf, c.buf...)
	}
	dl, hasDL := ctx.Deadline()
	_ = dc.conn.SetDeadline(dl) // zero when ctx has none
	stop := context.AfterFunc(ctx, func() { _ = dc.conn.SetDeadline(aLongTimeAgo) })
	n, err := dc.conn.Write(dc.wbuf)
	sent, op := n > 0, "write"
	if err == nil {
		op = "read"
		for i := 0; err == nil && i < len(cmds); i++ {
			out[i], err = dc.reply()
		}
	}
	cancelled := !stop()
	if err == nil {
		return !cancelled, nil // a reply that beat the cancellation still counts
	}
	if cancelled || (hasDL && errors.Is(err, os.ErrDeadlineExceeded)) {
		if cerr := ctx.Err(); cerr != nil {
			return false, cerr
		}
		return false, context.DeadlineExceeded // the poller fired a hair before ctx's timer
	}
	return false, &ConnError{Addr: addr, Op: op, Sent: sent, Err: err}
}
