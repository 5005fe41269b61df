package clustertest

import (
	"context"
	"errors"
	"net"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/slotrouter/slotrouter/slots"
)

var nodeLine = regexp.MustCompile(`^([0-9a-f]{40}) 127\.0\.0\.1:(\d+)@(\d+) ((?:myself,)?(?:master|slave)(?:,fail\?)?(?:,fail)?) ([0-9a-f]{40}|-) (\d+) (\d+) (\d+) (connected|disconnected)((?: \d+(?:-\d+)?)*)((?: \[\d+-[<>]-[0-9a-f]{40}\])*)$`)

func TestTopologyReplies(t *testing.T) {
	c := New(t, Options{Masters: 3, Replicas: 1})
	if len(c.Nodes()) != 6 || len(c.Masters()) != 3 {
		t.Fatalf("nodes=%d masters=%d", len(c.Nodes()), len(c.Masters()))
	}
	wantRanges := []string{" 0-5460", " 5461-10922", " 10923-16383"}
	for i, n := range c.Nodes() {
		r := dialRaw(t, n.Addr())
		if got := r.do("CLUSTER", "MYID"); got != "$40\r\n"+n.ID()+"\r\n" {
			t.Errorf("MYID = %q", got)
		}
		raw := r.do("CLUSTER", "NODES")
		body := raw[strings.Index(raw, "\r\n")+2 : len(raw)-2]
		if !strings.HasSuffix(body, "\n") {
			t.Fatalf("CLUSTER NODES must end in LF: %q", body)
		}
		lines := strings.Split(strings.TrimSuffix(body, "\n"), "\n")
		if len(lines) != 6 {
			t.Fatalf("%d lines", len(lines))
		}
		myself := 0
		for _, l := range lines {
			m := nodeLine.FindStringSubmatch(l)
			if m == nil {
				t.Fatalf("line does not match the 7.0 grammar: %q", l)
			}
			if strings.HasPrefix(m[4], "myself") {
				myself++
				if m[1] != n.ID() {
					t.Errorf("myself line has id %s, want %s", m[1], n.ID())
				}
			}
			if m[1] == c.Nodes()[0].ID() && m[10] != wantRanges[0] {
				t.Errorf("first master slots %q", m[10])
			}
		}
		if myself != 1 {
			t.Errorf("node %d: %d myself lines", i, myself)
		}
		info := r.do("CLUSTER", "INFO")
		for _, want := range []string{"cluster_state:ok\r\n", "cluster_slots_assigned:16384\r\n", "cluster_known_nodes:6\r\n", "cluster_size:3\r\n", "cluster_current_epoch:6\r\n"} {
			if !strings.Contains(info, want) {
				t.Errorf("CLUSTER INFO lacks %q: %q", want, info)
			}
		}
	}
	r := dialRaw(t, c.Addrs()[0])
	if got := r.do("CLUSTER", "KEYSLOT", "123456789"); got != ":12739\r\n" {
		t.Errorf("KEYSLOT = %q", got)
	}
	slotsReply := r.do("CLUSTER", "SLOTS")
	for i, m := range c.Masters() {
		want := "*4\r\n$9\r\n127.0.0.1\r\n:" + strconv.Itoa(m.Port()) + "\r\n$40\r\n" + m.ID() + "\r\n*0\r\n"
		if !strings.Contains(slotsReply, want) || !strings.Contains(slotsReply, ":"+strings.Split(strings.TrimSpace(wantRanges[i]), "-")[0]+"\r\n") {
			t.Errorf("CLUSTER SLOTS lacks master %d entry: %q", i, slotsReply)
		}
	}
	shards := r.do("CLUSTER", "SHARDS")
	if !strings.HasPrefix(shards, "*3\r\n*4\r\n$5\r\nslots\r\n*2\r\n") || strings.Count(shards, "$6\r\nonline\r\n") != 6 {
		t.Errorf("CLUSTER SHARDS = %q", shards)
	}
}

func TestRedirectsAndCrossSlot(t *testing.T) {
	c := New(t, Options{})
	m0, m2 := c.Masters()[0], c.Masters()[2]
	r := dialRaw(t, m0.Addr())
	// foo is slot 12182, owned by the third master.
	if got, want := r.do("SET", "foo", "1"), "-MOVED 12182 "+m2.Addr()+"\r\n"; got != want {
		t.Errorf("SET foo on m0 = %q, want %q", got, want)
	}
	// CROSSSLOT is checked before ownership.
	if got := r.do("MGET", "foo", "bar"); got != "-CROSSSLOT Keys in request don't hash to the same slot\r\n" {
		t.Errorf("MGET foo bar = %q", got)
	}
	// Same key twice is not cross-slot.
	k := keyOn(t, c, m0, "k")
	if got := r.do("MSET", k, "1", k, "2"); got != "+OK\r\n" {
		t.Errorf("MSET same key = %q", got)
	}
	replica := c.ReplicasOf(m0)[0]
	rr := dialRaw(t, replica.Addr())
	moved := "-MOVED " + strconv.Itoa(int(slots.Of(k))) + " " + m0.Addr() + "\r\n"
	if got := rr.do("GET", k); got != moved {
		t.Errorf("GET on replica without READONLY = %q, want %q", got, moved)
	}
	if err := c.WaitReplicated(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := rr.do("READONLY"); got != "+OK\r\n" {
		t.Fatal(got)
	}
	if got := rr.do("GET", k); got != "$1\r\n2\r\n" {
		t.Errorf("READONLY GET on replica = %q", got)
	}
	if got := rr.do("SET", k, "3"); got != moved {
		t.Errorf("write on READONLY replica = %q, want MOVED", got)
	}
	if got := rr.do("FLUSHALL"); got != "-READONLY You can't write against a read only replica.\r\n" {
		t.Errorf("FLUSHALL on replica = %q", got)
	}
	// A replica serves reads only for its own master's slots.
	other := keyOn(t, c, m2, "o")
	if got := rr.do("GET", other); !strings.HasPrefix(got, "-MOVED ") || !strings.HasSuffix(got, m2.Addr()+"\r\n") {
		t.Errorf("READONLY GET of another shard's key = %q", got)
	}
	if got := rr.do("READWRITE"); got != "+OK\r\n" {
		t.Fatal(got)
	}
	if got := rr.do("GET", k); got != moved {
		t.Errorf("GET after READWRITE = %q", got)
	}
	// Key-less commands run anywhere.
	if got := rr.do("PING"); got != "+PONG\r\n" {
		t.Errorf("PING = %q", got)
	}
}

func TestMigrationAskTryAgain(t *testing.T) {
	c := New(t, Options{})
	src, dst := c.Masters()[0], c.Masters()[1]
	const a, b = "{m}a", "{m}b"
	slot := slots.Of(a)
	if c.MasterOf(slot) != src {
		src, dst = c.MasterOf(slot), src
	}
	rs, rd := dialRaw(t, src.Addr()), dialRaw(t, dst.Addr())
	rs.do("SET", a, "1")
	rs.do("SET", b, "2")
	if err := c.BeginMigration(slot, dst); err != nil {
		t.Fatal(err)
	}
	ss := strconv.Itoa(int(slot))
	nodes := rs.do("CLUSTER", "NODES")
	if !strings.Contains(nodes, "["+ss+"->-"+dst.ID()+"]") {
		t.Errorf("source lacks migrating marker: %q", nodes)
	}
	if !strings.Contains(rd.do("CLUSTER", "NODES"), "["+ss+"-<-"+src.ID()+"]") {
		t.Errorf("target lacks importing marker")
	}
	if moved, err := c.MoveKeys(slot, 1); err != nil || moved != 1 {
		t.Fatalf("MoveKeys = %d, %v", moved, err)
	}
	// a moved (sorted order), b still on the source.
	ask := "-ASK " + ss + " " + dst.Addr() + "\r\n"
	tests := []struct {
		r    *rawClient
		args []string
		want string
	}{
		{rs, []string{"GET", b}, "$1\r\n2\r\n"},
		{rs, []string{"GET", a}, ask},
		{rs, []string{"SET", "{m}new", "x"}, ask},
		{rs, []string{"MGET", a, b}, "-TRYAGAIN Multiple keys request during rehashing of slot\r\n"},
		{rs, []string{"MGET", a, "{m}zz"}, ask},
		{rd, []string{"GET", a}, "-MOVED " + ss + " " + src.Addr() + "\r\n"},
		{rd, []string{"ASKING"}, "+OK\r\n"},
		{rd, []string{"GET", a}, "$1\r\n1\r\n"},
		{rd, []string{"GET", a}, "-MOVED " + ss + " " + src.Addr() + "\r\n"}, // ASKING is one-shot
		{rd, []string{"ASKING"}, "+OK\r\n"},
		{rd, []string{"MGET", a, b}, "-TRYAGAIN Multiple keys request during rehashing of slot\r\n"},
		{rd, []string{"ASKING"}, "+OK\r\n"},
		{rd, []string{"GET", "{m}missing"}, "$-1\r\n"},
	}
	for _, tc := range tests {
		if got := tc.r.do(tc.args...); got != tc.want {
			t.Errorf("%v = %q, want %q", tc.args, got, tc.want)
		}
	}
	if err := c.FinishMigration(slot); err != nil {
		t.Fatal(err)
	}
	if c.MasterOf(slot) != dst {
		t.Fatalf("owner after finish = %v", c.MasterOf(slot))
	}
	if got := rs.do("GET", b); got != "-MOVED "+ss+" "+dst.Addr()+"\r\n" {
		t.Errorf("source after finish = %q", got)
	}
	if got := rd.do("MGET", a, b); got != "*2\r\n$1\r\n1\r\n$1\r\n2\r\n" {
		t.Errorf("target after finish = %q", got)
	}
	if strings.Contains(rs.do("CLUSTER", "NODES"), "->-") {
		t.Error("migrating marker left after finish")
	}
	if !strings.Contains(rd.do("CLUSTER", "INFO"), "cluster_current_epoch:7\r\n") {
		t.Error("finish did not bump the epoch")
	}
	if err := c.FinishMigration(slot); !errors.Is(err, ErrBadState) {
		t.Errorf("second finish: %v", err)
	}
	if err := c.BeginMigration(slots.Count, dst); !errors.Is(err, ErrInvalidSlot) {
		t.Errorf("bad slot: %v", err)
	}
}

func TestFailoverClusterDownWindow(t *testing.T) {
	// Windows wide enough to be seen by a poller on a loaded 2-core machine:
	// MOVED-to-dead 450 ms, fail? 150 ms, CLUSTERDOWN 500 ms.
	c := New(t, Options{NodeTimeout: 300 * time.Millisecond, FailoverDelay: 500 * time.Millisecond})
	old := c.Masters()[1]
	replica := c.ReplicasOf(old)[0]
	other := c.Masters()[0]
	kOld, kOther := keyOn(t, c, old, "f"), keyOn(t, c, other, "g")
	ro := dialRaw(t, other.Addr())
	ro.do("SET", kOther, "x")
	dialRaw(t, old.Addr()).do("SET", kOld, "y")
	if err := c.WaitReplicated(context.Background()); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	type res struct {
		n   *Node
		err error
	}
	done := make(chan res, 1)
	go func() {
		n, err := c.Failover(ctx, old.Shard())
		done <- res{n, err}
	}()
	slotOld := strconv.Itoa(int(slots.Of(kOld)))
	var sawMovedToDead, sawDown, sawPFail bool
	var result res
loop:
	for {
		select {
		case result = <-done:
			break loop
		default:
		}
		switch got := ro.do("GET", kOld); got {
		case "-MOVED " + slotOld + " " + old.Addr() + "\r\n":
			sawMovedToDead = true
		case "-CLUSTERDOWN The cluster is down\r\n":
			sawDown = true
			// Every keyed command fails while down, even for slots
			// whose master is fine.
			if g := ro.do("GET", kOther); g != "-CLUSTERDOWN The cluster is down\r\n" && g != "$1\r\nx\r\n" {
				t.Errorf("GET on healthy shard while down = %q", g)
			}
		}
		if strings.Contains(ro.do("CLUSTER", "NODES"), "master,fail? ") {
			sawPFail = true
		}
		time.Sleep(2 * time.Millisecond)
	}
	if result.err != nil {
		t.Fatal(result.err)
	}
	if result.n != replica || replica.Role() != RoleMaster {
		t.Fatalf("promoted %v (role %s), want %v", result.n, replica.Role(), replica)
	}
	if !sawMovedToDead || !sawDown || !sawPFail {
		t.Errorf("timeline: MOVED-to-dead=%v CLUSTERDOWN=%v fail?=%v", sawMovedToDead, sawDown, sawPFail)
	}
	if got := dialRaw(t, replica.Addr()).do("GET", kOld); got != "$1\r\ny\r\n" {
		t.Errorf("promoted replica lost data: %q", got)
	}
	nodes := ro.do("CLUSTER", "NODES")
	for _, l := range strings.Split(nodes, "\n") {
		if strings.HasPrefix(l, old.ID()) {
			m := nodeLine.FindStringSubmatch(l)
			if m == nil || m[4] != "master,fail" || m[10] != "" || m[9] != "disconnected" {
				t.Errorf("old master line = %q", l)
			}
		}
		if strings.HasPrefix(l, replica.ID()) && !strings.Contains(l, " master - 0 ") {
			t.Errorf("promoted line = %q", l)
		}
	}
	if !strings.Contains(ro.do("CLUSTER", "INFO"), "cluster_current_epoch:7\r\ncluster_my_epoch:1\r\n") {
		t.Errorf("epochs after failover: %q", ro.do("CLUSTER", "INFO"))
	}
	if _, err := net.DialTimeout("tcp", old.Addr(), time.Second); err == nil {
		t.Error("dial to killed node succeeded")
	}
	// Restart: the old master comes back as a replica of its successor,
	// with the data resynced.
	if err := c.Restart(old); err != nil {
		t.Fatal(err)
	}
	if old.Role() != RoleReplica {
		t.Fatalf("restarted old master role = %s", old.Role())
	}
	rOld := dialRaw(t, old.Addr())
	if got := rOld.do("ROLE"); !strings.HasPrefix(got, "*5\r\n$5\r\nslave\r\n$9\r\n127.0.0.1\r\n:"+strconv.Itoa(replica.Port())+"\r\n$9\r\nconnected\r\n:") {
		t.Errorf("ROLE on restarted node = %q", got)
	}
	rOld.do("READONLY")
	if got := rOld.do("GET", kOld); got != "$1\r\ny\r\n" {
		t.Errorf("restarted replica data = %q", got)
	}
	info := rOld.do("INFO", "replication")
	if !strings.Contains(info, "role:slave\r\n") || !strings.Contains(info, "master_link_status:up\r\n") {
		t.Errorf("INFO replication = %q", info)
	}
	if err := c.Restart(old); !errors.Is(err, ErrBadState) {
		t.Errorf("Restart of a running node: %v", err)
	}
}

func TestNoReplicaClusterStaysDown(t *testing.T) {
	c := New(t, Options{Replicas: -1, NodeTimeout: 50 * time.Millisecond})
	if len(c.Nodes()) != 3 {
		t.Fatalf("%d nodes", len(c.Nodes()))
	}
	m := c.Masters()[2]
	if _, err := c.Failover(context.Background(), 2); !errors.Is(err, ErrNoReplica) {
		t.Fatalf("Failover without replica: %v", err)
	}
	if err := c.Kill(m); err != nil {
		t.Fatal(err)
	}
	r := dialRaw(t, c.Addrs()[0])
	pollUntil(t, 5*time.Second, "cluster down", func() bool {
		return r.do("GET", "anything") == "-CLUSTERDOWN The cluster is down\r\n"
	})
	if !strings.Contains(r.do("CLUSTER", "INFO"), "cluster_state:fail\r\n") {
		t.Error("cluster_state not fail")
	}
	if err := c.Restart(m); err != nil {
		t.Fatal(err)
	}
	pollUntil(t, 5*time.Second, "cluster ok", func() bool {
		return strings.HasPrefix(r.do("GET", "{x}"), "$-1") || strings.HasPrefix(r.do("GET", "{x}"), "-MOVED")
	})
}

func TestReplicationLagLosesWrites(t *testing.T) {
	c := New(t, Options{ReplicationLag: time.Second, NodeTimeout: 50 * time.Millisecond, FailoverDelay: 50 * time.Millisecond})
	m := c.Masters()[0]
	rep := c.ReplicasOf(m)[0]
	k := keyOn(t, c, m, "lag")
	rm, rr := dialRaw(t, m.Addr()), dialRaw(t, rep.Addr())
	rr.do("READONLY")
	start := time.Now()
	rm.do("SET", k, "v")
	if got := rr.do("GET", k); got != "$-1\r\n" && time.Since(start) < 900*time.Millisecond {
		t.Errorf("replica saw the write before the lag: %q", got)
	}
	if rep.Offset() >= m.Offset() {
		t.Errorf("replica offset %d not behind master %d", rep.Offset(), m.Offset())
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := c.WaitReplicated(ctx); err != nil {
		t.Fatal(err)
	}
	if got := rr.do("GET", k); got != "$1\r\nv\r\n" {
		t.Errorf("after WaitReplicated = %q", got)
	}
	// A write still in flight when the master dies is gone after the
	// failover.
	rm.do("SET", k, "lost")
	nm, err := c.Failover(ctx, m.Shard())
	if err != nil {
		t.Fatal(err)
	}
	if got := dialRaw(t, nm.Addr()).do("GET", k); got != "$1\r\nv\r\n" {
		t.Errorf("after failover = %q, want the last replicated value", got)
	}
}

func TestManualFailover(t *testing.T) {
	c := New(t, Options{ReplicationLag: 50 * time.Millisecond})
	m := c.Masters()[0]
	rep := c.ReplicasOf(m)[0]
	k := keyOn(t, c, m, "mf")
	dialRaw(t, m.Addr()).do("SET", k, "1")
	if err := c.ManualFailover(rep); err != nil {
		t.Fatal(err)
	}
	if rep.Role() != RoleMaster || m.Role() != RoleReplica || c.MasterOf(slots.Of(k)) != rep {
		t.Fatalf("roles after manual failover: %s %s", rep.Role(), m.Role())
	}
	// The replica caught up before taking over: no write lost.
	if got := dialRaw(t, rep.Addr()).do("GET", k); got != "$1\r\n1\r\n" {
		t.Errorf("GET on new master = %q", got)
	}
	rm := dialRaw(t, m.Addr())
	if got := rm.do("SET", k, "2"); got != "-MOVED "+strconv.Itoa(int(slots.Of(k)))+" "+rep.Addr()+"\r\n" {
		t.Errorf("write to demoted master = %q", got)
	}
	dialRaw(t, rep.Addr()).do("SET", k, "3")
	if err := c.WaitReplicated(context.Background()); err != nil {
		t.Fatal(err)
	}
	rm.do("READONLY")
	if got := rm.do("GET", k); got != "$1\r\n3\r\n" {
		t.Errorf("demoted master does not replicate: %q", got)
	}
	if err := c.ManualFailover(rep); !errors.Is(err, ErrBadState) {
		t.Errorf("ManualFailover of a master: %v", err)
	}
}

func TestHangResumeAndLatency(t *testing.T) {
	c := New(t, Options{NodeTimeout: 10 * time.Second})
	n := c.Masters()[0]
	r := dialRaw(t, n.Addr())
	if err := c.Hang(n); err != nil {
		t.Fatal(err)
	}
	// A hung node still accepts connections but answers nothing.
	r2 := dialRaw(t, n.Addr())
	_ = r2.nc.SetDeadline(time.Now().Add(150 * time.Millisecond))
	_, _ = r2.nc.Write(encode("PING"))
	if _, err := readRaw(r2.br); err == nil {
		t.Fatal("hung node answered")
	}
	_, _ = r.nc.Write(encode("PING"))
	if err := c.Resume(n); err != nil {
		t.Fatal(err)
	}
	if got, err := readRaw(r.br); err != nil || string(got) != "+PONG\r\n" {
		t.Fatalf("after resume: %q %v", got, err)
	}
	if err := c.SetLatency(n, 60*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	r.do("PING")
	if d := time.Since(start); d < 60*time.Millisecond {
		t.Errorf("PING took %v with 60ms latency", d)
	}
	if err := c.Resume(n); !errors.Is(err, ErrBadState) {
		t.Errorf("Resume of a running node: %v", err)
	}
	if err := c.Kill(&Node{}); !errors.Is(err, ErrInvalidNode) {
		t.Errorf("Kill of a foreign node: %v", err)
	}
}

func TestAuthAndConnectionCommands(t *testing.T) {
	c := New(t, Options{Password: "s3cret", Masters: 1, Replicas: -1})
	r := dialRaw(t, c.Addrs()[0])
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"nosuch", "a", "b"}, "-ERR unknown command 'nosuch', with args beginning with: 'a' 'b' \r\n"},
		{[]string{"GET", "k"}, "-NOAUTH Authentication required.\r\n"},
		{[]string{"PING"}, "-NOAUTH Authentication required.\r\n"},
		{[]string{"HELLO", "2"}, "-NOAUTH HELLO must be called with the client already authenticated, otherwise the HELLO AUTH <user> <pass> option can be used to authenticate the client and select the RESP protocol version at the same time\r\n"},
		{[]string{"AUTH", "wrong"}, "-WRONGPASS invalid username-password pair or user is disabled.\r\n"},
		{[]string{"AUTH", "bob", "s3cret"}, "-WRONGPASS invalid username-password pair or user is disabled.\r\n"},
		{[]string{"AUTH", "default", "s3cret"}, "+OK\r\n"},
		{[]string{"PING"}, "+PONG\r\n"},
		{[]string{"SELECT", "0"}, "+OK\r\n"},
		{[]string{"SELECT", "1"}, "-ERR SELECT is not allowed in cluster mode\r\n"},
		{[]string{"CLIENT", "SETNAME", "app"}, "+OK\r\n"},
		{[]string{"CLIENT", "GETNAME"}, "$3\r\napp\r\n"},
		{[]string{"CLIENT", "SETNAME", "a b"}, "-ERR Client names cannot contain spaces, newlines or special characters.\r\n"},
		{[]string{"HELLO", "3"}, "-NOPROTO unsupported protocol version\r\n"},
		{[]string{"GET"}, "-ERR wrong number of arguments for 'get' command\r\n"},
		{[]string{"CLUSTER", "KEYSLOT"}, "-ERR wrong number of arguments for 'cluster|keyslot' command\r\n"},
		{[]string{"CLUSTER", "bogus"}, "-ERR unknown subcommand 'bogus'. Try CLUSTER HELP.\r\n"},
	}
	for _, tc := range tests {
		if got := r.do(tc.args...); got != tc.want {
			t.Errorf("%v = %q, want %q", tc.args, got, tc.want)
		}
	}
	if got := r.do("HELLO", "2", "AUTH", "default", "s3cret", "SETNAME", "x"); !strings.Contains(got, "$4\r\nmode\r\n$7\r\ncluster\r\n") {
		t.Errorf("HELLO 2 = %q", got)
	}
	if got := r.do("QUIT"); got != "+OK\r\n" {
		t.Errorf("QUIT = %q", got)
	}
	if _, err := readRaw(r.br); err == nil {
		t.Error("connection still open after QUIT")
	}
}
