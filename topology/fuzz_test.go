package topology

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/slotrouter/slotrouter/slots"
)

// seedFiles adds every captured fixture whose name matches.
func seedFiles(f *testing.F, match func(name string) bool) {
	paths, _ := filepath.Glob(filepath.Join(fixtureDir, "*", "*"))
	for _, p := range paths {
		if !match(filepath.Base(p)) {
			continue
		}
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
}

// checkShards asserts invariants any successful parse must keep, so the
// fuzzers find wrong results and not only panics.
func checkShards(t *testing.T, shards []Shard) {
	for _, sh := range shards {
		if sh.Master == nil {
			t.Fatal("shard without master")
		}
		for _, r := range sh.Ranges {
			if r.Start > r.End || int(r.End) >= slots.Count {
				t.Fatalf("bad range %v", r)
			}
		}
	}
	s := NewSnapshot(shards)
	n := 0
	for i := 0; i < slots.Count; i++ {
		if s.Owner(slots.Slot(i)) != nil {
			n++
		}
	}
	if n != s.Covered() {
		t.Fatalf("covered %d, owners %d", s.Covered(), n)
	}
	_ = s.String()
}

func FuzzParseClusterNodes(f *testing.F) {
	seedFiles(f, func(n string) bool { return strings.HasSuffix(n, ".txt") })
	f.Fuzz(func(t *testing.T, data []byte) {
		nodes, err := ParseClusterNodes(data)
		if err != nil {
			if _, ok := err.(*ParseError); !ok {
				t.Fatalf("untyped error %T", err)
			}
			return
		}
		for _, n := range nodes {
			if !isNodeID(n.ID) || n.Port < 0 || n.Port > 65535 {
				t.Fatalf("accepted bad node %+v", n)
			}
			for _, r := range n.Slots {
				if r.Start > r.End || int(r.End) >= slots.Count {
					t.Fatalf("bad range %v", r)
				}
			}
		}
		s := SnapshotFromNodes(nodes)
		_ = Diff(s, SnapshotFromNodes(nodes[:len(nodes)/2]))
	})
}

func fuzzReply(f *testing.F, prefix string, parse func(any, ReplyOptions) ([]Shard, error)) {
	seedFiles(f, func(n string) bool { return strings.HasPrefix(n, prefix) })
	f.Fuzz(func(t *testing.T, data []byte) {
		tree, err := decodeRESP(data)
		if err != nil {
			return
		}
		for _, o := range []ReplyOptions{{}, {AskedHost: "127.0.0.1", TLS: true}} {
			shards, err := parse(tree, o)
			if err != nil {
				if _, ok := err.(*ParseError); !ok {
					t.Fatalf("untyped error %T", err)
				}
				continue
			}
			checkShards(t, shards)
		}
	})
}

func FuzzParseClusterSlots(f *testing.F)  { fuzzReply(f, "slots-", ParseClusterSlotsWith) }
func FuzzParseClusterShards(f *testing.F) { fuzzReply(f, "shards-", ParseClusterShardsWith) }
