package topology

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/slotrouter/slotrouter/slots"
)

func readHand(t *testing.T, name string) []Node {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(fixtureDir, "handwritten", name))
	if err != nil {
		t.Fatal(err)
	}
	nodes, err := ParseClusterNodes(b)
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return nodes
}

func byID(t *testing.T, nodes []Node, prefix string) *Node {
	t.Helper()
	for i := range nodes {
		if strings.HasPrefix(nodes[i].ID, prefix) {
			return &nodes[i]
		}
	}
	t.Fatalf("no node %s", prefix)
	return nil
}

func TestParseRedis30(t *testing.T) {
	nodes := readHand(t, "redis-3.0.txt")
	if len(nodes) != 6 {
		t.Fatalf("%d nodes", len(nodes))
	}
	me := byID(t, nodes, "e7d1ee")
	if me.Addr != "127.0.0.1:7001" || me.CPort != 0 || me.Flags != Myself|Master || me.Slots[0] != (Range{0, 5460}) {
		t.Fatalf("%+v", me)
	}
	r := byID(t, nodes, "07c37d")
	if r.Role != RoleReplica || r.MasterID != me.ID || r.ConfigEpoch != 4 || !r.Connected {
		t.Fatalf("%+v", r)
	}
	s := SnapshotFromNodes(nodes)
	if s.Covered() != slots.Count || s.Owner(12000).Master.Addr != "127.0.0.1:7003" || len(s.Owner(0).Replicas) != 1 {
		t.Fatal(s)
	}
}

func TestParseRedis72RC(t *testing.T) {
	nodes := readHand(t, "redis-7.2-rc1.txt") // CRLF, trailing blank line
	if len(nodes) != 3 {
		t.Fatalf("%d nodes", len(nodes))
	}
	me := byID(t, nodes, "e7d1ee")
	if me.Addr != "127.0.0.1:30001" || me.CPort != 40001 || me.Hostname != "" || me.ShardID != "4ba4b4ad3b1a5e4b2a4f8ba2f7b9d4e8a0b1c2d3" {
		t.Fatalf("%+v", me)
	}
	n2 := byID(t, nodes, "67ed2d")
	if n2.Hostname != "node-2.example.test" || n2.TLSPort != 30102 || n2.Slots[0] != (Range{5461, 10922}) {
		t.Fatalf("%+v", n2)
	}
	rc3 := readHand(t, "redis-7.2-rc3.txt")
	if rc3[0].Hostname != "" || rc3[0].Addr != "127.0.0.1:30001" || rc3[1].Hostname != "node-4.example.test" {
		t.Fatalf("%+v", rc3)
	}
}

func TestParseValkey8(t *testing.T) {
	nodes := readHand(t, "valkey-8-nodes-conf.txt")
	me := byID(t, nodes, "e7d1ee")
	if me.Hostname != "valkey-1.example.test" || me.Addr != "10.0.0.1:6379" || me.Migrating[8191] != "67ed2db8d677e59ec4a4cefb06858cf2a1a89fa1" {
		t.Fatalf("%+v", me)
	}
	if r := byID(t, nodes, "07c37d"); r.Role != RoleReplica || r.Flags&NoFailover == 0 || r.Hostname != "" {
		t.Fatalf("replica keyword: %+v", r)
	}
	na := byID(t, nodes, "2b47a6")
	if na.Addr != "" || na.Port != 0 || na.Flags&NoAddr == 0 || na.Routable() {
		t.Fatalf("noaddr: %+v", na)
	}
	if hs := byID(t, nodes, "adada4"); hs.Routable() || hs.Flags&Handshake == 0 {
		t.Fatalf("handshake: %+v", hs)
	}
	u := byID(t, nodes, "5a2f5e")
	if u.Flags&Unknown == 0 || u.Flags&PFail == 0 || !u.Routable() {
		t.Fatalf("unknown flag / fail? must stay routable: %+v %s", u, u.Flags)
	}
	s := SnapshotFromNodes(nodes)
	if s.Node("adada47d4ac81339dd13e83d4c09cb54aefaebdb") != nil {
		t.Fatal("handshake node must not join the snapshot")
	}
	if s.Owner(0).Master.ID != me.ID || s.Owner(16383).Master.Flags&NoFailover == 0 {
		t.Fatal(s)
	}
}

func TestParseIPv6AndFreshNode(t *testing.T) {
	nodes := readHand(t, "ipv6-and-fresh.txt")
	me := byID(t, nodes, "e7d1ee")
	if me.IP != "" || me.Port != 30400 || me.CPort != 40400 || me.Addr != "" {
		t.Fatalf("fresh myself: %+v", me)
	}
	v6 := byID(t, nodes, "67ed2d")
	if v6.IP != "2001:db8::2" || v6.Port != 6379 || v6.Addr != "[2001:db8::2]:6379" {
		t.Fatalf("ipv6: %+v", v6)
	}
	want := []Range{{0, 100}, {102, 102}, {200, 16383}}
	for i, r := range want {
		if v6.Slots[i] != r {
			t.Fatalf("slots %v", v6.Slots)
		}
	}
	lo := byID(t, nodes, "07c37d")
	if lo.Addr != "[::1]:6380" || lo.Hostname != "v6.example.test" {
		t.Fatalf("%+v", lo)
	}
}

func TestParseMigrationMarkersReal(t *testing.T) {
	dir := filepath.Join(fixtureDir, "02-migrating")
	parse := func(port string) *Node {
		b, err := os.ReadFile(filepath.Join(dir, "nodes-"+port+".txt"))
		if err != nil {
			t.Fatal(err)
		}
		nodes, err := ParseClusterNodes(b)
		if err != nil {
			t.Fatal(err)
		}
		for i := range nodes {
			if nodes[i].Flags&Myself != 0 {
				return &nodes[i]
			}
		}
		t.Fatal("no myself")
		return nil
	}
	src, dst, third := parse("30101"), parse("30102"), parse("30103")
	if src.Migrating[100] != dst.ID || len(src.Importing) != 0 {
		t.Fatalf("source: %v %v", src.Migrating, src.Importing)
	}
	if dst.Importing[100] != src.ID || dst.Migrating[5461] != third.ID {
		t.Fatalf("target: %v %v", dst.Importing, dst.Migrating)
	}
	if third.Importing[200] != src.ID || third.Importing[5461] != dst.ID {
		t.Fatalf("third: %v", third.Importing)
	}
	// Markers are not ownership.
	if len(src.Slots) != 1 || src.Slots[0] != (Range{0, 5460}) {
		t.Fatalf("%v", src.Slots)
	}
}

func TestParseClusterNodesErrors(t *testing.T) {
	const id = "e7d1eecce10fd6bb5eb35b9f99a514335d9ba9ca"
	good := id + " 127.0.0.1:30001@40001 myself,master - 0 0 1 connected 0-5460"
	cases := []struct {
		name, text, field string
		line              int
	}{
		{"short", id + " 127.0.0.1:1 master -", "ping-sent", 1},
		{"bad id", "xyz 127.0.0.1:1@2 master - 0 0 1 connected", "id", 1},
		{"no port", id + " 127.0.0.1 master - 0 0 1 connected", "address", 1},
		{"bad port", id + " 127.0.0.1:99999@1 master - 0 0 1 connected", "address", 1},
		{"bad cport", id + " 127.0.0.1:1@x master - 0 0 1 connected", "address", 1},
		{"aux without =", id + " 127.0.0.1:1@2,h,junk master - 0 0 1 connected", "address", 1},
		{"empty flag", id + " 127.0.0.1:1@2 master,,slave - 0 0 1 connected", "flags", 1},
		{"bad master", id + " 127.0.0.1:1@2 slave abc 0 0 1 connected", "master", 1},
		{"bad ping", id + " 127.0.0.1:1@2 master - -1 0 1 connected", "ping-sent", 1},
		{"bad epoch", id + " 127.0.0.1:1@2 master - 0 0 x connected", "config-epoch", 1},
		{"bad link", id + " 127.0.0.1:1@2 master - 0 0 1 up", "link-state", 1},
		{"slot too big", good + " 16384", "slots", 1},
		{"reversed range", good + " 10-5", "slots", 1},
		{"bad marker", good + " [5-x-" + id + "]", "slots", 1},
		{"unterminated marker", good + " [5->-" + id, "slots", 1},
		{"second line", good + "\n\nbogus", "address", 3},
	}
	for _, c := range cases {
		_, err := ParseClusterNodes([]byte(c.text))
		var pe *ParseError
		if !errors.As(err, &pe) || !errors.Is(err, ErrMalformed) {
			t.Fatalf("%s: want *ParseError, got %v", c.name, err)
		}
		if pe.Field != c.field || pe.Line != c.line || pe.Source != "CLUSTER NODES" {
			t.Errorf("%s: got line %d field %q (%v)", c.name, pe.Line, pe.Field, err)
		}
	}
	if nodes, err := ParseClusterNodes([]byte("\r\n\n")); err != nil || len(nodes) != 0 {
		t.Fatalf("blank input: %v %v", nodes, err)
	}
}

func TestFlagsString(t *testing.T) {
	if got := (Myself | Master | PFail).String(); got != "myself,master,fail?" {
		t.Fatal(got)
	}
}
