package topology

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/slotrouter/slotrouter/slots"
)

func stageViews(t *testing.T, stage string) map[string][]byte {
	t.Helper()
	for _, f := range loadFixtures(t) {
		if f.Name == stage {
			m, _ := f.views(t)
			return m
		}
	}
	t.Fatalf("no stage %s", stage)
	return nil
}

func keys(m map[string][]byte) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

const (
	id30102 = "b1dac982cd66f871528b405b6b8a78a95fabb3cd"
	id30106 = "350dae54a0b7cb0bd4fb2589ebe556914dc3688a"
	id30101 = "bec5324366679261be3ac74c3677c753327ba010"
)

func TestDiscoverStaleClaimLoses(t *testing.T) {
	// The restarted ex-master answers with its pre-crash view (master of
	// 100,5461-10922 at epoch 7) while the others know 30106 at epoch 8.
	stale, err := os.ReadFile(filepath.Join(fixtureDir, "07-old-master-restarted", "stale-nodes-30102.txt"))
	if err != nil {
		t.Fatal(err)
	}
	for _, stage := range []string{"06-after-failover", "08-old-master-back"} {
		views := stageViews(t, stage)
		views["127.0.0.1:30102"] = stale
		// Even with only one other answer the higher epoch wins.
		for _, seeds := range [][]string{keys(views), {"127.0.0.1:30102", "127.0.0.1:30104"}} {
			s, rep, err := Discover(context.Background(), DiscoverOptions{Seeds: seeds, Fetch: fixtureFetcher(views)})
			if err != nil {
				t.Fatal(err)
			}
			for _, slot := range []int{100, 5461, 10922} {
				if got := s.Owner(slots.Slot(slot)).Master; got.ID != id30106 || !got.Routable() {
					t.Fatalf("%s %v: slot %d -> %s, want 30106 (%s)", stage, seeds, slot, got, s)
				}
			}
			if rep.DisagreeingSlots != 5463 {
				t.Errorf("%s: disagreeing %d, want 5463", stage, rep.DisagreeingSlots)
			}
			// The stale node is authority on its own role (it says master),
			// but owns nothing.
			if sh := s.ShardOf(id30102); sh == nil || sh.Master.ID != id30102 || len(sh.Ranges) != 0 {
				t.Fatalf("%s: %+v", stage, sh)
			}
		}
	}
}

func TestDiscoverFailJudgement(t *testing.T) {
	// fail? from four of five answers: still routable.
	views := stageViews(t, "04-pfail")
	s, rep, err := Discover(context.Background(), DiscoverOptions{Seeds: keys(views), Fetch: fixtureFetcher(views)})
	if err != nil {
		t.Fatal(err)
	}
	m := s.Owner(5461).Master
	if !m.Routable() || m.Flags&PFail == 0 || len(rep.Failed) != 0 {
		t.Fatalf("pfail: %+v %v", m, rep.Failed)
	}
	// fail from all: not routable, still the owner (nobody else claims it),
	// and the asked dead address is an error, not an answer.
	views = stageViews(t, "05-fail")
	seeds := append(keys(views), "127.0.0.1:30102")
	s, rep, err = Discover(context.Background(), DiscoverOptions{Seeds: seeds, Fetch: fixtureFetcher(views)})
	if err != nil {
		t.Fatal(err)
	}
	m = s.Owner(5461).Master
	if m.ID != id30102 || m.Routable() || !m.Failed() || rep.Errors["127.0.0.1:30102"] == nil || len(rep.Answered) != 5 {
		t.Fatalf("fail: %+v %+v", m, rep)
	}
	// A single node saying fail, contradicted by three: not failed.
	views = stageViews(t, "04-pfail")
	one := strings.Replace(string(views["127.0.0.1:30101"]), "master,fail? -", "master,fail -", 1)
	views["127.0.0.1:30101"] = []byte(one)
	s, _, err = Discover(context.Background(), DiscoverOptions{Seeds: keys(views), Fetch: fixtureFetcher(views)})
	if err != nil {
		t.Fatal(err)
	}
	if !s.Owner(5461).Master.Routable() {
		t.Fatal("one fail vote against four must not fail the node")
	}
	// One fail and nobody contradicting (the others do not answer, not even
	// when asked to confirm what the one answer says about them).
	alone := map[string][]byte{"127.0.0.1:30101": views["127.0.0.1:30101"]}
	s, _, err = Discover(context.Background(), DiscoverOptions{Seeds: []string{"127.0.0.1:30101"}, Fetch: fixtureFetcher(alone)})
	if err != nil || s.Owner(5461).Master.Routable() {
		t.Fatalf("uncontradicted fail must count: %v", err)
	}
}

func TestDiscoverMigrationAndDisagreement(t *testing.T) {
	views := stageViews(t, "02-migrating")
	s, rep, err := Discover(context.Background(), DiscoverOptions{Seeds: keys(views), Fetch: fixtureFetcher(views)})
	if err != nil {
		t.Fatal(err)
	}
	src := s.Node(id30101)
	if src.Migrating[100] != id30102 || s.Owner(100).Master != src || rep.DisagreeingSlots != 0 {
		t.Fatalf("%+v %+v", src, rep)
	}
	if s.Node(id30102).Importing[100] != id30101 {
		t.Fatal("importing marker lost")
	}
	// Mix views from before and after SETSLOT NODE: epoch 7 beats 1.
	after := stageViews(t, "03-after-migration")
	views["127.0.0.1:30102"] = after["127.0.0.1:30102"]
	s, rep, err = Discover(context.Background(), DiscoverOptions{Seeds: keys(views), Fetch: fixtureFetcher(views)})
	if err != nil {
		t.Fatal(err)
	}
	if s.Owner(100).Master.ID != id30102 || rep.DisagreeingSlots != 1 || rep.EpochConflicts != 0 {
		t.Fatalf("%s %+v", s, rep)
	}
}

func TestDiscoverGapKeepsPrevious(t *testing.T) {
	views := stageViews(t, "01-healthy")
	prev, _, err := Discover(context.Background(), DiscoverOptions{Seeds: keys(views), Fetch: fixtureFetcher(views)})
	if err != nil {
		t.Fatal(err)
	}
	// Every answer loses 10923-16383 (as a node that just lost its config
	// would say).
	holed := map[string][]byte{}
	for a, b := range views {
		holed[a] = []byte(strings.ReplaceAll(string(b), " 10923-16383", ""))
	}
	s, rep, err := Discover(context.Background(), DiscoverOptions{Seeds: keys(holed), Fetch: fixtureFetcher(holed), Previous: prev})
	if err != nil {
		t.Fatal(err)
	}
	if s.Covered() != 16384 || rep.Filled != 5461 || s.Owner(16383).Master.Port != 30103 || s.Version() != prev.Version()+1 {
		t.Fatalf("%s %+v", s, rep)
	}
	// ...unless the previous owner is failed now.
	for a, b := range holed {
		holed[a] = []byte(strings.Replace(string(b), "30103@30203 master -", "30103@30203 master,fail -", 1))
	}
	delete(holed, "127.0.0.1:30103")
	s, rep, err = Discover(context.Background(), DiscoverOptions{Seeds: keys(holed), Fetch: fixtureFetcher(holed), Previous: prev})
	if err != nil {
		t.Fatal(err)
	}
	if s.Covered() != 16384-5461 || rep.Uncovered != 5461 || s.Owner(16383) != nil {
		t.Fatalf("%s %+v", s, rep)
	}
}

type fakeResolver struct {
	calls atomic.Int32
	ips   []string
}

func (r *fakeResolver) LookupHost(ctx context.Context, host string) ([]string, error) {
	r.calls.Add(1)
	if host != "cluster.example.test" {
		return nil, fmt.Errorf("lookup %s: no such host", host)
	}
	return r.ips, nil
}

func TestDiscoverResolvesSeedsEveryRound(t *testing.T) {
	views := stageViews(t, "01-healthy")
	res := &fakeResolver{ips: []string{"127.0.0.1", "127.0.0.9"}}
	opts := DiscoverOptions{Seeds: []string{"cluster.example.test:30101", "nope.example.test:1", "bad-seed"},
		Fetch: fixtureFetcher(views), Resolver: res}
	for round := 1; round <= 2; round++ {
		s, rep, err := Discover(context.Background(), opts)
		if err != nil {
			t.Fatal(err)
		}
		if int(res.calls.Load()) != 2*round {
			t.Fatalf("round %d: %d lookups", round, res.calls.Load())
		}
		if !contains(rep.Asked, "127.0.0.9:30101") || rep.Errors["127.0.0.9:30101"] == nil ||
			rep.Errors["nope.example.test:1"] == nil || rep.Errors["bad-seed"] == nil {
			t.Fatalf("%+v", rep)
		}
		if s.Covered() != 16384 {
			t.Fatal(s)
		}
		opts.Previous = s
	}
}

func TestDiscoverSampleAndDeadline(t *testing.T) {
	prev := NewSnapshot(synthShards(200))
	var asked atomic.Int32
	body := synthNodesText(200)
	fetch := func(ctx context.Context, addr string) ([]byte, error) {
		asked.Add(1)
		if addr == "10.9.9.9:1" { // a hung seed
			<-ctx.Done()
			return nil, ctx.Err()
		}
		return body, nil
	}
	start := time.Now()
	s, rep, err := Discover(context.Background(), DiscoverOptions{Seeds: []string{"10.9.9.9:1"}, Fetch: fetch, Previous: prev, Sample: 7})
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Asked) != 7 || asked.Load() != 7 || !contains(rep.Asked, "10.9.9.9:1") || rep.Errors["10.9.9.9:1"] == nil {
		t.Fatalf("%+v", rep)
	}
	// The hung seed costs the straggle wait, not the 1 s timeout.
	if d := time.Since(start); d > 500*time.Millisecond || s.Covered() != 16384 {
		t.Fatalf("took %v, covered %d", d, s.Covered())
	}
	// Nobody answers: a typed error with the report, within Timeout.
	start = time.Now()
	_, rep, err = Discover(context.Background(), DiscoverOptions{Seeds: []string{"10.9.9.9:1"}, Fetch: fetch, Timeout: 100 * time.Millisecond})
	var de *DiscoverError
	if !errors.Is(err, ErrNoAnswer) || !errors.As(err, &de) || de.Report != rep || time.Since(start) > time.Second {
		t.Fatalf("%v %+v", err, rep)
	}
	if _, _, err := Discover(context.Background(), DiscoverOptions{}); !errors.Is(err, ErrNoFetcher) {
		t.Fatal(err)
	}
}
