// Command role-probe writes to a master/replica set given as plain
// addresses, with no Sentinel and no proxy: the client asks every node for
// its ROLE and writes to the one that is master (the check an HAProxy
// "role:master" backend makes). Once a second it prints the master in use,
// every node's role and how many writes succeeded and failed. Promote a
// replica by hand (REPLICAOF NO ONE on it, REPLICAOF it on the others) and
// watch writes follow; the dual-master window in between is reported.
//
//	go run ./examples/role-probe -addrs 127.0.0.1:6379,127.0.0.1:6380,127.0.0.1:6381 -interval 500ms
package main

import (
	"flag"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/slotrouter/slotrouter/client"
	"github.com/slotrouter/slotrouter/examples/internal/live"
)

func main() {
	addrs := flag.String("addrs", "127.0.0.1:6379", "comma-separated data nodes (host:port), master and replicas")
	password := flag.String("password", "", "AUTH password of the data nodes")
	interval := flag.Duration("interval", 500*time.Millisecond, "role probe interval")
	load := live.RegisterFlags(flag.CommandLine)
	flag.Parse()
	ctx, stop := live.Context(load.Duration)
	defer stop()
	opts := client.Options{
		Addrs:    strings.Split(*addrs, ","),
		Password: *password,
		RoleProbe: &client.RoleProbeOptions{
			Interval: *interval,
			OnSplitBrain: func(e *client.SplitBrainError) {
				fmt.Printf("%s  DUAL MASTER: %v\n", live.Stamp(time.Now()), e)
			},
		},
		OnTopologyChange: live.PrintChanges,
	}
	err := live.Run(ctx, live.Config{
		Client: opts, Rate: load.Rate, Timeout: load.Timeout, KeyPrefix: "roleprobe:",
		Detail: func(c *client.Client) string { return "  roles [" + roles(c) + "]" },
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, "role-probe:", err)
		os.Exit(1)
	}
}

// roles lists what every node said in the last probe round.
func roles(c *client.Client) string {
	r := c.RoleReport()
	if r == nil {
		return "no probe yet"
	}
	parts := make([]string, 0, len(r.Nodes))
	for _, n := range r.Nodes {
		if n.Err != nil {
			parts = append(parts, n.Addr+" unreachable")
			continue
		}
		parts = append(parts, n.Addr+" "+n.Role)
	}
	return strings.Join(parts, ", ")
}
