package main

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/redis/rueidis"

	"github.com/slotrouter/slotrouter/client"
)

// driver is one client library under test, reduced to what the workloads
// need. Every method is safe for concurrent use. A nil reply (missing key)
// is not an error.
type driver interface {
	Get(ctx context.Context, key string) error
	Set(ctx context.Context, key, val string) error
	// Pipeline sends one GET per key in a single batch (keys span slots).
	Pipeline(ctx context.Context, keys []string) error
	// MGet reads keys spanning slots the library's best way: slotrouter's
	// MGET (split by slot, one pipelined round per node), go-redis'
	// pipelined GETs, rueidis' DoMulti.
	MGet(ctx context.Context, keys []string) error
	Close()
}

// clientSpec names a driver and how to build one against addrs.
type clientSpec struct {
	name string
	// pipeline is false when the library has no batch API worth measuring
	// in that mode (go-redis auto-pipelining batches implicitly).
	pipeline bool
	dial     func(ctx context.Context, addrs []string) (driver, error)
}

var allClients = []clientSpec{
	{name: "slotrouter", pipeline: true, dial: dialSlotrouter},
	{name: "rueidis", pipeline: true, dial: dialRueidis},
	{name: "go-redis", pipeline: true, dial: dialGoRedis},
	{name: "go-redis-auto", pipeline: false, dial: dialGoRedisAuto},
}

// --- slotrouter ---

type srDriver struct{ c *client.Client }

func dialSlotrouter(ctx context.Context, addrs []string) (driver, error) {
	c, err := client.New(ctx, client.Options{Addrs: addrs})
	if err != nil {
		return nil, err
	}
	return srDriver{c}, nil
}

func (d srDriver) Get(ctx context.Context, key string) error {
	if err := d.c.Do(ctx, "GET", key).Err(); err != nil && !errors.Is(err, client.ErrNil) {
		return err
	}
	return nil
}

func (d srDriver) Set(ctx context.Context, key, val string) error {
	return d.c.Do(ctx, "SET", key, val).Err()
}

func (d srDriver) Pipeline(ctx context.Context, keys []string) error {
	p := d.c.Pipeline()
	for _, k := range keys {
		p.Do("GET", k)
	}
	_, err := p.Exec(ctx)
	if errors.Is(err, client.ErrNil) {
		err = nil
	}
	return err
}

func (d srDriver) MGet(ctx context.Context, keys []string) error {
	args := make([]any, 1, len(keys)+1)
	args[0] = "MGET"
	for _, k := range keys {
		args = append(args, k)
	}
	return d.c.Do(ctx, args...).Err()
}

func (d srDriver) Close() { _ = d.c.Close() }

// --- rueidis ---

type rueidisDriver struct{ c rueidis.Client }

func dialRueidis(ctx context.Context, addrs []string) (driver, error) {
	// Defaults, except client-side caching, which no workload here uses.
	c, err := rueidis.NewClient(rueidis.ClientOption{InitAddress: addrs, DisableCache: true})
	if err != nil {
		return nil, err
	}
	return rueidisDriver{c}, nil
}

func (d rueidisDriver) Get(ctx context.Context, key string) error {
	err := d.c.Do(ctx, d.c.B().Get().Key(key).Build()).Error()
	if err != nil && !rueidis.IsRedisNil(err) {
		return err
	}
	return nil
}

func (d rueidisDriver) Set(ctx context.Context, key, val string) error {
	return d.c.Do(ctx, d.c.B().Set().Key(key).Value(val).Build()).Error()
}

func (d rueidisDriver) Pipeline(ctx context.Context, keys []string) error {
	cmds := make(rueidis.Commands, len(keys))
	for i, k := range keys {
		cmds[i] = d.c.B().Get().Key(k).Build()
	}
	for _, r := range d.c.DoMulti(ctx, cmds...) {
		if err := r.Error(); err != nil && !rueidis.IsRedisNil(err) {
			return err
		}
	}
	return nil
}

// MGet: rueidis' cross-slot answer is DoMulti of GETs.
func (d rueidisDriver) MGet(ctx context.Context, keys []string) error { return d.Pipeline(ctx, keys) }

func (d rueidisDriver) Close() { d.c.Close() }

// --- go-redis (pooled ClusterClient, default options) ---

type goRedisDriver struct {
	cc  *redis.ClusterClient
	cmd getSetter // cc itself, or its auto-pipeliner
	ap  *redis.AutoPipeliner
}

func dialGoRedis(ctx context.Context, addrs []string) (driver, error) {
	cc := redis.NewClusterClient(&redis.ClusterOptions{Addrs: addrs})
	if err := cc.Ping(ctx).Err(); err != nil {
		_ = cc.Close()
		return nil, err
	}
	return &goRedisDriver{cc: cc, cmd: cc}, nil
}

// dialGoRedisAuto is go-redis v9's experimental blocking auto-pipeliner for
// clusters (ClusterClient.AutoPipeline, default options): concurrent calls
// are batched per slot-range shard.
func dialGoRedisAuto(ctx context.Context, addrs []string) (driver, error) {
	cc := redis.NewClusterClient(&redis.ClusterOptions{Addrs: addrs})
	if err := cc.Ping(ctx).Err(); err != nil {
		_ = cc.Close()
		return nil, err
	}
	ap, err := cc.AutoPipeline()
	if err != nil {
		_ = cc.Close()
		return nil, fmt.Errorf("go-redis AutoPipeline: %w", err)
	}
	return &goRedisDriver{cc: cc, cmd: ap, ap: ap}, nil
}

func (d *goRedisDriver) Get(ctx context.Context, key string) error {
	if err := d.cmd.Get(ctx, key).Err(); err != nil && err != redis.Nil {
		return err
	}
	return nil
}

func (d *goRedisDriver) Set(ctx context.Context, key, val string) error {
	return d.cmd.Set(ctx, key, val, 0).Err()
}

func (d *goRedisDriver) Pipeline(ctx context.Context, keys []string) error {
	p := d.cc.Pipeline()
	for _, k := range keys {
		p.Get(ctx, k)
	}
	_, err := p.Exec(ctx)
	if err == redis.Nil {
		err = nil
	}
	return err
}

// MGet: go-redis' ClusterClient refuses a cross-slot MGET; its answer is a
// pipeline of GETs.
func (d *goRedisDriver) MGet(ctx context.Context, keys []string) error { return d.Pipeline(ctx, keys) }

func (d *goRedisDriver) Close() {
	if d.ap != nil {
		_ = d.ap.Close()
	}
	_ = d.cc.Close()
}

type getSetter interface {
	Get(ctx context.Context, key string) *redis.StringCmd
	Set(ctx context.Context, key string, value any, expiration time.Duration) *redis.StatusCmd
}

// quietLogger drops go-redis' own log lines (dial failures during the
// failover round): errors are counted from what the calls return instead.
type quietLogger struct{}

func (quietLogger) Printf(context.Context, string, ...any) {}

func init() { redis.SetLogger(quietLogger{}) }

// dialTimeout bounds client construction (topology discovery).
const dialTimeout = 20 * time.Second
