package redistest

import (
	"os"
	"os/exec"
	"testing"
)

// RequiredEnv is the environment variable that turns a missing Redis binary
// from a skip into a failure. CI sets it so that a broken install cannot make
// the whole suite silently skip.
const RequiredEnv = "REDIS_REQUIRED"

// Require returns the path of redis-server. When it is not on PATH the test is
// skipped, or failed when REDIS_REQUIRED=1.
func Require(t testing.TB) string {
	t.Helper()
	return requireBinary(t, "redis-server")
}

// RequireSentinel returns the path of redis-sentinel, with the same skip/fail
// rule as Require.
func RequireSentinel(t testing.TB) string {
	t.Helper()
	return requireBinary(t, "redis-sentinel")
}

func requireBinary(t testing.TB, name string) string {
	t.Helper()
	path, err := exec.LookPath(name)
	if err == nil {
		return path
	}
	msg := name + " not found on PATH: install " + name + " (CI sets " + RequiredEnv + "=1)"
	if os.Getenv(RequiredEnv) == "1" {
		t.Fatal(msg)
		return ""
	}
	t.Skip(msg)
	return ""
}
