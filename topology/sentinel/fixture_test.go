package sentinel_test

import (
	"testing"
	"time"

	"github.com/slotrouter/slotrouter/internal/redistest"
)

// fixture is a Sentinel-managed set started by redistest.StartSentinelGroup.
type fixture struct {
	name       string
	master     *redistest.Server
	replicas   []*redistest.Server
	sentinels  []string
	nodePW     string
	sentinelPW string // the harness's Sentinels have no requirepass
	group      *redistest.SentinelGroup
}

func startFixture(t *testing.T, replicas, sentinels int, downAfter time.Duration) *fixture {
	t.Helper()
	const pw = "pw"
	g := redistest.StartSentinelGroup(t, redistest.SentinelOptions{
		Replicas: replicas, Sentinels: sentinels, Password: pw, DownAfter: downAfter,
	})
	f := &fixture{name: g.MasterName(), nodePW: pw, sentinels: g.SentinelAddrs(), group: g}
	f.master = g.Master()
	for _, s := range g.Servers() {
		if s != f.master {
			f.replicas = append(f.replicas, s)
		}
	}
	return f
}
