package clustertest_test

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"time"

	"github.com/slotrouter/slotrouter/clustertest"
	"github.com/slotrouter/slotrouter/slots"
)

// send writes one command in RESP and returns the first line of the reply.
func send(addr string, args ...string) string {
	nc, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return err.Error()
	}
	defer nc.Close()
	cmd := fmt.Sprintf("*%d\r\n", len(args))
	for _, a := range args {
		cmd += fmt.Sprintf("$%d\r\n%s\r\n", len(a), a)
	}
	if _, err := nc.Write([]byte(cmd)); err != nil {
		return err.Error()
	}
	line, _ := bufio.NewReader(nc).ReadString('\n')
	return line[:len(line)-2]
}

// A cluster in a program (in tests, use clustertest.New(t, opts), which
// closes it in t.Cleanup). The node that does not own a key redirects;
// the owner serves it; after a failover the replica owns the slot.
func Example() {
	c, err := clustertest.Start(clustertest.Options{Masters: 3, Replicas: 1})
	if err != nil {
		panic(err)
	}
	defer c.Close()

	owner := c.MasterOf(slots.Of("foo"))
	wrong := c.Masters()[0]
	moved := send(wrong.Addr(), "GET", "foo")
	fmt.Println(moved == "-MOVED 12182 "+owner.Addr())
	fmt.Println(send(owner.Addr(), "SET", "foo", "bar"))

	// Wait until the replica has the write, then kill the master.
	ctx := context.Background()
	if err := c.WaitReplicated(ctx); err != nil {
		panic(err)
	}
	promoted, err := c.Failover(ctx, owner.Shard())
	if err != nil {
		panic(err)
	}
	fmt.Println(promoted.Role(), c.MasterOf(slots.Of("foo")) == promoted)
	fmt.Println(send(promoted.Addr(), "GET", "foo"))
	// Output:
	// true
	// +OK
	// master true
	// $3
}
