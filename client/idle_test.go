package client

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/slotrouter/slotrouter/clustertest"
	"github.com/slotrouter/slotrouter/internal/redistest"
)

// A server that closes idle connections (the `timeout` setting) must not
// make the next plain write fail as "may have been sent": the close came
// before the write, so the client must notice it and dial again.
func TestIdleConnectionClosedByServer(t *testing.T) {
	srv := redistest.StartServer(t, redistest.ServerOptions{})
	n := newNode(srv.Addr, &connConfig{})
	defer n.close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	set := func(v string) error {
		cmd, err := newCommand([]any{"SET", "k", v})
		require.NoError(t, err)
		defer cmd.release()
		res, err := n.do(ctx, cmd, false)
		if err != nil {
			return err
		}
		return res.Err()
	}
	require.NoError(t, set("1"))
	// The server drops the idle connection, as `timeout` or a proxy would.
	killed, err := srv.Do(ctx, "CLIENT", "KILL", "TYPE", "normal", "SKIPME", "yes")
	require.NoError(t, err)
	require.EqualValues(t, 1, killed)
	time.Sleep(20 * time.Millisecond) // let the FIN arrive; the client is not told
	require.NoError(t, set("2"), "a write after the server closed the idle connection")
}

// After a failover the client's connection to the promoted node was
// opened by discovery and has sat idle; a plain write on it must work.
func TestPlainWriteAfterFailover(t *testing.T) {
	cl := clustertest.New(t, clustertest.Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := New(ctx, Options{Addrs: cl.Addrs(), RefreshInterval: time.Hour})
	require.NoError(t, err)
	defer c.Close()
	require.NoError(t, c.Do(ctx, "SET", "{a}k", "1").Err())
	_, err = cl.Failover(ctx, cl.MasterOf(15495).Shard())
	require.NoError(t, err)
	require.NoError(t, c.Do(ctx, "SET", "{a}k", "2").Err())
	v, err := c.Do(ctx, "GET", "{a}k").Text()
	require.NoError(t, err)
	require.Equal(t, "2", v)
}
