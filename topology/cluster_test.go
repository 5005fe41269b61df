package topology

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/slotrouter/slotrouter/internal/redistest"
	"github.com/slotrouter/slotrouter/slots"
)

// rawFetch reads CLUSTER NODES over a fresh connection per call. A pooled
// client would hide exactly what these tests watch: go-redis backs off
// dialing a node after errors, so a restarted node's first answers (the
// stale ones) would never be seen.
func rawFetch(ctx context.Context, addr string) ([]byte, error) {
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	if dl, ok := ctx.Deadline(); ok {
		_ = conn.SetDeadline(dl)
	}
	if _, err := io.WriteString(conn, "*2\r\n$7\r\nCLUSTER\r\n$5\r\nNODES\r\n"); err != nil {
		return nil, err
	}
	r := bufio.NewReader(conn)
	line, err := r.ReadString('\n')
	if err != nil {
		return nil, err
	}
	if !strings.HasPrefix(line, "$") {
		return nil, fmt.Errorf("%s: %s", addr, strings.TrimSpace(line))
	}
	n, err := strconv.Atoi(strings.TrimSpace(line[1:]))
	if err != nil || n < 0 || n > 64<<20 {
		return nil, fmt.Errorf("%s: bad bulk header %q", addr, line)
	}
	buf := make([]byte, n+2)
	if _, err := io.ReadFull(r, buf); err != nil {
		return nil, err
	}
	return buf[:n], nil
}

// deadAddr is a 127.0.0.1 port nothing listens on.
func deadAddr(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

func checkAgainstHarness(t *testing.T, c *redistest.Cluster, s *Snapshot) {
	t.Helper()
	for slot := 0; slot < slots.Count; slot += 97 {
		want := c.MasterOf(slot)
		got := s.Owner(slots.Slot(slot))
		if got == nil || got.Master.Addr != want.Addr || !got.Master.Routable() {
			t.Fatalf("slot %d: got %v, cluster says %s\n%s", slot, got, want.Addr, s)
		}
	}
	for _, m := range c.Masters() {
		sh := s.ShardOf(m.Addr)
		reps := c.ReplicasOf(m)
		if sh == nil || len(sh.Replicas) != len(reps) {
			t.Fatalf("shard of %s: %+v, want %d replicas", m.Addr, sh, len(reps))
		}
		for _, r := range reps {
			if s.ShardOf(r.Addr) != sh || !s.Node(r.Addr).Routable() {
				t.Fatalf("replica %s not attached to %s", r.Addr, m.Addr)
			}
		}
	}
}

func TestClusterDiscoverSeedsAndMigration(t *testing.T) {
	redistest.Require(t)
	c := redistest.StartCluster(t, redistest.ClusterOptions{Masters: 3, Replicas: 1, NodeTimeout: 2 * time.Second})
	ctx := context.Background()

	s, rep, err := Discover(ctx, DiscoverOptions{Seeds: c.Addrs(), Fetch: rawFetch})
	if err != nil {
		t.Fatal(err)
	}
	if s.Covered() != slots.Count || len(rep.Answered) != 6 || rep.DisagreeingSlots != 0 || len(rep.Failed) != 0 {
		t.Fatalf("%s %+v", s, rep)
	}
	checkAgainstHarness(t, c, s)

	// A dead seed and a hostname seed: the dead one is an error, the
	// hostname expands to 127.0.0.1 (and ::1 if the resolver gives it,
	// which refuses: nothing listens there).
	m0 := c.Masters()[0]
	dead := deadAddr(t)
	s, rep, err = Discover(ctx, DiscoverOptions{Seeds: []string{dead, "localhost:" + strconv.Itoa(m0.Port)}, Fetch: rawFetch})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Errors[dead] == nil || !contains(rep.Answered, m0.Addr) {
		t.Fatalf("%+v", rep)
	}
	checkAgainstHarness(t, c, s)

	// Migrating slot: markers on source and target, owner unchanged until
	// SETSLOT NODE, then the target (its epoch is bumped).
	src, dst := c.MasterOf(100), c.MasterOf(10000)
	c.BeginMigration(100, src, dst)
	s, _, err = Discover(ctx, DiscoverOptions{Seeds: c.Addrs(), Fetch: rawFetch, Previous: s})
	if err != nil {
		t.Fatal(err)
	}
	srcN, dstN := s.Node(src.Addr), s.Node(dst.Addr)
	if srcN.Migrating[100] != dstN.ID || dstN.Importing[100] != srcN.ID || s.Owner(100).Master != srcN {
		t.Fatalf("migrating view: %v %v %s", srcN.Migrating, dstN.Importing, s)
	}
	c.FinishMigration(100, src, dst)
	deadline := time.Now().Add(10 * time.Second)
	for {
		s, _, err = Discover(ctx, DiscoverOptions{Seeds: c.Addrs(), Fetch: rawFetch, Previous: s})
		if err == nil && s.Owner(100).Master.Addr == dst.Addr && len(s.Node(dst.Addr).Importing) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("slot 100 never moved to %s: %v %s", dst.Addr, err, s)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if s.Owner(99).Master.Addr != src.Addr || s.Owner(101).Master.Addr != src.Addr {
		t.Fatal(s)
	}
}

// observation is one Discover result of the background poller.
type observation struct {
	at    time.Time
	owner string // master ID of the watched slot
	ok    bool   // that master is routable
}

func TestClusterFailoverAndStaleMaster(t *testing.T) {
	redistest.Require(t)
	c := redistest.StartCluster(t, redistest.ClusterOptions{Masters: 3, Replicas: 1, NodeTimeout: 2 * time.Second})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	old := c.Masters()[1]
	oldID := old.ID
	const slot = 8000
	if c.MasterOf(slot) != old {
		t.Fatalf("slot %d is not on %s", slot, old.Addr)
	}
	seeds := c.Addrs()

	// The poller runs Discover every 20 ms, each round seeded with every
	// address (the dead one included) and the previous view.
	var (
		mu       sync.Mutex
		history  []observation
		interval atomic.Int64
	)
	interval.Store(int64(20 * time.Millisecond))
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		var prev *Snapshot
		for {
			s, _, err := Discover(ctx, DiscoverOptions{Seeds: seeds, Fetch: rawFetch, Previous: prev, Timeout: 500 * time.Millisecond})
			if err == nil {
				prev = s
				m := s.Owner(slot).Master
				mu.Lock()
				history = append(history, observation{time.Now(), m.ID, m.Routable()})
				mu.Unlock()
			}
			select {
			case <-stop:
				return
			case <-time.After(time.Duration(interval.Load())):
			}
		}
	}()
	stopPoller := sync.OnceFunc(func() { close(stop); <-done })
	defer stopPoller()

	killed := time.Now()
	old.Kill()
	promoted, agreedAt := c.WaitPromoted(ctx, old)
	t.Logf("failover: cluster shows %s promoted %v after the kill", promoted.Addr, agreedAt.Sub(killed).Round(time.Millisecond))

	// Wait (bounded) until the poller has seen the promoted replica.
	var seenAt time.Time
	for deadline := time.Now().Add(5 * time.Second); seenAt.IsZero() && time.Now().Before(deadline); {
		mu.Lock()
		for _, o := range history {
			if o.at.After(killed) && o.owner == promoted.ID && o.ok {
				seenAt = o.at
				break
			}
		}
		mu.Unlock()
		time.Sleep(10 * time.Millisecond)
	}
	if seenAt.IsZero() {
		t.Fatalf("Discover never showed %s as owner of %d", promoted.Addr, slot)
	}
	lag := seenAt.Sub(agreedAt)
	t.Logf("Discover showed the new owner %v after the cluster agreed", lag.Round(time.Millisecond))
	if lag >= time.Second {
		t.Fatalf("view lagged the cluster by %v (limit 1 s)", lag)
	}

	// Restart the ex-master and poll as fast as possible while it rejoins:
	// its stale claim (lower epoch) must never win.
	interval.Store(0)
	mu.Lock()
	restartIdx := len(history)
	mu.Unlock()
	var staleSeen atomic.Int32
	watch, watchDone := make(chan struct{}), make(chan struct{})
	go func() {
		// Independently sample the restarted node's own answer to show
		// whether the stale window was observed at all.
		defer close(watchDone)
		for {
			select {
			case <-watch:
				return
			default:
			}
			fctx, fcancel := context.WithTimeout(ctx, 200*time.Millisecond)
			b, err := rawFetch(fctx, old.Addr)
			fcancel()
			if err == nil {
				if nodes, err := ParseClusterNodes(b); err == nil {
					for _, n := range nodes {
						if n.Flags&Myself != 0 && n.Role == RoleMaster && len(n.Slots) > 0 {
							staleSeen.Add(1)
						}
					}
				}
			}
		}
	}()
	restarted := time.Now()
	old.Restart(t)
	deadline := time.Now().Add(15 * time.Second)
	var final *Snapshot
	for {
		s, _, err := Discover(ctx, DiscoverOptions{Seeds: seeds, Fetch: rawFetch})
		if err == nil {
			n := s.Node(oldID)
			if n != nil && n.Role == RoleReplica && n.MasterID == promoted.ID && n.Routable() && time.Since(restarted) > 2*time.Second {
				final = s
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("restarted %s never became a routable replica of %s: %v %v", old.Addr, promoted.Addr, err, s)
		}
		time.Sleep(20 * time.Millisecond)
	}
	close(watch)
	<-watchDone
	stopPoller()

	mu.Lock()
	after := history[restartIdx:]
	mu.Unlock()
	for _, o := range after {
		if o.owner != promoted.ID {
			t.Fatalf("at +%v after restart the view gave slot %d to %s, not %s", o.at.Sub(restarted), slot, o.owner, promoted.ID)
		}
	}
	t.Logf("%d Discover rounds during the rejoin, all kept %s; the restarted node answered with its stale master claim %d times",
		len(after), promoted.Addr, staleSeen.Load())
	if len(after) < 10 {
		t.Fatalf("only %d rounds observed during the rejoin", len(after))
	}
	checkAgainstHarness(t, c, final)
}
