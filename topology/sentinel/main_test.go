package sentinel_test

import (
	"context"
	"os"
	"testing"

	"github.com/redis/go-redis/v9"
)

type quietRedisLog struct{}

func (quietRedisLog) Printf(context.Context, string, ...any) {}

// TestMain silences go-redis' own logging: the tests kill servers on purpose, and its
// "failed to dial" lines would bury the output that matters.
func TestMain(m *testing.M) {
	redis.SetLogger(quietRedisLog{})
	os.Exit(m.Run())
}
