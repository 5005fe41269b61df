package redistest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"
)

func ctxT(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

func mustDo(t *testing.T, ctx context.Context, s *Server, args ...any) any {
	t.Helper()
	v, err := s.Do(ctx, args...)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func keySlot(t *testing.T, ctx context.Context, s *Server, key string) int {
	t.Helper()
	v, ok := mustDo(t, ctx, s, "CLUSTER", "KEYSLOT", key).(int64)
	if !ok {
		t.Fatalf("CLUSTER KEYSLOT %q: not an integer", key)
	}
	return int(v)
}

func role(t *testing.T, ctx context.Context, s *Server) string {
	t.Helper()
	in, err := s.info(ctx, "replication")
	if err != nil {
		t.Fatal(err)
	}
	return in["role"]
}

func TestClusterFailoverRestartRejoin(t *testing.T) {
	t.Parallel()
	c := StartCluster(t, ClusterOptions{Masters: 3, Replicas: 1, NodeTimeout: 2000 * time.Millisecond})
	ctx := ctxT(t, 90*time.Second)

	masters := c.Masters()
	if len(masters) != 3 || len(c.Replicas()) != 3 || len(c.Addrs()) != 6 {
		t.Fatalf("topology: %d masters, %d replicas, %d addrs", len(masters), len(c.Replicas()), len(c.Addrs()))
	}
	if got := c.Addrs()[:3]; !slices.Equal(got, []string{masters[0].Addr, masters[1].Addr, masters[2].Addr}) {
		t.Fatalf("Addrs does not list masters first: %v", got)
	}
	old := c.MasterOf(0)
	if old != masters[0] {
		t.Fatalf("slot 0 owned by %s, want %s", old.Name, masters[0].Name)
	}
	reps := c.ReplicasOf(old)
	if len(reps) != 1 {
		t.Fatalf("%s has %d replicas, want 1", old.Name, len(reps))
	}
	// A key on the victim, replicated before the kill so it must survive.
	key := ""
	for i := range 1000 {
		k := fmt.Sprintf("k%d", i)
		if old.Name == c.MasterOf(keySlot(t, ctx, old, k)).Name {
			key = k
			break
		}
	}
	if key == "" {
		t.Fatal("no key found on the first master")
	}
	mustDo(t, ctx, old, "SET", key, "v1")
	if n := mustDo(t, ctx, old, "WAIT", 1, 5000); n != int64(1) {
		t.Fatalf("WAIT: %v replicas acknowledged", n)
	}

	killed := time.Now()
	old.Kill()
	if old.Running() {
		t.Fatal("Running after Kill")
	}
	p := c.WaitPromotion(ctx, old)
	promoted, at := p.Master, p.First
	if promoted != reps[0] {
		t.Fatalf("promoted %s, want %s", promoted.Name, reps[0].Name)
	}
	if at.Before(killed) || p.All.Before(at) || p.All.After(time.Now()) {
		t.Fatalf("promotion times first %v all %v outside [kill %v, now]", at, p.All, killed)
	}
	t.Logf("promotion seen %v after kill -9, by all nodes %v later", at.Sub(killed).Round(time.Millisecond),
		p.All.Sub(at).Round(time.Millisecond))
	if m := c.MasterOf(0); m != promoted {
		t.Fatalf("slot 0 owned by %s after failover, want %s", m.Name, promoted.Name)
	}
	if v := mustDo(t, ctx, promoted, "GET", key); v != "v1" {
		t.Fatalf("GET %s on promoted replica = %v", key, v)
	}
	if _, err := old.Do(ctx, "PING"); err == nil {
		t.Fatal("PING to a killed server succeeded")
	}

	old.Restart(t)
	c.WaitOK(ctx)
	if r := role(t, ctx, old); r != "slave" {
		t.Fatalf("restarted old master has role %s, want slave", r)
	}
	if got := c.ReplicasOf(promoted); !slices.Contains(got, old) {
		t.Fatalf("restarted %s not a replica of %s", old.Name, promoted.Name)
	}
	if !strings.Contains(c.NodesText(old), old.ID+" "+old.Addr) {
		t.Fatalf("restarted node changed identity:\n%s", c.NodesText(old))
	}

	// Manual failover hands the slots back without data loss.
	c.ManualFailover(old)
	if m := c.MasterOf(0); m != old {
		t.Fatalf("slot 0 owned by %s after manual failover, want %s", m.Name, old.Name)
	}
	if v := mustDo(t, ctx, old, "GET", key); v != "v1" {
		t.Fatalf("GET %s after manual failover = %v", key, v)
	}
}

func TestClusterMigration(t *testing.T) {
	t.Parallel()
	c := StartCluster(t, ClusterOptions{Masters: 3, Password: "s3cret"})
	ctx := ctxT(t, 60*time.Second)
	any0 := c.Masters()[0]
	slot := keySlot(t, ctx, any0, "{mig}")
	src := c.MasterOf(slot)
	dst := c.Masters()[(slices.Index(c.Masters(), src)+1)%3]
	const n = 250 // more than one MIGRATE batch
	for i := range n {
		mustDo(t, ctx, src, "SET", fmt.Sprintf("{mig}%d", i), i)
	}

	c.BeginMigration(slot, src, dst)
	if want := fmt.Sprintf("[%d->-%s]", slot, dst.ID); !strings.Contains(c.NodesText(src), want) {
		t.Fatalf("source lacks %s:\n%s", want, c.NodesText(src))
	}
	if want := fmt.Sprintf("[%d-<-%s]", slot, src.ID); !strings.Contains(c.NodesText(dst), want) {
		t.Fatalf("target lacks %s:\n%s", want, c.NodesText(dst))
	}
	if moved := c.MoveKeys(slot, src, dst); moved != n {
		t.Fatalf("moved %d keys, want %d", moved, n)
	}
	// Mid-migration the source redirects with ASK for keys it no longer has.
	if _, err := src.Do(ctx, "GET", "{mig}7"); err == nil || !strings.HasPrefix(errText(err), "ASK ") {
		t.Fatalf("GET on source mid-migration: %v, want ASK", err)
	}
	c.FinishMigration(slot, src, dst)
	if m := c.MasterOf(slot); m != dst {
		t.Fatalf("slot %d owned by %s, want %s", slot, m.Name, dst.Name)
	}
	if v := mustDo(t, ctx, dst, "GET", "{mig}7"); v != "7" {
		t.Fatalf("GET on target = %v", v)
	}
	if _, err := src.Do(ctx, "GET", "{mig}7"); err == nil || !strings.HasPrefix(errText(err), "MOVED ") {
		t.Fatalf("GET on old owner: %v, want MOVED", err)
	}
	c.WaitOK(ctx)

	// And back in one call, with no keys left behind.
	if moved := c.MigrateSlot(slot, dst, src); moved != n {
		t.Fatalf("MigrateSlot moved %d keys, want %d", moved, n)
	}
	if c.MasterOf(slot) != src {
		t.Fatal("MigrateSlot did not move ownership back")
	}
	if v := mustDo(t, ctx, src, "CLUSTER", "COUNTKEYSINSLOT", slot); v != int64(n) {
		t.Fatalf("COUNTKEYSINSLOT = %v, want %d", v, n)
	}
}

// errText strips the harness's "nodeX [args]: " prefix from a server error.
func errText(err error) string {
	s := err.Error()
	if i := strings.Index(s, "]: "); i >= 0 {
		return s[i+3:]
	}
	return s
}

func TestStopCont(t *testing.T) {
	t.Parallel()
	s := StartServer(t, ServerOptions{})
	ctx := ctxT(t, 30*time.Second)
	mustDo(t, ctx, s, "SET", "a", "1")
	s.Stop()
	if !s.Stopped() {
		t.Fatal("Stopped() false after Stop")
	}
	short, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
	_, err := s.Do(short, "GET", "a")
	cancel()
	if err == nil {
		t.Fatal("a stopped server answered")
	}
	s.Cont()
	if v := mustDo(t, ctx, s, "GET", "a"); v != "1" {
		t.Fatalf("GET after Cont = %v", v)
	}
	// Left stopped on purpose: cleanup must still reap it (SIGCONT, SIGKILL).
	s.Stop()
}

func TestStandaloneReplica(t *testing.T) {
	t.Parallel()
	m := StartServer(t, ServerOptions{Password: "pw"})
	r := StartServer(t, ServerOptions{Password: "pw", ReplicaOf: m.Addr, Config: []string{"replica-read-only yes"}})
	ctx := ctxT(t, 30*time.Second)
	mustDo(t, ctx, m, "SET", "x", "y")
	if n := mustDo(t, ctx, m, "WAIT", 1, 5000); n != int64(1) {
		t.Fatalf("WAIT = %v", n)
	}
	if v := mustDo(t, ctx, r, "GET", "x"); v != "y" {
		t.Fatalf("GET on replica = %v", v)
	}
	if _, err := r.Do(ctx, "SET", "x", "z"); err == nil || !strings.HasPrefix(errText(err), "READONLY") {
		t.Fatalf("SET on replica: %v, want READONLY", err)
	}
	if role(t, ctx, r) != "slave" || role(t, ctx, m) != "master" {
		t.Fatal("unexpected roles")
	}
	if err := m.ping(time.Second); err != nil {
		t.Fatal(err)
	}
	// A wrong password must be refused: requirepass really is set.
	wrong := &Server{Addr: m.Addr, password: "nope"}
	if err := wrong.ping(time.Second); err == nil {
		t.Fatal("wrong password accepted")
	}
	// The same address again after a restart.
	addr := m.Addr
	m.Restart(t)
	if m.Addr != addr {
		t.Fatalf("address changed on restart: %s -> %s", addr, m.Addr)
	}
	// The cached client must not hand out connections to the old process.
	if v := mustDo(t, ctx, m, "PING"); v != "PONG" {
		t.Fatalf("PING after restart = %v", v)
	}
	if err := r.waitLinkUp(ctx); err != nil {
		t.Fatal(err)
	}
}

func TestSentinelFailover(t *testing.T) {
	t.Parallel()
	g := StartSentinelGroup(t, SentinelOptions{Replicas: 2, Sentinels: 3, Password: "pw",
		DownAfter: time.Second, FailoverTimeout: 5 * time.Second})
	ctx := ctxT(t, 60*time.Second)
	old := g.Master()
	if old != g.Servers()[0] || len(g.Replicas()) != 2 || len(g.SentinelAddrs()) != 3 {
		t.Fatalf("unexpected initial group: master %s, replicas %v", old.Name, g.ReplicaAddrs())
	}
	killed := time.Now()
	old.Kill()
	m := g.WaitFailover(ctx, old)
	t.Logf("sentinels agree on %s %v after kill", m.Name, time.Since(killed).Round(time.Millisecond))
	if m == old || !slices.Contains(g.Servers()[1:], m) {
		t.Fatalf("new master %s", m.Name)
	}
	mustDo(t, ctx, m, "SET", "after", "failover")
	if g.MasterAddr() != m.Addr {
		t.Fatal("MasterAddr disagrees with WaitFailover")
	}
}

func TestPerNodeHostsAndHostnames(t *testing.T) {
	t.Parallel()
	hosts := []string{"127.0.0.2", "127.0.0.3", "127.0.0.4"}
	names := []string{"node-a.test", "node-b.test", "node-c.test"}
	c := StartCluster(t, ClusterOptions{Masters: 3, Hosts: hosts, Hostnames: names, PreferredEndpoint: "hostname"})
	for i, s := range c.Servers() {
		if s.Host != hosts[i] {
			t.Fatalf("%s bound to %s, want %s", s.Name, s.Host, hosts[i])
		}
		// Each node must be known by its own address and hostname everywhere.
		for _, o := range c.Servers() {
			want := fmt.Sprintf("%s:%d@%d,%s ", hosts[i], s.Port, s.Port+busOffset, names[i])
			if text := c.NodesText(o); !strings.Contains(text, want) {
				t.Fatalf("%s's CLUSTER NODES lacks %q:\n%s", o.Name, want, text)
			}
		}
	}
	ctx := ctxT(t, 10*time.Second)
	v, err := c.Servers()[0].Do(ctx, "CLUSTER", "SLOTS")
	if err != nil || !strings.Contains(fmt.Sprint(v), "node-") {
		t.Fatalf("CLUSTER SLOTS with preferred hostname: %v %v", v, err)
	}
}

func TestOptionErrors(t *testing.T) {
	bad := []ClusterOptions{
		{Masters: -1},
		{Replicas: -1},
		{NodeTimeout: time.Millisecond},
		{Masters: 1, Hosts: []string{"127.0.0.1", "127.0.0.2"}},
		{PreferredEndpoint: "dns"},
	}
	for _, o := range bad {
		if err := o.normalize(); !errors.Is(err, ErrBadOptions) {
			t.Errorf("%+v: err = %v, want ErrBadOptions", o, err)
		}
	}
	var o ClusterOptions
	if err := o.normalize(); err != nil || o.Masters != 3 || o.NodeTimeout != DefaultNodeTimeout {
		t.Fatalf("zero options: %+v %v", o, err)
	}
	for _, h := range []string{"10.0.0.1", "0.0.0.0", "::1", "localhost", "128.0.0.1"} {
		if _, err := checkHost(h); err == nil {
			t.Errorf("host %q accepted", h)
		}
	}
	if h, err := checkHost("127.0.0.9"); err != nil || h != "127.0.0.9" {
		t.Errorf("127.0.0.9: %q %v", h, err)
	}
}

func TestParseNodes(t *testing.T) {
	text := "2b47 :0@0 slave,noaddr fc98 1 2 7 disconnected\n" +
		"fc98 127.0.0.1:30001@40001,host-a myself,master - 0 0 3 connected 0-99 101 [102->-2b47] [103-<-2b47]\n"
	v, err := parseNodes(text)
	if err != nil {
		t.Fatal(err)
	}
	me := v.nodes["fc98"]
	if v.self != "fc98" || me.addr != "127.0.0.1:30001" || me.hostname != "host-a" || me.count() != 101 || me.epoch != 3 {
		t.Fatalf("myself parsed as %+v", me)
	}
	if !me.owns(101) || me.owns(100) || me.owns(102) || v.ownerOf(50) != me {
		t.Fatal("slot ownership wrong")
	}
	if r := v.nodes["2b47"]; r.master() || r.masterID != "fc98" || r.linked || !r.flags["noaddr"] {
		t.Fatalf("replica parsed as %+v", r)
	}
	if _, err := parseNodes("abc 1.2.3.4:5@6 master"); err == nil {
		t.Fatal("short line accepted")
	}
	if _, err := parseNodes("a b master - 0 0 1 connected x-1"); err == nil {
		t.Fatal("bad slot accepted")
	}
}
