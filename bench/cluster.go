package main

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/slotrouter/slotrouter/internal/redistest"
)

// target is the cluster a measurement runs against, plus one admin
// connection per node for INFO (opened once, so counting connections does
// not open any).
type target struct {
	addrs   []string // every node
	seed    []string // what clients are given
	admin   []*redis.Client
	cluster *redistest.Cluster // nil with -addrs
}

func launchCluster(nodeTimeout time.Duration) (*target, error) {
	c, err := redistest.Launch(redistest.ClusterOptions{Masters: 3, Replicas: 1, NodeTimeout: nodeTimeout})
	if err != nil {
		return nil, err
	}
	t, err := newTarget(c.Addrs())
	if err != nil {
		c.Close()
		return nil, err
	}
	t.cluster = c
	return t, nil
}

func newTarget(addrs []string) (*target, error) {
	t := &target{addrs: addrs, seed: addrs}
	for _, a := range addrs {
		// One connection, kept: PoolSize 1 and MinIdleConns 1.
		cl := redis.NewClient(&redis.Options{Addr: a, PoolSize: 1, MinIdleConns: 1, Protocol: 2})
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		err := cl.Ping(ctx).Err()
		cancel()
		if err != nil {
			t.close()
			return nil, fmt.Errorf("node %s: %w", a, err)
		}
		t.admin = append(t.admin, cl)
	}
	return t, nil
}

func (t *target) close() {
	for _, a := range t.admin {
		_ = a.Close()
	}
	if t.cluster != nil {
		t.cluster.Close()
	}
}

// info reads one numeric field of INFO from every reachable node and sums.
func (t *target) info(section, field string) int64 {
	var sum int64
	for _, a := range t.admin {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		s, err := a.Info(ctx, section).Result()
		cancel()
		if err != nil {
			continue // a killed node in the failover round
		}
		for _, line := range strings.Split(s, "\r\n") {
			if v, ok := strings.CutPrefix(line, field+":"); ok {
				n, _ := strconv.ParseInt(v, 10, 64)
				sum += n
			}
		}
	}
	return sum
}

// connsAccepted is the number of connections the nodes have accepted so far.
func (t *target) connsAccepted() int64 { return t.info("stats", "total_connections_received") }

// connected is the number of client connections open now (ours included).
func (t *target) connected() int64 { return t.info("clients", "connected_clients") }

// fill writes every key once so GETs hit.
func (t *target) fill(d driver, k *keyspace) error {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	for i, key := range k.keys {
		if err := d.Set(ctx, key, k.values[i]); err != nil {
			return err
		}
	}
	return nil
}
