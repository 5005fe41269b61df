package topology_test

import (
	"fmt"

	"github.com/slotrouter/slotrouter/slots"
	"github.com/slotrouter/slotrouter/topology"
)

// Lines from a real 7.0.15 cluster just after a failover (see
// testdata/topology/06-after-failover): 30106 was promoted at epoch 8 and
// the dead 30102 is "master,fail" with no slots.
const clusterNodes = `bec5324366679261be3ac74c3677c753327ba010 127.0.0.1:30101@30201 myself,master - 0 1795380004000 1 connected 0-99 101-5460
350dae54a0b7cb0bd4fb2589ebe556914dc3688a 127.0.0.1:30106@30206 master - 0 1795380004000 8 connected 100 5461-10922
b1dac982cd66f871528b405b6b8a78a95fabb3cd 127.0.0.1:30102@30202 master,fail - 1795380001088 1795380000082 7 disconnected
0fb4c7442a512255924862a516418d248cd88754 127.0.0.1:30103@30203 master - 0 1795380004075 3 connected 10923-16383
86bf2539c4c8cf08afd7d2f17d55cd898fb7f79c 127.0.0.1:30105@30205 slave bec5324366679261be3ac74c3677c753327ba010 0 1795380004050 1 connected
`

func Example() {
	nodes, err := topology.ParseClusterNodes([]byte(clusterNodes))
	if err != nil {
		fmt.Println(err)
		return
	}
	s := topology.SnapshotFromNodes(nodes)
	slot := slots.Of("user:1000")
	owner := s.Owner(slot)
	fmt.Println("slot", slot, "->", owner.Master.Addr, "epoch", owner.Master.ConfigEpoch)
	fmt.Println("covered:", s.Covered())
	dead := s.Node("127.0.0.1:30102")
	fmt.Println("30102 routable:", dead.Routable(), "flags:", dead.Flags)
	// Output:
	// slot 1649 -> 127.0.0.1:30101 epoch 1
	// covered: 16384
	// 30102 routable: false flags: master,fail
}

func ExampleDiff() {
	before, _ := topology.ParseClusterNodes([]byte(
		"b1dac982cd66f871528b405b6b8a78a95fabb3cd 127.0.0.1:30102@30202 myself,master - 0 0 7 connected 0-16383\n" +
			"350dae54a0b7cb0bd4fb2589ebe556914dc3688a 127.0.0.1:30106@30206 slave b1dac982cd66f871528b405b6b8a78a95fabb3cd 0 0 7 connected\n"))
	after, _ := topology.ParseClusterNodes([]byte(
		"b1dac982cd66f871528b405b6b8a78a95fabb3cd 127.0.0.1:30102@30202 master,fail - 0 0 7 disconnected\n" +
			"350dae54a0b7cb0bd4fb2589ebe556914dc3688a 127.0.0.1:30106@30206 myself,master - 0 0 8 connected 0-16383\n"))
	for _, c := range topology.Diff(topology.SnapshotFromNodes(before), topology.SnapshotFromNodes(after)) {
		fmt.Println(c)
	}
	// Output:
	// MasterChanged 0-16383 (16384 slots) 127.0.0.1:30102(b1dac982) -> 127.0.0.1:30106(350dae54)
	// ReplicaRemoved 127.0.0.1:30106(350dae54) from 127.0.0.1:30102(b1dac982)
	// NodeFailed 127.0.0.1:30102(b1dac982)
}
