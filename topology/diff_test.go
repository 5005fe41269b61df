package topology

import (
	"context"
	"strings"
	"testing"
)

func discoverStage(t *testing.T, stage string) *Snapshot {
	t.Helper()
	views := stageViews(t, stage)
	s, _, err := Discover(context.Background(), DiscoverOptions{Seeds: keys(views), Fetch: fixtureFetcher(views)})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func kinds(cs []Change) string {
	var out []string
	for _, c := range cs {
		out = append(out, c.String())
	}
	return strings.Join(out, "\n")
}

func find(cs []Change, k ChangeKind, nodeID string) *Change {
	for i := range cs {
		c := &cs[i]
		if c.Kind != k {
			continue
		}
		if nodeID == "" || (c.Node != nil && c.Node.ID == nodeID) || (c.To != nil && c.To.ID == nodeID) {
			return c
		}
	}
	return nil
}

func TestDiffLifecycle(t *testing.T) {
	healthy := discoverStage(t, "01-healthy")
	migrated := discoverStage(t, "03-after-migration")
	pfail := discoverStage(t, "04-pfail")
	failed := discoverStage(t, "05-fail")
	over := discoverStage(t, "06-after-failover")
	back := discoverStage(t, "08-old-master-back")

	if cs := Diff(healthy, healthy); len(cs) != 0 {
		t.Fatalf("no change expected:\n%s", kinds(cs))
	}
	cs := Diff(healthy, migrated)
	c := find(cs, SlotsMoved, id30102)
	if len(cs) != 1 || c == nil || c.From.ID != id30101 || len(c.Ranges) != 1 || c.Ranges[0] != (Range{100, 100}) {
		t.Fatalf("resharding:\n%s", kinds(cs))
	}
	if cs := Diff(migrated, pfail); len(cs) != 0 {
		t.Fatalf("fail? is not a change:\n%s", kinds(cs))
	}
	cs = Diff(pfail, failed)
	if len(cs) != 1 || find(cs, NodeFailed, id30102) == nil {
		t.Fatalf("fail:\n%s", kinds(cs))
	}
	cs = Diff(failed, over)
	c = find(cs, MasterChanged, id30106)
	if c == nil || c.From.ID != id30102 || len(c.Ranges) != 2 || cs[0].Kind != MasterChanged {
		t.Fatalf("failover:\n%s", kinds(cs))
	}
	if find(cs, ReplicaRemoved, id30106) == nil {
		t.Fatalf("promoted replica leaves the old shard:\n%s", kinds(cs))
	}
	want := "MasterChanged 100,5461-10922 (5463 slots) 127.0.0.1:30102(b1dac982) -> 127.0.0.1:30106(350dae54)"
	if c.String() != want {
		t.Fatalf("got %q", c.String())
	}
	cs = Diff(over, back)
	if find(cs, NodeRecovered, id30102) == nil || find(cs, ReplicaAdded, id30102) == nil || find(cs, SlotsMoved, "") != nil {
		t.Fatalf("old master back:\n%s", kinds(cs))
	}
	cs = Diff(nil, healthy)
	if n := strings.Count(kinds(cs), "NodeAdded"); n != 6 || find(cs, SlotsMoved, "") == nil {
		t.Fatalf("from nothing:\n%s", kinds(cs))
	}
	cs = Diff(healthy, nil)
	if n := strings.Count(kinds(cs), "NodeRemoved"); n != 6 {
		t.Fatalf("to nothing:\n%s", kinds(cs))
	}
}

func TestSnapshotLookups(t *testing.T) {
	s := discoverStage(t, "06-after-failover")
	if s.Node("127.0.0.1:30106").ID != id30106 || s.Node(id30106).Addr != "127.0.0.1:30106" || s.Node("nope") != nil {
		t.Fatal("lookup")
	}
	if s.Owner(16384) != nil || s.Owner(0).Master.ID != id30101 {
		t.Fatal("owner")
	}
	if s.Epoch() != 8 || s.Version() != 1 || s.Created().IsZero() {
		t.Fatal(s.Epoch(), s.Version())
	}
	str := s.String()
	if !strings.Contains(str, "16384/16384") || !strings.Contains(str, "[- 127.0.0.1:30102(b1dac982) FAIL]") {
		t.Fatal(str)
	}
	// Overlapping input: higher epoch wins, Ranges follow the table.
	a := &Node{ID: id30101, Addr: "a:1", ConfigEpoch: 1}
	b := &Node{ID: id30102, Addr: "b:1", ConfigEpoch: 2}
	o := NewSnapshot([]Shard{{Master: a, Ranges: []Range{{0, 200}}}, {Master: b, Ranges: []Range{{100, 150}}}, {Ranges: []Range{{0, 16383}}}})
	if o.Owner(120).Master.ID != id30102 || len(o.Shards()) != 2 || len(o.Shards()[0].Ranges) != 2 || o.Covered() != 201 {
		t.Fatal(o)
	}
	// A shard repeating its own slots (a malformed reply) is not an overlap.
	d := NewSnapshot([]Shard{{Master: a, Ranges: []Range{{0, 10}, {5, 5}, {0, 3}}}})
	if d.Covered() != 11 || len(d.Shards()[0].Ranges) != 1 {
		t.Fatal(d)
	}
	// The snapshot owns copies: changing the input changes nothing.
	a.Addr = "changed:1"
	if o.Node(id30101).Addr != "a:1" {
		t.Fatal("snapshot shares caller's node")
	}
}
