package roleprobe_test

import (
	"fmt"

	"github.com/slotrouter/slotrouter/topology/roleprobe"
)

// An old master (a) came back as master while the replicas already follow the promoted b:
// writes go to b, the one the replicas follow, even though a has the higher offset.
func ExampleDecide() {
	d := roleprobe.Decide([]roleprobe.NodeStatus{
		{Addr: "10.0.0.1:6379", Role: "master", Writable: true, Offset: 900},
		{Addr: "10.0.0.2:6379", Role: "master", Writable: true, Offset: 500},
		{Addr: "10.0.0.3:6379", Role: "slave", MasterAddr: "10.0.0.2:6379", LinkUp: true},
	})
	fmt.Println("master:", d.Master, "rule:", d.Rule, "replicas:", d.Replicas)
	fmt.Println(d.SplitBrain)
	// Output:
	// master: 10.0.0.2:6379 rule: followers replicas: [10.0.0.3:6379]
	// roleprobe: split brain: 2 nodes claim master (10.0.0.1:6379: 0 followers, offset 900; 10.0.0.2:6379: 1 followers, offset 500); writes go to 10.0.0.2:6379 (rule followers)
}
