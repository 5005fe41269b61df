package client

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/slotrouter/slotrouter/clustertest"
)

// An unknown command costs one COMMAND INFO, not one per call, and a known
// command with a bad subcommand costs none.
func TestUnknownCommandsAreLearntOnce(t *testing.T) {
	cl := clustertest.New(t, clustertest.Options{Masters: 3, Replicas: -1})
	sc := newSentCounter("INFO")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := New(ctx, Options{Addrs: cl.Addrs()[:1], Dialer: sc.dial})
	require.NoError(t, err)
	defer c.Close()
	infos := func() int {
		n := 0
		for _, a := range cl.Addrs() {
			n += sc.count(a, "INFO")
		}
		return n
	}
	for range 5 {
		err := c.Do(ctx, "NOSUCHCMD", "a").Err()
		require.ErrorContains(t, err, "unknown command")
	}
	require.Equal(t, 1, infos(), "one COMMAND INFO for a command the server does not know either")
	for range 5 {
		require.Error(t, c.Do(ctx, "CLIENT", "NOSUCHSUB").Err())
	}
	require.Equal(t, 1, infos(), "an unknown subcommand of a known command asks nothing")
}
