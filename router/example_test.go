package router_test

import (
	"context"
	"fmt"

	"github.com/slotrouter/slotrouter/router"
	"github.com/slotrouter/slotrouter/slots"
	"github.com/slotrouter/slotrouter/topology"
)

// staticSource serves one fixed view; real sources ask the deployment.
type staticSource struct{ snap *topology.Snapshot }

func (s staticSource) Discover(context.Context, *topology.Snapshot, func(string) bool) (*topology.Snapshot, error) {
	return s.snap, nil
}

// The router decides, the caller sends: Target says where a command goes,
// OnReply says what to do with the answer.
func Example() {
	nodes, err := topology.ParseClusterNodes([]byte(
		"07c37dfeb235213a872192d90877d0cd55635b91 10.0.0.1:7000@17000 myself,master - 0 0 1 connected 0-8191\n" +
			"67ed2db8d677e59ec4a4cefb06858cf2a1a89fa1 10.0.0.2:7000@17000 master - 0 0 2 connected 8192-16383\n"))
	if err != nil {
		fmt.Println(err)
		return
	}
	r, err := router.New(router.Options{Source: staticSource{topology.SnapshotFromNodes(nodes)}})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer r.Close()
	if err := r.Refresh(context.Background()); err != nil {
		fmt.Println(err)
		return
	}

	a := router.Attempt{Slot: slots.Of("user:1000"), HasSlot: true}
	addr, _ := r.Target(&a)
	fmt.Println("slot", a.Slot, "->", addr)

	// The slot moved: the router patches its map and says to retry there.
	d := r.OnReply(&a, addr, "MOVED 1649 10.0.0.2:7000")
	addr, _ = r.Target(&a)
	fmt.Println("retry:", d.Action == router.Retry, "->", addr)
	// Output:
	// slot 1649 -> 10.0.0.1:7000
	// retry: true -> 10.0.0.2:7000
}
