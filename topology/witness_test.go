package topology

import (
	"context"
	"errors"
	"regexp"
	"strings"
	"testing"

	"github.com/slotrouter/slotrouter/slots"
)

const strangerID = "ffffffffffffffffffffffffffffffffffffffff"

// lieAbout turns an honest view into one that names a stranger at addr as
// the owner of every slot with config epoch 999.
func lieAbout(view []byte, addr string) []byte {
	return append(append([]byte{}, view...),
		[]byte(strangerID+" "+addr+"@1 master - 0 0 999 connected 0-16383\n")...)
}

func TestWitnessLoneClaimNotInstalled(t *testing.T) {
	views := stageViews(t, "01-healthy")
	want := map[slots.Slot]string{}
	honest, _, err := Discover(context.Background(), DiscoverOptions{Seeds: keys(views), Fetch: fixtureFetcher(views)})
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []slots.Slot{0, 5461, 16383} {
		want[s] = honest.Owner(s).Master.ID
	}
	const stranger = "127.0.0.1:31899"
	seeds := keys(views)
	views["127.0.0.1:30104"] = lieAbout(views["127.0.0.1:30104"], stranger)
	// The stranger answers in turn: first not at all, then as a member of
	// another cluster (its own ID, nobody it knows), then as a member of
	// another cluster pretending to have the ID it was named by.
	for _, answer := range []string{"", "0000000000000000000000000000000000000001 127.0.0.1:31899@1 myself,master - 0 0 1 connected 0-16383\n",
		strangerID + " 127.0.0.1:31899@1 myself,master - 0 0 999 connected 0-16383\n"} {
		if answer != "" {
			views[stranger] = []byte(answer)
		}
		s, rep, err := Discover(context.Background(), DiscoverOptions{Seeds: seeds, Fetch: fixtureFetcher(views)})
		if err != nil {
			t.Fatal(err)
		}
		for slot, id := range want {
			if got := s.Owner(slot).Master.ID; got != id {
				t.Fatalf("stranger answering %q: slot %d owner %s, want %s", answer, slot, got, id)
			}
		}
		if s.Node(stranger) != nil || s.Node(strangerID) != nil {
			t.Fatalf("stranger in the view")
		}
		if len(rep.Unconfirmed) != 1 || rep.Unconfirmed[0] != stranger {
			t.Fatalf("unconfirmed %v", rep.Unconfirmed)
		}
	}
}

func TestWitnessForeignSeeds(t *testing.T) {
	views := stageViews(t, "01-healthy")
	// A second cluster: the same text with every ID changed.
	other := regexp.MustCompile(`[0-9a-f]{40}`).ReplaceAllStringFunc(string(views["127.0.0.1:30101"]),
		func(id string) string { return strings.Repeat("0", 8) + id[8:] })
	views["127.0.0.1:40001"] = []byte(other)
	_, _, err := Discover(context.Background(), DiscoverOptions{Seeds: keys(views), Fetch: fixtureFetcher(views)})
	var fe *ForeignSeedsError
	if !errors.Is(err, ErrForeignSeeds) || !errors.As(err, &fe) || len(fe.Groups) != 2 ||
		!strings.Contains(err.Error(), "127.0.0.1:40001") {
		t.Fatalf("foreign seeds: %v", err)
	}
}
