package sentinel

import (
	"errors"
	"net"
	"strconv"

	"github.com/slotrouter/slotrouter/topology"
)

// splitAddr splits "host:port" and checks the port.
func splitAddr(addr string) (string, int, error) {
	host, ps, err := net.SplitHostPort(addr)
	if err != nil {
		return "", 0, err
	}
	port, err := strconv.Atoi(ps)
	if err != nil || port <= 0 || port > 65535 {
		return "", 0, errors.New("bad port " + strconv.Quote(ps))
	}
	if host == "" {
		return "", 0, errors.New("empty host")
	}
	return host, port, nil
}

// newNode describes a data node Sentinel named. A view keeps only the master it verified and
// replicas whose flags say they are up, so every node in it counts as connected.
func newNode(addr string, role topology.Role, masterID string) *topology.Node {
	n := topology.NewAddrNode(addr, role, masterID)
	n.Connected = true
	return n
}
