package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/slotrouter/slotrouter/topology"
)

// pin puts every node's process on CPU serverCPU and this process on
// clientCPU with GOMAXPROCS 1 (taskset -a: every thread), the layout where
// the servers do not compete with the client for a core. Threads the Go
// runtime starts later inherit the affinity. Every node is found through
// CLUSTER NODES: with -addrs, t.admin holds only the nodes given.
func pin(t *target, serverCPU, clientCPU int) error {
	addrs, err := clusterNodes(t)
	if err != nil {
		return err
	}
	for _, addr := range addrs {
		a := redis.NewClient(&redis.Options{Addr: addr, PoolSize: 1, Protocol: 2})
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		s, err := a.Info(ctx, "server").Result()
		cancel()
		a.Close()
		if err != nil {
			return fmt.Errorf("node %s: %w", addr, err)
		}
		pid := ""
		for _, line := range strings.Split(s, "\r\n") {
			if v, ok := strings.CutPrefix(line, "process_id:"); ok {
				pid = v
			}
		}
		if pid == "" {
			return fmt.Errorf("node %s: no process_id in INFO server", addr)
		}
		if out, err := exec.Command("taskset", "-a", "-p", "-c", strconv.Itoa(serverCPU), pid).CombinedOutput(); err != nil {
			return fmt.Errorf("taskset %s: %v: %s", pid, err, out)
		}
	}
	self := strconv.Itoa(os.Getpid())
	if out, err := exec.Command("taskset", "-a", "-p", "-c", strconv.Itoa(clientCPU), self).CombinedOutput(); err != nil {
		return fmt.Errorf("taskset self: %v: %s", err, out)
	}
	runtime.GOMAXPROCS(1)
	return nil
}

// clusterNodes is the address of every node that is not failed, as CLUSTER
// NODES on the first reachable admin connection lists them.
func clusterNodes(t *target) ([]string, error) {
	var last error
	for _, a := range t.admin {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		s, err := a.ClusterNodes(ctx).Result()
		cancel()
		if err != nil {
			last = err
			continue
		}
		nodes, err := topology.ParseClusterNodes([]byte(s))
		if err != nil {
			last = err
			continue
		}
		if addrs := liveAddrs(nodes, a.Options().Addr); len(addrs) > 0 {
			return addrs, nil
		}
		return nil, fmt.Errorf("CLUSTER NODES listed no node")
	}
	return nil, fmt.Errorf("CLUSTER NODES: %w", last)
}

// liveAddrs is the address of every node not failed; a myself line without
// an ip stands for the node that was asked, at asked.
func liveAddrs(nodes []topology.Node, asked string) []string {
	var addrs []string
	for i := range nodes {
		n := &nodes[i]
		switch {
		case n.Failed():
		case n.Addr != "":
			addrs = append(addrs, n.Addr)
		case n.Flags&topology.Myself != 0:
			addrs = append(addrs, asked)
		}
	}
	return addrs
}
