package client

import (
	"bytes"
	"context"
	"net"
	"runtime"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/slotrouter/slotrouter/internal/fakeresp"
)

// FuzzPipeNoWrongDelivery drives a whole connection: waves of concurrent
// callers (single calls and batches) against a server that, as the input
// dictates, sends a reply too many (before a reply, or after the last one
// owed) or one too few. Every request carries a unique number and every
// reply echoes it, so a reply handed to the wrong caller is seen. The
// property: no caller ever gets another's reply; a fault is always noticed
// (the connection is closed); without faults every call succeeds.
//
// The server only makes faults the client can know for certain (desync.go):
// a stray reply whose type cannot answer the call it would land on, or one
// that arrives when nothing is owed. A shifted reply of the right type is
// undetectable in RESP2 and is not generated.
func FuzzPipeNoWrongDelivery(f *testing.F) {
	f.Add([]byte{0, 0, 0, 0})
	f.Add([]byte{2, 2, 1, 6, 2, 0, 1, 1, 0, 3, 5, 2, 1, 1})
	f.Add([]byte{1, 1, 2, 0, 1, 3, 1, 0, 2, 6, 1, 0, 0, 5})
	f.Add([]byte{0, 0, 0, 7, 4, 0, 0, 2, 6, 0, 0, 3, 6, 1})
	f.Fuzz(func(t *testing.T, data []byte) {
		runWaves(t, parseWaves(data))
	})
}

const (
	fzGet = iota
	fzIncr
	fzSetGet
	fzLrange
	fzEval
	fzKinds
)

const (
	faultNone = iota
	faultExtraBefore
	faultDrop
)

type fzCmd struct {
	id, wave, kind, fault int
}

type fzWave struct {
	groups     [][]int // command ids per caller
	extraAfter int     // 0 none, else 1 + kind of the stray reply
}

type fzScript struct {
	cmds  []fzCmd
	waves []fzWave
}

func parseWaves(data []byte) fzScript {
	var s fzScript
	next := func() int {
		if len(data) == 0 {
			return 0
		}
		b := int(data[0])
		data = data[1:]
		return b
	}
	for w := 0; len(data) > 0 && w < 8; w++ {
		var wave fzWave
		for range 1 + next()%3 {
			var g []int
			for range 1 + next()%3 {
				b := next()
				c := fzCmd{id: len(s.cmds), wave: w, kind: b % fzKinds}
				switch b / fzKinds % 8 {
				case 5:
					c.fault = faultExtraBefore
				case 6:
					c.fault = faultDrop
				}
				s.cmds = append(s.cmds, c)
				g = append(g, c.id)
			}
			wave.groups = append(wave.groups, g)
		}
		if b := next(); b%4 == 0 {
			wave.extraAfter = 1 + b/4%4
		}
		s.waves = append(s.waves, wave)
	}
	return s
}

var fzNames = [fzKinds]string{"GET", "INCR", "SET", "LRANGE", "EVAL"}

func (c fzCmd) args() []any {
	key := "k:" + strconv.Itoa(c.id)
	switch c.kind {
	case fzSetGet:
		return []any{"SET", key, "x", "GET"}
	case fzLrange:
		return []any{"LRANGE", key, 0, -1}
	case fzEval:
		return []any{"EVAL", "return 1", 1, key}
	}
	return []any{fzNames[c.kind], key}
}

func fzValue(id int) string { return "v" + strconv.Itoa(id) }

// fzReply is the right reply to c and its kind.
func fzReply(c fzCmd) ([]byte, Kind) {
	v := fzValue(c.id)
	switch c.kind {
	case fzIncr:
		return fakeresp.Int(int64(c.id)), KindInt
	case fzLrange:
		return append([]byte("*1\r\n"), fakeresp.Bulk(v)...), KindArray
	}
	return fakeresp.Bulk(v), KindBulk
}

func fzClass(c fzCmd) replyClass { return replyClasses[fzNames[c.kind]] }

// strays are the replies a misbehaving server may send, by kind.
var fzStrays = []struct {
	b    []byte
	kind Kind
}{
	{fakeresp.Int(-1), KindInt},
	{fakeresp.Simple("OK"), KindString},
	{fakeresp.Bulk("stray"), KindBulk},
	{[]byte("*1\r\n$5\r\nstray\r\n"), KindArray},
}

// misfit is a stray reply that cannot answer a command of class c.
func misfit(c replyClass) ([]byte, bool) {
	for _, s := range fzStrays {
		if !c.fits(Result{kind: s.kind, str: "OK"}) {
			return s.b, true
		}
	}
	return nil, false
}

// fzServer answers requests as the script says. owed models the client's
// FIFO: a reply sent lands on owed[0], whatever it is. It runs inside the
// client's Write (memConn), so one exec costs no server goroutine.
type fzServer struct {
	s        fzScript
	waveSize []int
	received []int
	owed     []fzCmd
	withheld *fzCmd
	dead     bool // a fault went out: the client must close
	injected bool
}

func (sv *fzServer) onRequest(args [][]byte) (out []byte) {
	if len(args) < 2 {
		return nil
	}
	keyArg := args[1]
	if string(args[0]) == fzNames[fzEval] {
		keyArg = args[3]
	}
	id, _ := strconv.Atoi(string(keyArg[2:]))
	c := sv.s.cmds[id]
	if sv.dead {
		// After its fault the server goes on answering, out of step; a
		// client that missed the fault would now hand replies around.
		b, _ := fzReply(c)
		return b
	}
	sv.owed = append(sv.owed, c)
	sv.received[c.wave]++
	last := sv.received[c.wave] == sv.waveSize[c.wave]
	fault := func(b []byte) []byte {
		sv.dead, sv.injected = true, true
		return append(out, b...)
	}
	send := func(b []byte) {
		out = append(out, b...)
		sv.owed = sv.owed[1:]
	}
	if sv.withheld != nil {
		w := *sv.withheld
		sv.withheld = nil
		if b, kind := fzReply(c); !fzClass(w).fits(Result{kind: kind}) {
			// Really drop w: c's reply lands on w's caller, and cannot fit.
			return fault(b)
		}
		b, _ := fzReply(w)
		send(b)
	}
	if c.fault == faultExtraBefore {
		if b, ok := misfit(fzClass(sv.owed[0])); ok {
			return fault(b)
		}
	}
	if c.fault == faultDrop && !last {
		sv.withheld = &c
	} else {
		b, _ := fzReply(c)
		send(b)
	}
	if last && sv.withheld == nil && len(sv.owed) == 0 {
		if x := sv.s.waves[c.wave].extraAfter; x > 0 {
			return fault(fzStrays[x-1].b)
		}
	}
	return out
}

// memConn is an in-memory net.Conn whose far end is an fzServer: what the
// client writes is answered at once into the read buffer. Deadlines are not
// needed: the fuzz calls have none, and a hang is caught by a watchdog.
type memConn struct {
	mu      sync.Mutex
	cond    sync.Cond
	in      []byte // replies not yet read
	pending []byte // request bytes not yet parsed
	closed  bool
	sv      *fzServer
}

func newMemConn(sv *fzServer) *memConn {
	c := &memConn{sv: sv}
	c.cond.L = &c.mu
	return c
}

func (c *memConn) Read(b []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for len(c.in) == 0 && !c.closed {
		c.cond.Wait()
	}
	if len(c.in) == 0 {
		return 0, net.ErrClosed
	}
	n := copy(b, c.in)
	c.in = c.in[n:]
	return n, nil
}

func (c *memConn) Write(b []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return 0, net.ErrClosed
	}
	c.pending = append(c.pending, b...)
	for {
		args, rest, ok := parseRequest(c.pending)
		if !ok {
			break
		}
		c.pending = rest
		c.in = append(c.in, c.sv.onRequest(args)...)
	}
	c.cond.Broadcast()
	return len(b), nil
}

func (c *memConn) Close() error {
	c.mu.Lock()
	c.closed = true
	c.cond.Broadcast()
	c.mu.Unlock()
	return nil
}

func (c *memConn) LocalAddr() net.Addr                { return &net.TCPAddr{} }
func (c *memConn) RemoteAddr() net.Addr               { return &net.TCPAddr{} }
func (c *memConn) SetDeadline(t time.Time) error      { return nil }
func (c *memConn) SetReadDeadline(t time.Time) error  { return nil }
func (c *memConn) SetWriteDeadline(t time.Time) error { return nil }

// parseRequest cuts one complete RESP request off b.
func parseRequest(b []byte) (args [][]byte, rest []byte, ok bool) {
	line := func() ([]byte, bool) {
		i := bytes.Index(b, []byte("\r\n"))
		if i < 0 {
			return nil, false
		}
		l := b[:i]
		b = b[i+2:]
		return l, true
	}
	h, ok := line()
	if !ok || len(h) < 2 || h[0] != '*' {
		return nil, nil, false
	}
	n, _ := strconv.Atoi(string(h[1:]))
	for range n {
		bh, ok := line()
		if !ok || len(bh) < 2 {
			return nil, nil, false
		}
		l, _ := strconv.Atoi(string(bh[1:]))
		if len(b) < l+2 {
			return nil, nil, false
		}
		args = append(args, b[:l])
		b = b[l+2:]
	}
	return args, b, true
}

func runWaves(t *testing.T, s fzScript) {
	waveSize := make([]int, len(s.waves))
	for i, w := range s.waves {
		for _, g := range w.groups {
			waveSize[i] += len(g)
		}
	}
	var p *pipe
	var sv *fzServer
	dial := func() {
		sv = &fzServer{s: s, waveSize: waveSize, received: make([]int, len(waveSize))}
		cc := newMemConn(sv)
		p = newPipe("fuzz", cc, newRespReader(cc), &connConfig{HealthTimeout: time.Minute}, nil)
	}
	dial()
	defer func() { p.close() }()
	ctx := context.Background() // no deadline: a hang is the watchdog's
	watchdog := time.AfterFunc(5*time.Second, func() { p.close() })
	defer watchdog.Stop()
	hung := func() bool { return !watchdog.Stop() }
	for wi, w := range s.waves {
		if wi > 0 && p.broken.Load() {
			p.close()
			dial() // as node does: a fresh connection for the next wave
		}
		type outcome struct {
			c   fzCmd
			res Result
			err error
		}
		results := make([][]outcome, len(w.groups))
		var wg sync.WaitGroup
		for gi, g := range w.groups {
			wg.Add(1)
			go func() {
				defer wg.Done()
				cmds := make([]*command, len(g))
				for i, id := range g {
					cmd, err := newCommand(s.cmds[id].args())
					if err != nil {
						panic(err)
					}
					cmds[i] = cmd
				}
				out := make([]Result, len(g))
				var err error
				if len(g) == 1 {
					out[0], err = p.do(ctx, cmds[0], false)
				} else {
					err = p.doMulti(ctx, cmds, out, nil)
				}
				for i, id := range g {
					results[gi] = append(results[gi], outcome{s.cmds[id], out[i], err})
					cmds[i].release()
					if got, ok := fzDelivered(s.cmds[id], out[i]); err == nil && !ok {
						t.Errorf("wave %d: command %d (%s) got %s: another caller's reply", wi, id, fzNames[s.cmds[id].kind], got)
					}
				}
			}()
		}
		wg.Wait()
		if hung() {
			t.Fatalf("wave %d hung", wi)
		}
		if t.Failed() {
			return
		}
		watchdog.Reset(5 * time.Second)
		cc := p.conn.(*memConn) // sv runs inside cc.Write, under cc.mu
		cc.mu.Lock()
		injected := cc.sv.injected
		cc.mu.Unlock()
		if !injected {
			for _, rs := range results {
				for _, o := range rs {
					if o.err != nil {
						t.Fatalf("wave %d: command %d failed with no fault sent: %v", wi, o.c.id, o.err)
					}
				}
			}
			continue
		}
		// A fault was sent: the pipe must close (a background reader may
		// still be on its way to the idle check).
		deadline := time.Now().Add(5 * time.Second)
		for !p.broken.Load() {
			if time.Now().After(deadline) {
				t.Fatalf("wave %d: a stray or missing reply went unnoticed", wi)
			}
			runtime.Gosched()
		}
	}
}

// fzDelivered checks a delivered reply against the one c's request got.
func fzDelivered(c fzCmd, r Result) (string, bool) {
	want := fzValue(c.id)
	switch c.kind {
	case fzIncr:
		n, err := r.Int64()
		return r.String(), err == nil && n == int64(c.id)
	case fzLrange:
		v, err := r.Strings()
		return r.String(), err == nil && len(v) == 1 && v[0] == want
	}
	v, err := r.Text()
	return r.String(), err == nil && v == want
}
