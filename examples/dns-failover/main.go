// Command dns-failover writes to Redis nodes addressed by DNS names (Redis
// Enterprise style endpoints, Kubernetes services, or a cluster announcing
// hostnames) and prints, once a second, the node in use and how many writes
// succeeded and failed. Re-point a name at another node (or let your DNS
// fail over) and watch the client follow within the TTL without a restart:
// names are re-resolved after every connection failure and at least every
// -ttl, and connections to addresses a name no longer returns are drained.
//
//	go run ./examples/dns-failover -addrs db.example.test:12000 -dns 127.0.0.1:5353 -ttl 1s
package main

import (
	"flag"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/slotrouter/slotrouter/client"
	"github.com/slotrouter/slotrouter/examples/internal/live"
	"github.com/slotrouter/slotrouter/internal/resolve"
)

func main() {
	addrs := flag.String("addrs", "localhost:6379", "comma-separated nodes as name:port (cluster seeds or one master/replica set)")
	dns := flag.String("dns", "", "DNS server (host:port) to ask instead of the system resolver")
	ttl := flag.Duration("ttl", 5*time.Second, "re-resolve names at least this often")
	password := flag.String("password", "", "AUTH password")
	load := live.RegisterFlags(flag.CommandLine)
	flag.Parse()
	ctx, stop := live.Context(load.Duration)
	defer stop()
	opts := client.Options{
		Addrs:            strings.Split(*addrs, ","),
		Password:         *password,
		DNSTTL:           *ttl,
		OnTopologyChange: live.PrintChanges,
	}
	if *dns != "" {
		opts.Resolver = resolve.NewNetResolver(*dns)
	}
	err := live.Run(ctx, live.Config{
		Client: opts, Rate: load.Rate, Timeout: load.Timeout, KeyPrefix: "dnsfailover:",
		Master: masters,
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, "dns-failover:", err)
		os.Exit(1)
	}
}

// masters lists the masters in use (one for a master/replica set, one per
// shard for a cluster).
func masters(c *client.Client) string {
	snap := c.Topology()
	if snap == nil {
		return "none"
	}
	var ms []string
	for _, sh := range snap.Shards() {
		if sh.Master != nil {
			ms = append(ms, sh.Master.Addr)
		}
	}
	if len(ms) == 0 {
		return "none"
	}
	return strings.Join(ms, ",")
}
