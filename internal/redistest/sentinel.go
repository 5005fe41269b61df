package redistest

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"testing"
	"time"
)

// SentinelOptions configures StartSentinelGroup. The zero value is a master
// with 1 replica watched by 3 Sentinels under the name "mymaster".
type SentinelOptions struct {
	Replicas        int           // data replicas; default 1 (0 means 1: a group without replicas cannot fail over)
	Sentinels       int           // default 3
	Password        string        // requirepass/masterauth on data nodes, sentinel auth-pass
	DownAfter       time.Duration // down-after-milliseconds, default 1 s
	FailoverTimeout time.Duration // failover-timeout, default 5 s (a Sentinel whose election failed retries after twice this)
	MasterName      string        // default "mymaster"
	Config          []string      // extra config lines for the data nodes
	StartTimeout    time.Duration // default 60 s
}

// SentinelGroup is a master, its replicas and the Sentinels monitoring them.
type SentinelGroup struct {
	t         testing.TB
	opts      SentinelOptions
	data      []*Server // initial master first
	sentinels []*Server
}

// StartSentinelGroup starts the data nodes and Sentinels and returns once
// every replica link is up and every Sentinel names the master, knows all
// replicas and all other Sentinels (needed before a failover can be
// authorized).
func StartSentinelGroup(t testing.TB, o SentinelOptions) *SentinelGroup {
	t.Helper()
	bin := Require(t)
	sbin := RequireSentinel(t)
	if o.Replicas == 0 {
		o.Replicas = 1
	}
	if o.Sentinels == 0 {
		o.Sentinels = 3
	}
	if o.DownAfter == 0 {
		o.DownAfter = time.Second
	}
	if o.FailoverTimeout == 0 {
		o.FailoverTimeout = 5 * time.Second
	}
	if o.MasterName == "" {
		o.MasterName = "mymaster"
	}
	if o.StartTimeout == 0 {
		o.StartTimeout = 60 * time.Second
	}
	if o.Replicas < 0 || o.Replicas > 8 || o.Sentinels < 1 || o.Sentinels > 9 || o.DownAfter < 0 || o.FailoverTimeout < 0 {
		t.Fatalf("%v: %+v", ErrBadOptions, o)
	}
	g := &SentinelGroup{t: t, opts: o}
	began := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), o.StartTimeout)
	defer cancel()

	master := newServer(t, bin, "master", "127.0.0.1", t.TempDir(), o.Password)
	master.render = func(port int) string { return joinConfig(baseConfig(master, port), o.Config) }
	g.data = append(g.data, master)
	if err := master.start(nil); err != nil {
		t.Fatal(err)
	}
	for i := range o.Replicas {
		r := newServer(t, bin, "replica"+strconv.Itoa(i), "127.0.0.1", t.TempDir(), o.Password)
		r.render = func(port int) string {
			return joinConfig(append(baseConfig(r, port), "replicaof 127.0.0.1 "+strconv.Itoa(master.Port)), o.Config)
		}
		g.data = append(g.data, r)
	}
	if err := startAll(g.data[1:]); err != nil {
		t.Fatal(err)
	}
	// Replicas must be attached before the Sentinels start: a Sentinel learns
	// replicas from the master's INFO, which it re-reads only every 10 s.
	for _, r := range g.data[1:] {
		if err := r.waitLinkUp(ctx); err != nil {
			t.Fatal(err)
		}
	}
	for i := range o.Sentinels {
		s := newServer(t, sbin, "sentinel"+strconv.Itoa(i), "127.0.0.1", t.TempDir(), "")
		s.render = func(port int) string { return g.sentinelConfig(s, port, master) }
		g.sentinels = append(g.sentinels, s)
	}
	if err := startAll(g.sentinels); err != nil {
		t.Fatal(err)
	}
	if _, err := g.waitAgree(ctx, nil); err != nil {
		t.Fatalf("redistest: sentinels not ready: %v", err)
	}
	t.Logf("redistest: sentinel group up in %v: master %s, %d replicas, sentinels %v",
		time.Since(began).Round(time.Millisecond), master.Addr, o.Replicas, g.SentinelAddrs())
	return g
}

func (g *SentinelGroup) sentinelConfig(s *Server, port int, master *Server) string {
	o := g.opts
	name := o.MasterName
	lines := []string{
		"port " + strconv.Itoa(port),
		"bind 127.0.0.1",
		"protected-mode no",
		"daemonize no",
		// Sentinel rewrites its config file (state, known peers): it and the
		// working directory live in the test's temp dir.
		"dir " + quote(s.Dir),
		"logfile " + quote(s.logPath),
		fmt.Sprintf("sentinel monitor %s 127.0.0.1 %d %d", name, master.Port, o.Sentinels/2+1),
		fmt.Sprintf("sentinel down-after-milliseconds %s %d", name, o.DownAfter.Milliseconds()),
		fmt.Sprintf("sentinel failover-timeout %s %d", name, o.FailoverTimeout.Milliseconds()),
		fmt.Sprintf("sentinel parallel-syncs %s 1", name),
	}
	if o.Password != "" {
		lines = append(lines, fmt.Sprintf("sentinel auth-pass %s %s", name, quote(o.Password)))
	}
	return joinConfig(lines, nil)
}

// MasterName is the name the Sentinels monitor.
func (g *SentinelGroup) MasterName() string { return g.opts.MasterName }

// Sentinels returns the Sentinel processes.
func (g *SentinelGroup) Sentinels() []*Server { return append([]*Server(nil), g.sentinels...) }

// SentinelAddrs returns the Sentinels' addresses.
func (g *SentinelGroup) SentinelAddrs() []string {
	out := make([]string, len(g.sentinels))
	for i, s := range g.sentinels {
		out[i] = s.Addr
	}
	return out
}

// Servers returns the data nodes, the initial master first.
func (g *SentinelGroup) Servers() []*Server { return append([]*Server(nil), g.data...) }

// Master returns the data node the (first answering) Sentinel names master.
func (g *SentinelGroup) Master() *Server {
	g.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var errs []error
	for _, s := range g.sentinels {
		if !s.live() {
			continue
		}
		addr, err := g.masterAddrFrom(ctx, s)
		if err == nil {
			if m := g.byAddr(addr); m != nil {
				return m
			}
			err = fmt.Errorf("%s names unknown master %s", s.Name, addr)
		}
		errs = append(errs, err)
	}
	g.t.Fatalf("redistest: no sentinel names a master: %v", errors.Join(errs...))
	return nil
}

// MasterAddr is Master().Addr.
func (g *SentinelGroup) MasterAddr() string { return g.Master().Addr }

// Replicas returns the data nodes other than the current master.
func (g *SentinelGroup) Replicas() []*Server {
	m := g.Master()
	var out []*Server
	for _, s := range g.data {
		if s != m {
			out = append(out, s)
		}
	}
	return out
}

// ReplicaAddrs returns the addresses of Replicas().
func (g *SentinelGroup) ReplicaAddrs() []string {
	var out []string
	for _, s := range g.Replicas() {
		out = append(out, s.Addr)
	}
	return out
}

func (g *SentinelGroup) byAddr(addr string) *Server {
	for _, s := range g.data {
		if s.Addr == addr {
			return s
		}
	}
	return nil
}

func (g *SentinelGroup) masterAddrFrom(ctx context.Context, s *Server) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	v, err := s.Do(ctx, "SENTINEL", "GET-MASTER-ADDR-BY-NAME", g.opts.MasterName)
	if err != nil {
		return "", err
	}
	a, ok := v.([]any)
	if !ok || len(a) != 2 {
		return "", fmt.Errorf("%s: unexpected get-master-addr-by-name reply %#v", s.Name, v)
	}
	host, _ := a[0].(string)
	port, _ := a[1].(string)
	return net.JoinHostPort(host, port), nil
}

// WaitAgree waits until every live Sentinel names the same master, that node
// reports role:master, and each Sentinel knows every other Sentinel and every
// live replica. It returns the master.
func (g *SentinelGroup) WaitAgree(ctx context.Context) *Server {
	g.t.Helper()
	m, err := g.waitAgree(ctx, nil)
	if err != nil {
		g.t.Fatal(err)
	}
	return m
}

// WaitFailover waits until the Sentinels agree on a master other than old and
// returns it. Sentinels only count replicas that are reachable, so a killed
// old master is excluded from the replica count.
func (g *SentinelGroup) WaitFailover(ctx context.Context, old *Server) *Server {
	g.t.Helper()
	m, err := g.waitAgree(ctx, old)
	if err != nil {
		g.t.Fatal(err)
	}
	return m
}

func (g *SentinelGroup) waitAgree(ctx context.Context, notMaster *Server) (*Server, error) {
	var master *Server
	err := poll(ctx, 20*time.Millisecond, func() error {
		master = nil
		live := 0
		for _, s := range g.sentinels {
			if !s.live() {
				continue
			}
			live++
			addr, err := g.masterAddrFrom(ctx, s)
			if err != nil {
				return err
			}
			m := g.byAddr(addr)
			switch {
			case m == nil:
				return fmt.Errorf("%s names unknown master %s", s.Name, addr)
			case m == notMaster:
				return fmt.Errorf("%s still names %s", s.Name, m.Name)
			case master != nil && m != master:
				return fmt.Errorf("sentinels disagree: %s vs %s", master.Name, m.Name)
			}
			master = m
			if err := g.checkSentinelState(ctx, s); err != nil {
				return err
			}
		}
		if live == 0 {
			return errors.New("no live sentinel")
		}
		in, err := master.info(ctx, "replication")
		if err != nil {
			return err
		}
		if in["role"] != "master" {
			return fmt.Errorf("%s named master but reports role:%s", master.Name, in["role"])
		}
		return nil
	})
	return master, err
}

// checkSentinelState checks one Sentinel's SENTINEL MASTER fields.
func (g *SentinelGroup) checkSentinelState(ctx context.Context, s *Server) error {
	v, err := s.Do(ctx, "SENTINEL", "MASTER", g.opts.MasterName)
	if err != nil {
		return err
	}
	a, _ := v.([]any)
	f := make(map[string]string)
	for i := 0; i+1 < len(a); i += 2 {
		k, _ := a[i].(string)
		val, _ := a[i+1].(string)
		f[k] = val
	}
	if f["flags"] != "master" {
		return fmt.Errorf("%s: master flags %q", s.Name, f["flags"])
	}
	liveData := 0
	for _, d := range g.data {
		if d.live() {
			liveData++
		}
	}
	others := 0
	for _, o := range g.sentinels {
		if o.live() {
			others++
		}
	}
	others-- // not itself
	if n, _ := strconv.Atoi(f["num-other-sentinels"]); n < others {
		return fmt.Errorf("%s knows %d other sentinels, want %d", s.Name, n, others)
	}
	// num-slaves counts known replicas including unreachable ones, so it
	// can only be checked as a lower bound.
	if n, _ := strconv.Atoi(f["num-slaves"]); n < liveData-1 {
		return fmt.Errorf("%s knows %d replicas, want %d", s.Name, n, liveData-1)
	}
	return nil
}
