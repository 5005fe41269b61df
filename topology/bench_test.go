package topology

import (
	"context"
	"crypto/sha1"
	"encoding/hex"
	"fmt"
	"strconv"
	"strings"
	"testing"

	"github.com/slotrouter/slotrouter/slots"
)

func synthID(i int) string {
	h := sha1.Sum([]byte(strconv.Itoa(i)))
	return hex.EncodeToString(h[:])
}

// synthNodesText builds an n-node CLUSTER NODES reply in the exact line
// shapes 7.0.15 prints (see testdata/topology/01-healthy): n/2 masters
// splitting the slots evenly, each with one replica, the myself line in the
// middle, LF line ends.
func synthNodesText(n int) []byte {
	masters := n / 2
	var b strings.Builder
	per := slots.Count / masters
	for m := 0; m < masters; m++ {
		start, end := m*per, (m+1)*per-1
		if m == masters-1 {
			end = slots.Count - 1
		}
		flags := "master"
		if m == masters/2 {
			flags = "myself,master"
		}
		ip := fmt.Sprintf("10.%d.%d.1", m/250, m%250)
		fmt.Fprintf(&b, "%s %s:6379@16379 %s - 0 1795379985487 %d connected %d-%d\n", synthID(m), ip, flags, m+1, start, end)
		ip = fmt.Sprintf("10.%d.%d.2", m/250, m%250)
		fmt.Fprintf(&b, "%s %s:6379@16379 slave %s 0 1795379985588 %d connected\n", synthID(m+n), ip, synthID(m), m+1)
	}
	return []byte(b.String())
}

// synthShards is n shards with one replica each, covering every slot.
func synthShards(n int) []Shard {
	nodes, err := ParseClusterNodes(synthNodesText(2 * n))
	if err != nil {
		panic(err)
	}
	shards := make([]Shard, 0, n)
	byID := map[string]int{}
	for i := range nodes {
		if nodes[i].Role == RoleMaster {
			byID[nodes[i].ID] = len(shards)
			shards = append(shards, Shard{Master: &nodes[i], Ranges: nodes[i].Slots})
		}
	}
	for i := range nodes {
		if nodes[i].Role == RoleReplica {
			sh := &shards[byID[nodes[i].MasterID]]
			sh.Replicas = append(sh.Replicas, &nodes[i])
		}
	}
	return shards
}

func TestSynthetic1000(t *testing.T) {
	nodes, err := ParseClusterNodes(synthNodesText(1000))
	if err != nil || len(nodes) != 1000 {
		t.Fatalf("%d %v", len(nodes), err)
	}
	s := NewSnapshot(synthShards(1000))
	if len(s.Shards()) != 1000 || s.Covered() != slots.Count || len(s.Nodes()) != 2000 {
		t.Fatalf("%d shards, %d covered", len(s.Shards()), s.Covered())
	}
	allocs := testing.AllocsPerRun(5, func() { _, _ = ParseClusterNodes(synthNodesText(1000)) })
	t.Logf("allocs incl. building the text: %.0f", allocs)
}

func BenchmarkParseClusterNodes1000(b *testing.B) {
	data := synthNodesText(1000)
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ParseClusterNodes(data); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/1000, "ns/node")
}

func BenchmarkNewSnapshot1000(b *testing.B) {
	shards := synthShards(1000)
	b.ReportAllocs()
	for b.Loop() {
		NewSnapshot(shards)
	}
}

func BenchmarkSnapshotFromNodes1000(b *testing.B) {
	nodes, _ := ParseClusterNodes(synthNodesText(1000))
	b.ReportAllocs()
	for b.Loop() {
		SnapshotFromNodes(nodes)
	}
}

func BenchmarkOwner(b *testing.B) {
	s := NewSnapshot(synthShards(1000))
	var sink *Shard
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		sink = s.Owner(slots.Slot(i & (slots.Count - 1)))
		i += 7
	}
	if sink == nil {
		b.Fatal("no owner")
	}
}

// BenchmarkDiscover1000 is one round against a 1000-node cluster: 10 sampled
// answers parsed and merged.
func BenchmarkDiscover1000(b *testing.B) {
	body := synthNodesText(1000)
	prev := SnapshotFromNodes(mustParse(b, body))
	fetch := func(ctx context.Context, addr string) ([]byte, error) { return body, nil }
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := Discover(context.Background(), DiscoverOptions{Fetch: fetch, Previous: prev}); err != nil {
			b.Fatal(err)
		}
	}
}

func mustParse(tb testing.TB, b []byte) []Node {
	nodes, err := ParseClusterNodes(b)
	if err != nil {
		tb.Fatal(err)
	}
	return nodes
}
