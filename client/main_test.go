package client_test

import (
	"flag"
	"fmt"
	"os"
	"os/exec"
	"testing"

	"github.com/slotrouter/slotrouter/internal/redistest"
)

// serverExamples need real redis-server processes (Lua, replicas). An
// Example cannot skip itself, so without a server they are left out here,
// with the same message and the same REDIS_REQUIRED rule as the tests.
const serverExamples = "^ExampleNewScript$"

func TestMain(m *testing.M) {
	flag.Parse()
	if _, err := exec.LookPath("redis-server"); err != nil && os.Getenv(redistest.RequiredEnv) != "1" {
		skip := serverExamples
		if prev := flag.Lookup("test.skip").Value.String(); prev != "" {
			skip = prev + "|" + skip
		}
		_ = flag.Set("test.skip", skip)
		fmt.Fprintf(os.Stderr, "client: skipping %s: redis-server not found on PATH: install redis-server (CI sets %s=1)\n",
			serverExamples, redistest.RequiredEnv)
	}
	os.Exit(m.Run())
}
