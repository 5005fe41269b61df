// Command sentinel writes through a Sentinel-managed master at a steady
// rate and prints, once a second, the master in use and how many writes
// succeeded and failed, plus every topology change the moment the client
// sees it. Run it, kill -9 the master and watch the client follow
// +switch-master; restart the old master and watch it come back as a
// replica without getting writes.
//
//	go run ./examples/sentinel -sentinels 127.0.0.1:26379,127.0.0.1:26380 -master mymaster \
//	    -sentinel-password s3cret -password data-pw
package main

import (
	"flag"
	"fmt"
	"os"
	"strings"

	"github.com/slotrouter/slotrouter/client"
	"github.com/slotrouter/slotrouter/examples/internal/live"
)

func main() {
	sentinels := flag.String("sentinels", "127.0.0.1:26379", "comma-separated Sentinel addresses (host:port)")
	master := flag.String("master", "mymaster", "master name the Sentinels monitor")
	sentinelPW := flag.String("sentinel-password", "", "password of the Sentinels (their requirepass)")
	password := flag.String("password", "", "password of the data nodes")
	load := live.RegisterFlags(flag.CommandLine)
	flag.Parse()
	ctx, stop := live.Context(load.Duration)
	defer stop()
	opts := client.Options{
		Sentinel: &client.SentinelOptions{
			MasterName: *master,
			Addrs:      strings.Split(*sentinels, ","),
			Password:   *sentinelPW,
		},
		Password:         *password,
		OnTopologyChange: live.PrintChanges,
	}
	err := live.Run(ctx, live.Config{
		Client: opts, Rate: load.Rate, Timeout: load.Timeout, KeyPrefix: "sentinel:",
		Connected: func(c *client.Client) string { return fmt.Sprintf("; sentinels %v", c.SentinelAddrs()) },
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, "sentinel:", err)
		os.Exit(1)
	}
}
