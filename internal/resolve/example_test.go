package resolve_test

import (
	"context"
	"fmt"
	"sync/atomic"

	"github.com/slotrouter/slotrouter/internal/resolve"
)

type table struct{ answer atomic.Value }

func (t *table) LookupHost(ctx context.Context, host string) ([]string, error) {
	return t.answer.Load().([]string), nil
}

// After a connection to a failed address, Refresh re-resolves and OnChange tells which
// connections to drain.
func ExampleCache_Refresh() {
	dns := &table{}
	dns.answer.Store([]string{"10.0.0.1", "10.0.0.2"})
	c := resolve.New(resolve.Options{
		Resolver:   dns,
		MinRefresh: -1, // no rate limit, for the example
		OnChange: func(ch resolve.Change) {
			fmt.Println("drain", ch.Removed, "add", ch.Added)
		},
	})
	ctx := context.Background()
	addrs, _ := c.LookupHost(ctx, "redis-12000.cluster.example")
	fmt.Println(addrs)

	dns.answer.Store([]string{"10.0.0.2", "10.0.0.3"}) // failover re-pointed the name
	addrs, _ = c.Refresh(ctx, "redis-12000.cluster.example")
	fmt.Println(addrs)
	// Output:
	// [10.0.0.1 10.0.0.2]
	// drain [10.0.0.1] add [10.0.0.3]
	// [10.0.0.2 10.0.0.3]
}
