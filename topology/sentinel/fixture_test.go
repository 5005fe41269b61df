package sentinel_test

import (
	"context"
	"net"
	"strconv"
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

// waitLinked waits until every replica reports its link to master up.
func waitLinked(t *testing.T, master string, replicas ...*redistest.Server) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for _, r := range replicas {
		for {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			v, err := r.Do(ctx, "ROLE")
			cancel()
			if arr, ok := v.([]any); err == nil && ok && len(arr) == 5 && arr[3] == "connected" {
				host, _ := arr[1].(string)
				port, _ := arr[2].(int64)
				if net.JoinHostPort(host, strconv.FormatInt(port, 10)) == master {
					break
				}
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: not linked to %s: %v %v", r.Addr, master, v, err)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
}
