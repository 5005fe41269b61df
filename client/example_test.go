package client_test

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/slotrouter/slotrouter/client"
	"github.com/slotrouter/slotrouter/clustertest"
)

// A client needs one reachable node; it discovers the rest. Here the
// cluster is an in-process one, so the example runs anywhere.
func Example() {
	cluster, err := clustertest.Start(clustertest.Options{Masters: 3})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer cluster.Close()

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := client.New(ctx, client.Options{Addrs: cluster.Addrs()[:1]})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer c.Close()

	if err := c.Do(ctx, "SET", "user:{42}:name", "ada").Err(); err != nil {
		fmt.Println(err)
		return
	}
	name, _ := c.Do(ctx, "GET", "user:{42}:name").Text()
	fmt.Println("name:", name)

	_, err = c.Do(ctx, "GET", "user:{42}:email").Text()
	fmt.Println("missing key is nil:", errors.Is(err, client.ErrNil))

	p := c.Pipeline()
	p.Do("INCRBY", "visits:{home}", 3)
	p.Do("INCR", "visits:{about}")
	res, _ := p.Exec(ctx)
	home, _ := res[0].Int64()
	about, _ := res[1].Int64()
	fmt.Println("visits:", home, about)
	// Output:
	// name: ada
	// missing key is nil: true
	// visits: 3 1
}

// An array of short strings is kept packed: All walks it without
// allocating, Strings slices it into a []string.
func ExampleResult_All() {
	c, ctx, stop, err := exampleClient()
	if err != nil {
		fmt.Println(err)
		return
	}
	defer stop()

	for _, k := range []string{"a", "b", "c"} {
		c.Do(ctx, "SET", "{cart}"+k, "item-"+k)
	}
	res := c.Do(ctx, "MGET", "{cart}a", "{cart}b", "{cart}c")
	fmt.Println(res.Len(), "elements")
	for i, e := range res.All() {
		v, _ := e.Text()
		fmt.Println(i, v)
	}
	// Output:
	// 3 elements
	// 0 item-a
	// 1 item-b
	// 2 item-c
}

// exampleClient is the setup Example spells out: a client of an
// in-process cluster, with a ctx that bounds the example.
func exampleClient() (*client.Client, context.Context, func(), error) {
	cluster, err := clustertest.Start(clustertest.Options{Masters: 3})
	if err != nil {
		return nil, nil, nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	c, err := client.New(ctx, client.Options{Addrs: cluster.Addrs()[:1]})
	if err != nil {
		cancel()
		cluster.Close()
		return nil, nil, nil, err
	}
	return c, ctx, func() { c.Close(); cancel(); cluster.Close() }, nil
}
