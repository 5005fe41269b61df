package topology

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/slotrouter/slotrouter/slots"
)

const fixtureDir = "../testdata/topology"

// fixture is one captured cluster state; see testdata/README.md.
type fixture struct {
	Name        string
	Description string            `json:"description"`
	Asked       string            `json:"asked"`   // node the SLOTS/SHARDS replies came from
	Views       []string          `json:"views"`   // CLUSTER NODES files
	Exclude     map[string]string `json:"exclude"` // view -> why its owners differ
	Owners      []struct {
		Start int    `json:"start"`
		End   int    `json:"end"`
		Owner string `json:"owner"` // as CLUSTER SLOTS gave it (endpoint:port)
		ID    string `json:"owner_id"`
	} `json:"owners"`
	dir string
}

func loadFixtures(t testing.TB) []*fixture {
	t.Helper()
	paths, err := filepath.Glob(filepath.Join(fixtureDir, "*", "fixture.json"))
	if err != nil || len(paths) == 0 {
		t.Fatalf("no fixtures under %s: %v", fixtureDir, err)
	}
	sort.Strings(paths)
	var out []*fixture
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		f := &fixture{dir: filepath.Dir(p), Name: filepath.Base(filepath.Dir(p))}
		if err := json.Unmarshal(b, f); err != nil {
			t.Fatalf("%s: %v", p, err)
		}
		out = append(out, f)
	}
	return out
}

func (f *fixture) read(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(f.dir, name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// viewAddr maps "nodes-30101.txt" to "127.0.0.1:30101".
func viewAddr(view string) string {
	return "127.0.0.1:" + strings.TrimSuffix(strings.TrimPrefix(view, "nodes-"), ".txt")
}

// checkOwners asserts the snapshot's owner of every slot against what the
// live cluster reported, by ID and address. An owner given as ":port"
// (unknown-endpoint) means host hostForEmpty. fromReply is false for
// CLUSTER NODES views, where a hostname owner is checked against Hostname.
func (f *fixture) checkOwners(t *testing.T, what string, s *Snapshot, fromReply bool, hostForEmpty string) {
	wantAddr := fromReply
	t.Helper()
	covered := 0
	for _, o := range f.Owners {
		want := o.Owner
		if strings.HasPrefix(want, ":") {
			want = hostForEmpty + want
		}
		for slot := o.Start; slot <= o.End; slot++ {
			sh := s.Owner(slots.Slot(slot))
			if sh == nil {
				t.Fatalf("%s/%s: slot %d has no owner, want %s", f.Name, what, slot, want)
			}
			if sh.Master.ID != o.ID {
				t.Fatalf("%s/%s: slot %d owner %s, want %s (%s)", f.Name, what, slot, sh.Master, o.ID, want)
			}
			got := sh.Master.Addr
			if h, p, _ := net.SplitHostPort(want); !wantAddr && net.ParseIP(h) == nil {
				// CLUSTER NODES always gives the ip; the hostname the
				// cluster advertised is in Hostname.
				got = net.JoinHostPort(sh.Master.Hostname, p)
			}
			if got != want {
				t.Fatalf("%s/%s: slot %d owner addr %q, want %q", f.Name, what, slot, sh.Master.Addr, want)
			}
			covered++
		}
	}
	if s.Covered() != covered || covered != slots.Count {
		t.Fatalf("%s/%s: covered %d, fixture says %d", f.Name, what, s.Covered(), covered)
	}
}

func TestFixtureNodesEachView(t *testing.T) {
	for _, f := range loadFixtures(t) {
		for _, v := range f.Views {
			nodes, err := ParseClusterNodes(f.read(t, v))
			if err != nil {
				t.Fatalf("%s/%s: %v", f.Name, v, err)
			}
			if why, skip := f.Exclude[v]; skip {
				t.Logf("%s/%s: owners not compared: %s", f.Name, v, why)
				continue
			}
			mine := 0
			for _, n := range nodes {
				if n.Flags&Myself != 0 {
					mine++
					if n.Addr != viewAddr(v) {
						t.Errorf("%s/%s: myself addr %q", f.Name, v, n.Addr)
					}
				}
			}
			if mine != 1 {
				t.Errorf("%s/%s: %d myself lines", f.Name, v, mine)
			}
			s := SnapshotFromNodes(nodes)
			f.checkOwners(t, v, s, false, "127.0.0.1")
		}
	}
}

// fixtureFetcher answers CLUSTER NODES from the captured views.
func fixtureFetcher(views map[string][]byte) Fetcher {
	return func(ctx context.Context, addr string) ([]byte, error) {
		if b, ok := views[addr]; ok {
			return b, nil
		}
		return nil, fmt.Errorf("dial tcp %s: connection refused", addr)
	}
}

func (f *fixture) views(t testing.TB) (map[string][]byte, []string) {
	m := map[string][]byte{}
	var seeds []string
	for _, v := range f.Views {
		m[viewAddr(v)] = f.read(t, v)
		seeds = append(seeds, viewAddr(v))
	}
	return m, seeds
}

func TestFixtureDiscover(t *testing.T) {
	for _, f := range loadFixtures(t) {
		views, seeds := f.views(t)
		s, rep, err := Discover(context.Background(), DiscoverOptions{Seeds: seeds, Fetch: fixtureFetcher(views)})
		if err != nil {
			t.Fatalf("%s: %v", f.Name, err)
		}
		if len(rep.Answered) != len(seeds) {
			t.Fatalf("%s: answered %v of %v: %v", f.Name, rep.Answered, seeds, rep.Errors)
		}
		f.checkOwners(t, "discover", s, false, "127.0.0.1")
		t.Logf("%s: %s failed=%v disagree=%d", f.Name, s, rep.Failed, rep.DisagreeingSlots)
	}
}

func TestFixtureSlotsAndShards(t *testing.T) {
	for _, f := range loadFixtures(t) {
		host := strings.Split(f.Asked, ":")[0]
		port := strings.Split(f.Asked, ":")[1]
		for _, kind := range []string{"slots", "shards"} {
			for _, ext := range []string{".resp", ".resp3"} {
				name := kind + "-" + port + ext
				if _, err := os.Stat(filepath.Join(f.dir, name)); err != nil {
					continue
				}
				tree, err := decodeRESP(f.read(t, name))
				if err != nil {
					t.Fatalf("%s/%s: decode: %v", f.Name, name, err)
				}
				parse := ParseClusterSlotsWith
				if kind == "shards" {
					parse = ParseClusterShardsWith
				}
				shards, err := parse(tree, ReplyOptions{AskedHost: host})
				if err != nil {
					t.Fatalf("%s/%s: %v", f.Name, name, err)
				}
				s := NewSnapshot(shards)
				f.checkOwners(t, name, s, true, host)
				for _, n := range s.Nodes() {
					if n.Port == 0 && n.TLSPort == 0 && n.Role == RoleReplica {
						t.Errorf("%s/%s: noaddr replica %s kept", f.Name, name, n)
					}
				}
			}
		}
	}
}
