package sentinel_test

import (
	"os"
	"testing"

	"github.com/slotrouter/slotrouter/internal/redistest"
)

// TestMain silences go-redis' own logging: the tests kill servers on purpose, and its
// "failed to dial" lines would bury the output that matters.
func TestMain(m *testing.M) {
	redistest.QuietGoRedis()
	os.Exit(m.Run())
}
