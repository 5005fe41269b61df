package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"time"
)

// pin puts every node's process on CPU serverCPU and this process on
// clientCPU with GOMAXPROCS 1 (taskset -a: every thread), the layout where
// the servers do not compete with the client for a core. Threads the Go
// runtime starts later inherit the affinity.
func pin(t *target, serverCPU, clientCPU int) error {
	for _, a := range t.admin {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		s, err := a.Info(ctx, "server").Result()
		cancel()
		if err != nil {
			return err
		}
		pid := ""
		for _, line := range strings.Split(s, "\r\n") {
			if v, ok := strings.CutPrefix(line, "process_id:"); ok {
				pid = v
			}
		}
		if pid == "" {
			return fmt.Errorf("no process_id in INFO server")
		}
		if out, err := exec.Command("taskset", "-a", "-p", "-c", strconv.Itoa(serverCPU), pid).CombinedOutput(); err != nil {
			return fmt.Errorf("taskset %s: %v: %s", pid, err, out)
		}
	}
	self := strconv.Itoa(os.Getpid())
	if out, err := exec.Command("taskset", "-a", "-p", "-c", strconv.Itoa(clientCPU), self).CombinedOutput(); err != nil {
		return fmt.Errorf("taskset self: %v: %s", err, out)
	}
	runtime.GOMAXPROCS(1)
	return nil
}
