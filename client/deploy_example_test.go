package client_test

import (
	"context"
	"fmt"
	"time"

	"github.com/slotrouter/slotrouter/client"
)

// A Sentinel-managed master: Sentinels have a password of their own.
func ExampleSentinelOptions() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := client.New(ctx, client.Options{
		Sentinel: &client.SentinelOptions{
			MasterName: "mymaster",
			Addrs:      []string{"127.0.0.1:26379", "127.0.0.1:26380", "127.0.0.1:26381"},
			Password:   "sentinel-pw",
		},
		Password: "data-pw",
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer c.Close()
	fmt.Println(c.Do(ctx, "SET", "greeting", "hello").Err())
}

// Plain master and replicas, no Sentinel and no proxy: writes go to the
// node that says it is master.
func ExampleRoleProbeOptions() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := client.New(ctx, client.Options{
		Addrs: []string{"db-a.internal:6379", "db-b.internal:6379"},
		RoleProbe: &client.RoleProbeOptions{
			Interval: 500 * time.Millisecond,
			OnSplitBrain: func(e *client.SplitBrainError) {
				fmt.Println("two masters:", e)
			},
		},
		DNSTTL: 5 * time.Second, // the names may be re-pointed
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer c.Close()
	fmt.Println(c.RoleReport().Master)
}
