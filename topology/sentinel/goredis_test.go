package sentinel_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/redis/go-redis/v9/maintnotifications"
)

// goredisIO implements the injected Exec and Subscribe with go-redis: one RESP2 client per
// address, no command retries and a single dial attempt, so the source sees failures at once
// (go-redis otherwise re-dials a dead node five times 100 ms apart).
type goredisIO struct {
	password string
	mu       sync.Mutex
	clients  map[string]*redis.Client
}

func newIO(t testing.TB, password string) *goredisIO {
	io := &goredisIO{password: password, clients: map[string]*redis.Client{}}
	t.Cleanup(func() {
		io.mu.Lock()
		defer io.mu.Unlock()
		for _, c := range io.clients {
			c.Close()
		}
	})
	return io
}

func (io *goredisIO) client(addr string) *redis.Client {
	io.mu.Lock()
	defer io.mu.Unlock()
	c := io.clients[addr]
	if c == nil {
		c = redis.NewClient(&redis.Options{
			Addr: addr, Password: io.password, Protocol: 2, DisableIdentity: true,
			MaxRetries: -1, DialerRetries: 1, DialTimeout: time.Second, ReadTimeout: 2 * time.Second,
			WriteTimeout: 2 * time.Second, ContextTimeoutEnabled: true, PoolSize: 4,
			MaintNotificationsConfig: &maintnotifications.Config{Mode: maintnotifications.ModeDisabled},
		})
		io.clients[addr] = c
	}
	return c
}

func (io *goredisIO) Exec(ctx context.Context, addr string, args ...any) (any, error) {
	v, err := io.client(addr).Do(ctx, args...).Result()
	if errors.Is(err, redis.Nil) {
		return nil, nil // go-redis turns null replies into an error; the contract wants nil
	}
	return v, err
}

// Subscribe follows channels on addr until ctx ends or the connection fails; go-redis' own
// reconnection is bypassed (Receive, not Channel) so that failures reach the source.
func (io *goredisIO) Subscribe(ctx context.Context, addr string, channels []string, fn func(channel, payload string)) error {
	ps := io.client(addr).Subscribe(ctx)
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
