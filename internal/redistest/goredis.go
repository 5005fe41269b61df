package redistest

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/redis/go-redis/v9/maintnotifications"
)

// GoRedisIO implements the injected Exec and Subscribe functions of topology/sentinel and
// topology/roleprobe with go-redis, so that their tests talk to real servers through a client
// other than the one under development. It keeps one RESP2 client per address with no command
// retries and a single dial attempt, so the code under test sees failures at once (go-redis
// otherwise re-dials a dead node five times 100 ms apart).
type GoRedisIO struct {
	password string
	mu       sync.Mutex
	clients  map[string]*redis.Client
}

// NewGoRedisIO returns a GoRedisIO that authenticates with password (none when empty); its
// clients are closed in t.Cleanup.
func NewGoRedisIO(t testing.TB, password string) *GoRedisIO {
	g := &GoRedisIO{password: password, clients: map[string]*redis.Client{}}
	t.Cleanup(func() {
		g.mu.Lock()
		defer g.mu.Unlock()
		for _, c := range g.clients {
			c.Close()
		}
	})
	return g
}

func (g *GoRedisIO) client(addr string) *redis.Client {
	g.mu.Lock()
	defer g.mu.Unlock()
	c := g.clients[addr]
	if c == nil {
		c = redis.NewClient(&redis.Options{
			Addr: addr, Password: g.password, Protocol: 2, DisableIdentity: true,
			MaxRetries: -1, DialerRetries: 1, DialTimeout: time.Second, ReadTimeout: 2 * time.Second,
			WriteTimeout: 2 * time.Second, ContextTimeoutEnabled: true, PoolSize: 4,
			MaintNotificationsConfig: &maintnotifications.Config{Mode: maintnotifications.ModeDisabled},
		})
		g.clients[addr] = c
	}
	return c
}

// Exec sends one command to addr and returns its decoded reply.
func (g *GoRedisIO) Exec(ctx context.Context, addr string, args ...any) (any, error) {
	v, err := g.client(addr).Do(ctx, args...).Result()
	if errors.Is(err, redis.Nil) {
		return nil, nil // go-redis turns null replies into an error; the Exec contract wants nil
	}
	return v, err
}

// Subscribe follows channels on addr until ctx ends or the connection fails; go-redis' own
// reconnection is bypassed (Receive, not Channel) so that failures reach the caller.
func (g *GoRedisIO) Subscribe(ctx context.Context, addr string, channels []string, fn func(channel, payload string)) error {
	ps := g.client(addr).Subscribe(ctx)
	defer ps.Close()
	stop := context.AfterFunc(ctx, func() { ps.Close() })
	defer stop()
	if err := ps.Subscribe(ctx, channels...); err != nil {
		return err
	}
	for {
		msg, err := ps.Receive(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return err
		}
		if m, ok := msg.(*redis.Message); ok {
			fn(m.Channel, m.Payload)
		}
	}
}

type quietGoRedisLog struct{}

func (quietGoRedisLog) Printf(context.Context, string, ...any) {}

// QuietGoRedis silences go-redis' own logging, process-wide (call it from TestMain): tests
// that kill servers on purpose would otherwise drown their output in "failed to dial" lines.
func QuietGoRedis() { redis.SetLogger(quietGoRedisLog{}) }
