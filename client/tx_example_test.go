package client_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/slotrouter/slotrouter/client"
	"github.com/slotrouter/slotrouter/clustertest"
	"github.com/slotrouter/slotrouter/internal/redistest"
)

// Optimistic locking: read the key, queue the write, commit only if nobody
// changed the key in between, and go again when somebody did. Ten
// goroutines increment one counter ten times each.
func ExampleClient_Watch() {
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

	const key = "stock:{item42}"
	incr := func() error {
		for {
			err := c.Watch(ctx, func(tx *client.Tx) error {
				n, err := tx.Do(ctx, "GET", key).Int64()
				if err != nil && !errors.Is(err, client.ErrNil) {
					return err
				}
				_, err = tx.TxPipelined(ctx, func(p *client.Pipeline) error {
					p.Do("SET", key, n+1)
					return nil
				})
				return err
			}, key)
			if !errors.Is(err, client.ErrTxFailed) {
				return err // done, or a real error
			}
		}
	}
	var wg sync.WaitGroup
	for range 10 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 10 {
				if err := incr(); err != nil {
					fmt.Println(err)
				}
			}
		}()
	}
	wg.Wait()
	n, _ := c.Do(ctx, "GET", key).Int64()
	fmt.Println("stock:", n)
	// Output:
	// stock: 100
}

// A transaction without reads: the queued commands run together on the
// master of their one slot, or not at all.
func ExampleClient_TxPipeline() {
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

	p := c.TxPipeline()
	p.Do("SET", "account:{ada}:balance", 100)
	p.Do("DECRBY", "account:{ada}:balance", 30)
	p.Do("INCRBY", "account:{ada}:savings", 30)
	res, err := p.Exec(ctx)
	if err != nil {
		fmt.Println(err)
		return
	}
	balance, _ := res[1].Int64()
	savings, _ := res[2].Int64()
	fmt.Println("balance:", balance, "savings:", savings)

	// Keys in two slots cannot be one transaction: refused before sending.
	p.Do("INCR", "account:{ada}:savings")
	p.Do("INCR", "account:{bob}:savings")
	_, err = p.Exec(ctx)
	fmt.Println("two slots refused:", errors.Is(err, client.ErrCrossSlot))
	// Output:
	// balance: 70 savings: 30
	// two slots refused: true
}

// These examples need Lua or a replica that acknowledges WAIT, which the
// in-process clustertest does not implement, so they are compiled but not
// run; script_test.go and session_test.go run the same calls against
// redis-server.

// A Lua script runs by its digest; a node that lacks it gets the source
// once (EVAL) and caches it. clustertest has no Lua, so this Example
// launches real redis-server processes (TestMain skips it, saying why, when
// there are none and REDIS_REQUIRED is not set).
func ExampleNewScript() {
	cl, err := redistest.Launch(redistest.ClusterOptions{Masters: 3})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := client.New(ctx, client.Options{Addrs: cl.Addrs()})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer c.Close()

	// Increment, but never past a cap: atomic on the key's master. No
	// master has the script yet; each one that needs it gets it by EVAL.
	incrCapped := client.NewScript(`
local n = redis.call('INCR', KEYS[1])
if n > tonumber(ARGV[1]) then redis.call('DECR', KEYS[1]) return -1 end
return n`)
	for _, user := range []string{"{user1}", "{user2}", "{user3}"} {
		for range 3 {
			n, err := incrCapped.Run(ctx, c, []string{"quota:" + user}, 2).Int64()
			fmt.Print(n, " ", err, " ")
		}
		fmt.Println(user)
	}
	// Output:
	// 1 <nil> 2 <nil> -1 <nil> {user1}
	// 1 <nil> 2 <nil> -1 <nil> {user2}
	// 1 <nil> 2 <nil> -1 <nil> {user3}
}

// WAIT counts the writes of the connection it runs on, so it needs a
// session of its own with the writes on it.
func ExampleClient_Conn() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := client.New(ctx, client.Options{Addrs: []string{"127.0.0.1:7000"}})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer c.Close()

	s, err := c.Conn(ctx, "order:{77}")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer s.Close()
	if err := s.Do(ctx, "SET", "order:{77}", "paid").Err(); err != nil {
		fmt.Println(err)
		return
	}
	acked, err := s.Do(ctx, "WAIT", 1, 100).Int64() // replicas that have the SET
	fmt.Println(acked, err)
}
