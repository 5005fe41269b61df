package clustertest

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/slotrouter/slotrouter/slots"
)

func newGoRedis(t *testing.T, c *Cluster, mod func(*redis.ClusterOptions)) *redis.ClusterClient {
	t.Helper()
	o := &redis.ClusterOptions{Addrs: c.Addrs()[:1], MaxRedirects: 16, DialTimeout: 2 * time.Second,
		ReadTimeout: 2 * time.Second, WriteTimeout: 2 * time.Second, ContextTimeoutEnabled: true}
	if mod != nil {
		mod(o)
	}
	cc := redis.NewClusterClient(o)
	t.Cleanup(func() { _ = cc.Close() })
	return cc
}

// A real third-party cluster client must work unmodified against the
// in-process cluster: discovery, routing, pipelines, multi-slot fan-out.
func TestGoRedisClusterClient(t *testing.T) {
	c := New(t, Options{})
	cc := newGoRedis(t, c, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()

	for i := 0; i < 200; i++ {
		k := fmt.Sprintf("key:%d", i)
		if err := cc.Set(ctx, k, i, 0).Err(); err != nil {
			t.Fatalf("SET %s: %v", k, err)
		}
	}
	// Every master got a share, and each key lives on its slot's owner.
	for _, m := range c.Masters() {
		if m.Keys() == 0 {
			t.Errorf("master %s holds no keys", m)
		}
	}
	for i := 0; i < 200; i++ {
		k := fmt.Sprintf("key:%d", i)
		if got := c.MasterOf(slots.Of(k)); got == nil {
			t.Fatalf("no owner for %s", k)
		}
		v, err := cc.Get(ctx, k).Int()
		if err != nil || v != i {
			t.Fatalf("GET %s = %d, %v; want %d", k, v, err, i)
		}
	}
	pipe := cc.Pipeline()
	incrs := make([]*redis.IntCmd, 50)
	for i := range incrs {
		incrs[i] = pipe.Incr(ctx, fmt.Sprintf("ctr:%d", i%7))
	}
	if _, err := pipe.Exec(ctx); err != nil {
		t.Fatalf("pipeline: %v", err)
	}
	if err := cc.HSet(ctx, "{u1}h", "a", 1, "b", 2).Err(); err != nil {
		t.Fatal(err)
	}
	h, err := cc.HGetAll(ctx, "{u1}h").Result()
	if err != nil || h["a"] != "1" || h["b"] != "2" {
		t.Fatalf("HGETALL = %v, %v", h, err)
	}
	vals, err := cc.MGet(ctx, "{u1}a", "{u1}b").Result()
	if err != nil || len(vals) != 2 || vals[0] != nil {
		t.Fatalf("MGET = %v, %v", vals, err)
	}
	err = cc.MGet(ctx, "a", "b").Err()
	if err == nil || !strings.HasPrefix(err.Error(), "CROSSSLOT") {
		t.Fatalf("MGET across slots: %v, want CROSSSLOT", err)
	}
	var keys atomic.Int64
	err = cc.ForEachMaster(ctx, func(ctx context.Context, m *redis.Client) error {
		n, err := m.DBSize(ctx).Result()
		keys.Add(n)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if want := int64(200 + 7 + 1); keys.Load() != want {
		t.Errorf("DBSIZE over masters = %d, want %d", keys.Load(), want)
	}
}

// go-redis follows MOVED after a migration and a failover without help.
func TestGoRedisFollowsTopologyChanges(t *testing.T) {
	c := New(t, Options{NodeTimeout: 100 * time.Millisecond, FailoverDelay: 200 * time.Millisecond})
	cc := newGoRedis(t, c, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	const key = "{mig}k"
	slot := slots.Of(key)
	if err := cc.Set(ctx, key, "v1", 0).Err(); err != nil {
		t.Fatal(err)
	}
	src := c.MasterOf(slot)
	var dst *Node
	for _, m := range c.Masters() {
		if m != src {
			dst = m
			break
		}
	}
	if err := c.MigrateSlot(ctx, slot, dst); err != nil {
		t.Fatal(err)
	}
	if got, err := cc.Get(ctx, key).Result(); err != nil || got != "v1" {
		t.Fatalf("GET after migration = %q, %v", got, err)
	}
	if err := c.WaitReplicated(ctx); err != nil {
		t.Fatal(err)
	}
	nm, err := c.Failover(ctx, dst.Shard())
	if err != nil {
		t.Fatal(err)
	}
	if c.MasterOf(slot) != nm {
		t.Fatalf("slot %d owner = %v, want promoted %v", slot, c.MasterOf(slot), nm)
	}
	// go-redis only re-reads the slot map on MOVED or every 10 s; a dead
	// node answers nothing, so ask it to reload as an application would.
	cc.ReloadState(ctx)
	deadline := time.Now().Add(10 * time.Second)
	for {
		got, err := cc.Get(ctx, key).Result()
		if err == nil && got == "v1" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("GET after failover = %q, %v", got, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Many concurrent clients, under -race, hammer every node.
func TestGoRedisConcurrent(t *testing.T) {
	c := New(t, Options{})
	cc := newGoRedis(t, c, func(o *redis.ClusterOptions) { o.PoolSize = 16 })
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 200; i++ {
				k := fmt.Sprintf("c:%d", i%50)
				if err := cc.Incr(ctx, k).Err(); err != nil {
					errs <- err
					return
				}
				if err := cc.Get(ctx, k).Err(); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	var total int
	for i := 0; i < 50; i++ {
		v, err := cc.Get(ctx, fmt.Sprintf("c:%d", i)).Int()
		if err != nil {
			t.Fatal(err)
		}
		total += v
	}
	if total != 8*200 {
		t.Fatalf("sum of counters = %d, want %d", total, 8*200)
	}
}

// With ReadOnly, go-redis reads from replicas (after READONLY) and the
// replica serves them.
func TestGoRedisReadOnlyReplicas(t *testing.T) {
	c := New(t, Options{})
	cc := newGoRedis(t, c, func(o *redis.ClusterOptions) { o.ReadOnly = true; o.RouteRandomly = false })
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := cc.Set(ctx, "ro", "x", 0).Err(); err != nil {
		t.Fatal(err)
	}
	if err := c.WaitReplicated(ctx); err != nil {
		t.Fatal(err)
	}
	replica := c.ReplicasOf(c.MasterOf(slots.Of("ro")))[0]
	before := replica.Commands()
	for i := 0; i < 20; i++ {
		got, err := cc.Get(ctx, "ro").Result()
		if err != nil || got != "x" {
			t.Fatalf("GET = %q, %v", got, err)
		}
	}
	if served := replica.Commands() - before; served < 20 {
		t.Errorf("replica served %d commands, want the 20 reads", served)
	}
	if err := cc.Set(ctx, "ro", "y", 0).Err(); err != nil {
		t.Fatal(err)
	}
	var redisErr redis.Error
	if err := cc.Get(ctx, "missing-key").Err(); !errors.Is(err, redis.Nil) && !errors.As(err, &redisErr) {
		t.Fatalf("GET missing: %v", err)
	}
}
