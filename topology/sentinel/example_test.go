package sentinel_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"

	"github.com/slotrouter/slotrouter/topology/sentinel"
)

// A table stands in for the network: one Sentinel naming 10.0.0.5:6379, which confirms with
// ROLE that it is master, and two replicas of which one is down.
func Example() {
	replies := map[string]any{
		"SENTINEL get-master-addr-by-name mymaster": []any{"10.0.0.5", "6379"},
		"SENTINEL replicas mymaster": []any{
			[]any{"ip", "10.0.0.6", "port", "6379", "flags", "slave"},
			[]any{"ip", "10.0.0.7", "port", "6379", "flags", "slave,s_down"},
		},
		"SENTINEL sentinels mymaster": []any{},
		"ROLE":                        []any{"master", int64(42), []any{}},
	}
	exec := func(ctx context.Context, addr string, args ...any) (any, error) {
		key := strings.TrimSpace(fmt.Sprintln(args...))
		if v, ok := replies[key]; ok {
			return v, nil
		}
		return nil, errors.New("unexpected command")
	}
	src, err := sentinel.New(sentinel.Options{
		MasterName: "mymaster",
		Sentinels:  []string{"10.0.0.1:26379"},
		Exec:       exec, // Sentinels' credentials
		NodeExec:   exec, // data nodes' credentials
		Reconcile:  -1,
		Logger:     slog.New(slog.DiscardHandler),
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer src.Close()
	snap, err := src.Discover(context.Background(), nil, nil)
	if err != nil {
		fmt.Println(err)
		return
	}
	shard := snap.Shards()[0]
	fmt.Println("master:", shard.Master.Addr, "slots:", snap.Covered())
	for _, r := range shard.Replicas {
		fmt.Println("replica:", r.Addr)
	}
	// Output:
	// master: 10.0.0.5:6379 slots: 16384
	// replica: 10.0.0.6:6379
}
