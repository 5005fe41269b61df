package main

import (
	"context"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/redis/rueidis"

	"github.com/slotrouter/slotrouter/client"
)

// driver is one client library under test, reduced to what the workloads
// need. Every method is safe for concurrent use. Reads compare each reply
// with the value the key holds (want): a missing key or another key's
// value is an error.
type driver interface {
	Get(ctx context.Context, key, want string) error
	Set(ctx context.Context, key, val string) error
	// Pipeline sends one GET per key in a single batch (keys span slots).
	Pipeline(ctx context.Context, keys, want []string) error
	// MGet reads keys spanning slots the library's best way: slotrouter's
	// MGET (split by slot, one pipelined round per node), go-redis'
	// pipelined GETs, rueidis' DoMulti.
	MGet(ctx context.Context, keys, want []string) error
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

// maxGoroutines is the largest concurrency of the run (set by the flags): go-redis-pool
// sizes its pool to it (connections are opened on demand, so smaller
// rows use fewer).
var maxGoroutines = 1

var allClients = []clientSpec{
	{name: "slotrouter", pipeline: true, dial: dialSlotrouter},
	{name: "rueidis", pipeline: true, dial: dialRueidis(0)},
	{name: "rueidis-20us", pipeline: true, dial: dialRueidis(20 * time.Microsecond)},
	{name: "rueidis-100us", pipeline: true, dial: dialRueidis(100 * time.Microsecond)},
	{name: "go-redis", pipeline: true, dial: dialGoRedis(0)},
	{name: "go-redis-pool", pipeline: true, dial: dialGoRedis(-1)},
	{name: "go-redis-auto", pipeline: false, dial: dialGoRedisAuto(0)},
	{name: "go-redis-auto-100us", pipeline: false, dial: dialGoRedisAuto(100 * time.Microsecond)},
}

// checked is a read's error, or a mismatch when it returned another value.
func checked(key, got, want string, err error) error {
	if err == nil && got != want {
		err = fmt.Errorf("GET %s = %q, want %q", key, got, want)
	}
	return err
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

func (d srDriver) Get(ctx context.Context, key, want string) error {
	v, err := d.c.Do(ctx, "GET", key).Text()
	return checked(key, v, want, err)
}

func (d srDriver) Set(ctx context.Context, key, val string) error {
	return d.c.Do(ctx, "SET", key, val).Err()
}

func (d srDriver) Pipeline(ctx context.Context, keys, want []string) error {
	p := d.c.Pipeline()
	for _, k := range keys {
		p.Do("GET", k)
	}
	rs, err := p.Exec(ctx)
	if err != nil {
		return err
	}
	for i, r := range rs {
		v, err := r.Text()
		if err := checked(keys[i], v, want[i], err); err != nil {
			return err
		}
	}
	return nil
}

func (d srDriver) MGet(ctx context.Context, keys, want []string) error {
	args := make([]any, 1, len(keys)+1)
	args[0] = "MGET"
	for _, k := range keys {
		args = append(args, k)
	}
	vs, err := d.c.Do(ctx, args...).Strings()
	if err != nil {
		return err
	}
	for i, v := range vs {
		if err := checked(keys[i], v, want[i], nil); err != nil {
			return err
		}
	}
	return nil
}

func (d srDriver) Close() { _ = d.c.Close() }

// --- rueidis ---

type rueidisDriver struct{ c rueidis.Client }

// dialRueidis: defaults (MaxFlushDelay as given), except client-side
// caching, which no workload here uses.
func dialRueidis(flushDelay time.Duration) func(ctx context.Context, addrs []string) (driver, error) {
	return func(ctx context.Context, addrs []string) (driver, error) {
		c, err := rueidis.NewClient(rueidis.ClientOption{InitAddress: addrs, DisableCache: true, MaxFlushDelay: flushDelay})
		if err != nil {
			return nil, err
		}
		return rueidisDriver{c}, nil
	}
}

func (d rueidisDriver) Get(ctx context.Context, key, want string) error {
	v, err := d.c.Do(ctx, d.c.B().Get().Key(key).Build()).ToString()
	return checked(key, v, want, err)
}

func (d rueidisDriver) Set(ctx context.Context, key, val string) error {
	return d.c.Do(ctx, d.c.B().Set().Key(key).Value(val).Build()).Error()
}

func (d rueidisDriver) Pipeline(ctx context.Context, keys, want []string) error {
	cmds := make(rueidis.Commands, len(keys))
	for i, k := range keys {
		cmds[i] = d.c.B().Get().Key(k).Build()
	}
	for i, r := range d.c.DoMulti(ctx, cmds...) {
		v, err := r.ToString()
		if err := checked(keys[i], v, want[i], err); err != nil {
			return err
		}
	}
	return nil
}

// MGet: rueidis' cross-slot answer is DoMulti of GETs.
func (d rueidisDriver) MGet(ctx context.Context, keys, want []string) error {
	return d.Pipeline(ctx, keys, want)
}

func (d rueidisDriver) Close() { d.c.Close() }

// --- go-redis ---

type goRedisDriver struct {
	cc  *redis.ClusterClient
	cmd getSetter // cc itself, or its auto-pipeliner
	ap  *redis.AutoPipeliner
}

// dialGoRedis is the pooled ClusterClient: default options (poolSize 0),
// or a pool per node sized to the largest concurrency (-1).
func dialGoRedis(poolSize int) func(ctx context.Context, addrs []string) (driver, error) {
	return func(ctx context.Context, addrs []string) (driver, error) {
		if poolSize < 0 {
			poolSize = maxGoroutines
		}
		cc := redis.NewClusterClient(&redis.ClusterOptions{Addrs: addrs, PoolSize: poolSize})
		if err := cc.Ping(ctx).Err(); err != nil {
			_ = cc.Close()
			return nil, err
		}
		return &goRedisDriver{cc: cc, cmd: cc}, nil
	}
}

// dialGoRedisAuto is go-redis v9's blocking auto-pipeliner for clusters
// (ClusterClient.AutoPipeline): concurrent calls are batched per shard.
// flushDelay 0 is its default preset; otherwise the preset with
// MaxFlushDelay set, the setting its documentation recommends (100µs).
func dialGoRedisAuto(flushDelay time.Duration) func(ctx context.Context, addrs []string) (driver, error) {
	return func(ctx context.Context, addrs []string) (driver, error) {
		cc := redis.NewClusterClient(&redis.ClusterOptions{Addrs: addrs})
		if err := cc.Ping(ctx).Err(); err != nil {
			_ = cc.Close()
			return nil, err
		}
		var opts *redis.AutoPipelineOptions
		if flushDelay > 0 {
			opts = redis.DefaultBlockingAutoPipelineOptions()
			opts.MaxFlushDelay = flushDelay
		}
		ap, err := cc.AutoPipelineWithOptions(opts)
		if err != nil {
			_ = cc.Close()
			return nil, fmt.Errorf("go-redis AutoPipeline: %w", err)
		}
		return &goRedisDriver{cc: cc, cmd: ap, ap: ap}, nil
	}
}

func (d *goRedisDriver) Get(ctx context.Context, key, want string) error {
	v, err := d.cmd.Get(ctx, key).Result()
	return checked(key, v, want, err)
}

func (d *goRedisDriver) Set(ctx context.Context, key, val string) error {
	return d.cmd.Set(ctx, key, val, 0).Err()
}

func (d *goRedisDriver) Pipeline(ctx context.Context, keys, want []string) error {
	p := d.cc.Pipeline()
	cmds := make([]*redis.StringCmd, len(keys))
	for i, k := range keys {
		cmds[i] = p.Get(ctx, k)
	}
	if _, err := p.Exec(ctx); err != nil {
		return err
	}
	for i, c := range cmds {
		v, err := c.Result()
		if err := checked(keys[i], v, want[i], err); err != nil {
			return err
		}
	}
	return nil
}

// MGet: go-redis' ClusterClient refuses a cross-slot MGET; its answer is a
// pipeline of GETs.
func (d *goRedisDriver) MGet(ctx context.Context, keys, want []string) error {
	return d.Pipeline(ctx, keys, want)
}

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
