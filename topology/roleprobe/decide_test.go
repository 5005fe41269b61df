package roleprobe

import (
	"errors"
	"slices"
	"testing"
)

func master(addr string, off int64) NodeStatus {
	return NodeStatus{Addr: addr, Role: "master", Writable: true, Offset: off}
}

func lineage(n NodeStatus, id, id2 string) NodeStatus {
	n.ReplID, n.ReplID2 = id, id2
	return n
}

func replica(addr, of string, up bool) NodeStatus {
	return NodeStatus{Addr: addr, Role: "slave", MasterAddr: of, LinkUp: up}
}

func down(addr string) NodeStatus {
	return NodeStatus{Addr: addr, Err: errors.New("connection refused")}
}

func TestDecide(t *testing.T) {
	const a, b, c, d = "10.0.0.1:6379", "10.0.0.2:6379", "10.0.0.3:6379", "10.0.0.4:6379"
	tests := []struct {
		name     string
		nodes    []NodeStatus
		master   string
		replicas []string
		rule     string
		split    bool
	}{
		{"single", []NodeStatus{master(a, 10), replica(b, a, true), replica(c, a, true)}, a, []string{b, c}, RuleSingle, false},
		{"replica link down is not routable", []NodeStatus{master(a, 10), replica(b, a, false), replica(c, a, true)}, a, []string{c}, RuleSingle, false},
		{"none", []NodeStatus{down(a), replica(b, a, false), replica(c, a, false)}, "", nil, RuleNone, false},
		{"followers win over offset", []NodeStatus{master(a, 100), master(b, 5), replica(c, b, true)}, b, []string{c}, RuleFollowers, true},
		{"replica of loser is dropped", []NodeStatus{master(a, 1), master(b, 1), replica(c, b, true), replica(d, b, true)}, b, []string{c, d}, RuleFollowers, true},
		{"loser's follower excluded", []NodeStatus{master(a, 1), master(b, 1), replica(c, b, true), replica(d, b, true), replica("10.0.0.5:6379", a, true)}, b, []string{c, d}, RuleFollowers, true},
		{"offset never decides", []NodeStatus{master(a, 7), master(b, 9)}, "", nil, RuleTie, true},
		{"lineage: promoted replica wins with no replicas", []NodeStatus{lineage(master(a, 90), "old", ""), lineage(master(b, 50), "new", "old")}, b, nil, RuleLineage, true},
		{"lineage beats followers", []NodeStatus{lineage(master(a, 90), "old", ""), lineage(master(b, 50), "new", "old"), replica(c, a, true), replica(d, a, true)}, b, nil, RuleLineage, true},
		{"lineage chain", []NodeStatus{lineage(master(a, 9), "r1", ""), lineage(master(b, 9), "r2", "r1"), lineage(master(c, 9), "r3", "r2")}, c, nil, RuleLineage, true},
		{"unrelated histories: followers", []NodeStatus{lineage(master(a, 90), "x", ""), lineage(master(b, 5), "y", "z"), replica(c, b, true)}, b, []string{c}, RuleFollowers, true},
		{"unrelated histories, no followers: hold", []NodeStatus{lineage(master(a, 90), "x", ""), lineage(master(b, 5), "y", "z")}, "", nil, RuleTie, true},
		{"two promoted from one master: followers", []NodeStatus{lineage(master(a, 1), "n1", "old"), lineage(master(b, 1), "n2", "old"), replica(c, a, true)}, a, []string{c}, RuleFollowers, true},
		{"keydb active-active", []NodeStatus{{Addr: a, Role: "active-replica", Writable: true, MasterAddr: b, LinkUp: true}, {Addr: b, Role: "active-replica", Writable: true, MasterAddr: a, LinkUp: true}}, a, nil, RuleActive, true},
		{"tie refuses", []NodeStatus{master(a, 9), master(b, 9), replica(c, a, true), replica(d, b, true)}, "", nil, RuleTie, true},
		{"tie at the top with a third worse", []NodeStatus{master(a, 9), master(b, 9), master(c, 1)}, "", nil, RuleTie, true},
		{"outvoted restarted old master", []NodeStatus{master(a, 0), down(b), replica(c, b, false), replica(d, b, false)}, "", nil, RuleOutvoted, false},
		{"unlisted master address does not outvote", []NodeStatus{master(a, 0), replica(c, "node-a:6379", true)}, a, []string{c}, RuleSingle, false},
		{"keydb active replicas", []NodeStatus{{Addr: a, Role: "active-replica", Writable: true, MasterAddr: b, LinkUp: true, Offset: 3}}, a, nil, RuleSingle, false},
		{"sentinel ignored", []NodeStatus{{Addr: a, Role: "sentinel"}, master(b, 1)}, b, nil, RuleSingle, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := Decide(tt.nodes)
			if d.Master != tt.master || d.Rule != tt.rule || !slices.Equal(d.Replicas, tt.replicas) {
				t.Fatalf("Decide = master %q rule %q replicas %v; want %q %q %v", d.Master, d.Rule, d.Replicas, tt.master, tt.rule, tt.replicas)
			}
			if (d.SplitBrain != nil) != tt.split {
				t.Fatalf("SplitBrain = %v, want split %v", d.SplitBrain, tt.split)
			}
			if d.SplitBrain != nil {
				if d.SplitBrain.Chosen != d.Master {
					t.Fatalf("SplitBrain.Chosen = %q, master %q", d.SplitBrain.Chosen, d.Master)
				}
				if got := errors.Is(d.SplitBrain, ErrNoMaster); got != (d.Master == "") {
					t.Fatalf("errors.Is(ErrNoMaster) = %v with master %q", got, d.Master)
				}
			}
		})
	}
}

func TestParseRole(t *testing.T) {
	var st NodeStatus
	if err := parseRole([]any{"master", int64(42), []any{[]any{"127.0.0.1", "7001", "42"}}}, &st); err != nil || !st.Writable || st.Offset != 42 {
		t.Fatalf("master: %+v %v", st, err)
	}
	st = NodeStatus{}
	if err := parseRole([]any{"slave", "127.0.0.1", int64(7000), "connected", int64(40)}, &st); err != nil ||
		st.Writable || st.MasterAddr != "127.0.0.1:7000" || !st.LinkUp || st.Offset != 40 {
		t.Fatalf("slave: %+v %v", st, err)
	}
	st = NodeStatus{}
	if err := parseRole([]any{"slave", "127.0.0.1", int64(7000), "connect", int64(-1)}, &st); err != nil || st.LinkUp {
		t.Fatalf("slave connecting: %+v %v", st, err)
	}
	st = NodeStatus{}
	if err := parseRole([]any{"active-replica", "10.0.0.2", int64(6379), "connected", int64(5)}, &st); err != nil || !st.Writable {
		t.Fatalf("active-replica: %+v %v", st, err)
	}
	for _, bad := range []any{nil, "OK", []any{}, []any{int64(1)}, []any{"slave", "x"}, []any{"wizard"}} {
		var st NodeStatus
		var re *ReplyError
		if err := parseRole(bad, &st); !errors.As(err, &re) {
			t.Errorf("parseRole(%#v) = %v, want *ReplyError", bad, err)
		}
	}
}

func TestParseInfo(t *testing.T) {
	var st NodeStatus
	master := "# Replication\r\nrole:master\r\nconnected_slaves:1\r\nslave0:ip=127.0.0.1,port=7001,state=online,offset=98,lag=0\r\nmaster_repl_offset:98\r\n"
	if err := parseInfo(master, &st); err != nil || !st.Writable || st.Offset != 98 || st.Via != "INFO" {
		t.Fatalf("master: %+v %v", st, err)
	}
	st = NodeStatus{}
	slave := "# Replication\r\nrole:slave\r\nmaster_host:127.0.0.1\r\nmaster_port:7000\r\nmaster_link_status:up\r\nslave_repl_offset:98\r\n"
	if err := parseInfo(slave, &st); err != nil || st.Writable || st.MasterAddr != "127.0.0.1:7000" || !st.LinkUp || st.Offset != 98 {
		t.Fatalf("slave: %+v %v", st, err)
	}
	st = NodeStatus{}
	if err := parseInfo("# Replication\nrole:active-replica\nmaster_host:10.0.0.1\nmaster_port:6379\nmaster_link_status:up\n", &st); err != nil || !st.Writable {
		t.Fatalf("active-replica: %+v %v", st, err)
	}
	for _, bad := range []any{nil, int64(1), "# Replication\r\n", "role:sentinel\r\n"} {
		var st NodeStatus
		var re *ReplyError
		if err := parseInfo(bad, &st); !errors.As(err, &re) {
			t.Errorf("parseInfo(%#v) = %v, want *ReplyError", bad, err)
		}
	}
}
