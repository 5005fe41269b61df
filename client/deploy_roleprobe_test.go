package client

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/slotrouter/slotrouter/internal/redistest"
)

// Plain servers given as Addrs, without RoleProbe: CLUSTER NODES is
// refused, so the client role-probes them. PreferReplica reads go to the
// replica (READONLY, which such servers refuse, is not sent).
func TestRoleProbeAutoDetect(t *testing.T) {
	redistest.Require(t)
	m := redistest.StartServer(t, redistest.ServerOptions{})
	rep := redistest.StartServer(t, redistest.ServerOptions{ReplicaOf: m.Addr})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := New(ctx, Options{Addrs: []string{rep.Addr, m.Addr}, ReadPolicy: PreferReplica})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Do(ctx, "SET", "auto", "1").Err(); err != nil {
		t.Fatal(err)
	}
	if c.RoleReport() == nil || c.RoleReport().Master != m.Addr {
		t.Fatalf("role report %+v, want master %s", c.RoleReport(), m.Addr)
	}
	// The replica may miss the first view: its first connection was
	// refused READONLY while the client still took it for a cluster node.
	waitFor(t, 5*time.Second, "one shard with the master and its replica", func() error {
		sh := c.Topology().Shards()
		if len(sh) != 1 || sh[0].Master.Addr != m.Addr || len(sh[0].Replicas) != 1 || sh[0].Ranges[0].Len() != 16384 {
			return notYet("topology %v", c.Topology())
		}
		return nil
	})
	waitFor(t, 5*time.Second, "the read on the replica", func() error {
		v, err := c.Do(ctx, "GET", "auto").Text()
		if err != nil || v != "1" {
			return notYet("GET = %q, %v", v, err)
		}
		if n := infoOf(t, rep, "commandstats")["cmdstat_get"]; n == "" {
			return notYet("no GET ran on the replica")
		}
		return nil
	})
}

// Bad options are refused with typed errors, before anything is dialled.
func TestDeployOptionErrors(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, err := New(ctx, Options{Sentinel: &SentinelOptions{MasterName: "m"}})
	if !errors.Is(err, ErrSentinelOptions) {
		t.Errorf("sentinel without Addrs: %v", err)
	}
	_, err = New(ctx, Options{Sentinel: &SentinelOptions{Addrs: []string{"127.0.0.1:1"}}})
	if !errors.Is(err, ErrSentinelOptions) {
		t.Errorf("sentinel without MasterName: %v", err)
	}
	_, err = New(ctx, Options{Addrs: []string{"no-port"}, RoleProbe: &RoleProbeOptions{}})
	if !errors.Is(err, ErrRoleProbeOptions) {
		t.Errorf("role probe with a bad address: %v", err)
	}
}
