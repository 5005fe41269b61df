package topology

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
)

func replyTree(t *testing.T, stage, name string) any {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(fixtureDir, stage, name))
	if err != nil {
		t.Fatal(err)
	}
	v, err := decodeRESP(b)
	if err != nil {
		t.Fatalf("%s/%s: %v", stage, name, err)
	}
	return v
}

func nodeByPort(t *testing.T, shards []Shard, port int) *Node {
	t.Helper()
	for _, sh := range shards {
		if sh.Master.Port == port {
			return sh.Master
		}
		for _, r := range sh.Replicas {
			if r.Port == port {
				return r
			}
		}
	}
	return nil
}

func TestSlotsEndpoints(t *testing.T) {
	// Hostname endpoints; 30104 has no hostname, so its endpoint is "?".
	for _, ext := range []string{".resp", ".resp3"} {
		sh, err := ParseClusterSlots(replyTree(t, "09-hostnames", "slots-30101"+ext))
		if err != nil {
			t.Fatal(err)
		}
		m := nodeByPort(t, sh, 30101)
		if m.Addr != "node-30101.example.test:30101" || m.IP != "127.0.0.1" || m.Hostname != "node-30101.example.test" {
			t.Fatalf("%s: %+v", ext, m)
		}
		q := nodeByPort(t, sh, 30104)
		if q == nil || q.Addr != "" || q.Routable() || q.IP != "127.0.0.1" {
			t.Fatalf("%s: '?' endpoint must be kept but unroutable: %+v", ext, q)
		}
	}
	// NULL endpoints (unknown-endpoint): the asked host, or nothing.
	for _, ext := range []string{".resp", ".resp3"} {
		tree := replyTree(t, "10-unknown-endpoint", "slots-30101"+ext)
		sh, err := ParseClusterSlots(tree)
		if err != nil {
			t.Fatal(err)
		}
		if m := nodeByPort(t, sh, 30101); m.Addr != "" || m.Routable() || m.Hostname != "node-30101.example.test" {
			t.Fatalf("%s: NULL endpoint without AskedHost: %+v", ext, m)
		}
		sh, err = ParseClusterSlotsWith(tree, ReplyOptions{AskedHost: "10.1.2.3"})
		if err != nil {
			t.Fatal(err)
		}
		if m := nodeByPort(t, sh, 30106); m.Addr != "10.1.2.3:30106" || !m.Routable() {
			t.Fatalf("%s: %+v", ext, m)
		}
	}
	// SHARDS sends "" instead of NULL.
	sh, err := ParseClusterShardsWith(replyTree(t, "10-unknown-endpoint", "shards-30101.resp3"), ReplyOptions{AskedHost: "::1"})
	if err != nil {
		t.Fatal(err)
	}
	if m := nodeByPort(t, sh, 30103); m.Addr != "[::1]:30103" {
		t.Fatalf("%+v", m)
	}
}

func TestSlotsNoaddrReplicaDropped(t *testing.T) {
	for _, name := range []string{"slots-30101.resp", "slots-30101.resp3", "shards-30101.resp", "shards-30101.resp3"} {
		parse := ParseClusterSlots
		if name[:6] == "shards" {
			parse = ParseClusterShards
		}
		sh, err := parse(replyTree(t, "11-noaddr", name))
		if err != nil {
			t.Fatal(err)
		}
		s := NewSnapshot(sh)
		if n := s.Node("677013bc5ede2c122be30aa097ca3cc1c0cb2c48"); n != nil {
			t.Fatalf("%s: noaddr replica kept: %+v", name, n)
		}
		if own := s.Owner(16000); len(own.Replicas) != 0 || own.Master.Port != 30103 {
			t.Fatalf("%s: %+v", name, own)
		}
	}
}

func TestShardsHealth(t *testing.T) {
	// 7.0 after failover: the dead ex-master is a shard of its own, health fail.
	for _, ext := range []string{".resp", ".resp3"} {
		sh, err := ParseClusterShards(replyTree(t, "06-after-failover", "shards-30101"+ext))
		if err != nil {
			t.Fatal(err)
		}
		dead := nodeByPort(t, sh, 30102)
		if dead == nil || !dead.Failed() || dead.Routable() || len(dead.Slots) != 0 || dead.Health != "fail" {
			t.Fatalf("%s: %+v", ext, dead)
		}
		s := NewSnapshot(sh)
		if s.Owner(100).Master.Port != 30106 || !s.Owner(100).Master.Routable() {
			t.Fatal(s)
		}
	}
	// Synthetic shapes the captures do not cover: loading, tls-port,
	// missing port, a 7.2-style shard holding a failed ex-primary.
	reply := []any{
		map[string]any{
			"slots": []any{int64(0), int64(99), int64(200), int64(300)},
			"nodes": []any{
				[]any{"id", "bec5324366679261be3ac74c3677c753327ba010", "port", int64(6379), "tls-port", int64(6380), "ip", "10.0.0.1",
					"endpoint", "10.0.0.1", "role", "master", "replication-offset", int64(100), "health", "fail"},
				map[string]any{"id": "350dae54a0b7cb0bd4fb2589ebe556914dc3688a", "tls-port": int64(6390), "ip": "10.0.0.2",
					"endpoint": "10.0.0.2", "role": "master", "health": "online"},
				map[any]any{"id": "677013bc5ede2c122be30aa097ca3cc1c0cb2c48", "port": int64(6379), "ip": "10.0.0.3",
					"endpoint": "10.0.0.3", "role": "replica", "health": "loading"},
			},
		},
	}
	shards, err := ParseClusterShardsWith(reply, ReplyOptions{TLS: true})
	if err != nil {
		t.Fatal(err)
	}
	if len(shards) != 2 {
		t.Fatalf("want live master shard + failed ex-primary shard, got %d", len(shards))
	}
	m := shards[0].Master
	if m.Port != 0 || m.TLSPort != 6390 || m.Addr != "10.0.0.2:6390" || len(shards[0].Ranges) != 2 {
		t.Fatalf("%+v %v", m, shards[0].Ranges)
	}
	if r := shards[0].Replicas[0]; r.Routable() || r.Health != "loading" || r.MasterID != m.ID {
		t.Fatalf("loading replica: %+v", r)
	}
	if old := shards[1].Master; !old.Failed() || old.Addr != "10.0.0.1:6380" || len(shards[1].Ranges) != 0 {
		t.Fatalf("%+v", old)
	}
}

func TestSlotsOldShapes(t *testing.T) {
	// 3.0: [ip, port]; 3.2: [ip, port, id]; 6.2+ split runs of one master.
	reply := []any{
		[]any{int64(0), int64(99), []any{"127.0.0.1", int64(7001)}, []any{"127.0.0.1", int64(7004)}},
		[]any{int64(100), int64(16383), []any{"127.0.0.1", int64(7002), "67ed2db8d677e59ec4a4cefb06858cf2a1a89fa1"}},
		[]any{int64(50), int64(50), []any{[]byte("127.0.0.1"), "7001"}}, // bytes and text integers
	}
	sh, err := ParseClusterSlots(reply)
	if err != nil {
		t.Fatal(err)
	}
	if len(sh) != 2 || len(sh[0].Ranges) != 2 || sh[0].Replicas[0].Addr != "127.0.0.1:7004" || sh[1].Master.ID == "" {
		t.Fatalf("%+v", sh)
	}
	// 7.0 metadata as a flat RESP2 array.
	sh, err = ParseClusterSlots([]any{[]any{int64(0), int64(16383), []any{"h1.example.test", int64(1), "67ed2db8d677e59ec4a4cefb06858cf2a1a89fa1", []any{"ip", "10.0.0.1"}}}})
	if err != nil || sh[0].Master.IP != "10.0.0.1" || sh[0].Master.Hostname != "h1.example.test" {
		t.Fatalf("%v %+v", err, sh)
	}
}

func TestReplyErrors(t *testing.T) {
	id := "67ed2db8d677e59ec4a4cefb06858cf2a1a89fa1"
	slotsCases := map[string]any{
		"not array":     "OK",
		"short entry":   []any{[]any{int64(0), int64(1)}},
		"bad range":     []any{[]any{int64(5), int64(1), []any{"a", int64(1)}}},
		"slot too big":  []any{[]any{int64(0), int64(16384), []any{"a", int64(1)}}},
		"bad port":      []any{[]any{int64(0), int64(1), []any{"a", "x"}}},
		"bad endpoint":  []any{[]any{int64(0), int64(1), []any{int64(3), int64(1)}}},
		"bad id":        []any{[]any{int64(0), int64(1), []any{"a", int64(1), "zz"}}},
		"odd metadata":  []any{[]any{int64(0), int64(1), []any{"a", int64(1), id, []any{"ip"}}}},
		"node not arr":  []any{[]any{int64(0), int64(1), "a"}},
		"metadata type": []any{[]any{int64(0), int64(1), []any{"a", int64(1), id, int64(1)}}},
	}
	for name, reply := range slotsCases {
		_, err := ParseClusterSlots(reply)
		var pe *ParseError
		if !errors.As(err, &pe) || pe.Source != "CLUSTER SLOTS" {
			t.Errorf("SLOTS %s: got %v", name, err)
		}
	}
	shardsCases := map[string]any{
		"not array":   int64(1),
		"shard odd":   []any{[]any{"slots"}},
		"slots odd":   []any{[]any{"slots", []any{int64(1)}, "nodes", []any{}}},
		"slots range": []any{[]any{"slots", []any{int64(9), int64(1)}, "nodes", []any{}}},
		"nodes type":  []any{[]any{"slots", []any{}, "nodes", "x"}},
		"port type":   []any{[]any{"nodes", []any{[]any{"id", id, "port", "abc"}}}},
		"id":          []any{[]any{"nodes", []any{[]any{"id", "short", "role", "master"}}}},
		"key type":    []any{[]any{"nodes", []any{[]any{int64(1), "x"}}}},
		"role type":   []any{[]any{"nodes", []any{map[string]any{"role": int64(1)}}}},
	}
	for name, reply := range shardsCases {
		_, err := ParseClusterShards(reply)
		var pe *ParseError
		if !errors.As(err, &pe) || pe.Source != "CLUSTER SHARDS" || !errors.Is(err, ErrMalformed) {
			t.Errorf("SHARDS %s: got %v", name, err)
		}
	}
}
