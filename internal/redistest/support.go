package redistest

import (
	"bytes"
	"context"
	"net"
	"strconv"
	"sync"
	"testing"
	"time"
)

// WaitLinked waits (up to 20 s in all) until every replica's ROLE says it is connected to
// master (host:port as the replica reports it), failing t otherwise. Tests that promote by
// hand need it: a REPLICAOF returns before the link is up.
func WaitLinked(t testing.TB, master string, replicas ...*Server) {
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

// SyncBuffer is a bytes.Buffer safe for concurrent use, for capturing the logs of background
// goroutines (slog handlers write from them) while the test reads.
type SyncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *SyncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *SyncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
