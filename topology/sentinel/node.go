package sentinel

import (
	"errors"
	"net"
	"net/netip"
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

// newNode describes a data node Sentinel named. Sentinel-managed nodes have no cluster node id,
// so the address doubles as the id (unique within a snapshot, and stable across discoveries).
func newNode(addr string, role topology.Role, masterID string) *topology.Node {
	n := &topology.Node{ID: addr, Addr: addr, Role: role, MasterID: masterID, Connected: true}
	host, port, err := splitAddr(addr)
	if err == nil {
		n.Port = port
		// Sentinel with announce-hostnames reports names, not IPs.
		if _, perr := netip.ParseAddr(host); perr == nil {
			n.IP = host
		} else {
			n.Hostname = host
		}
	}
	if role == topology.RoleMaster {
		n.Flags = topology.Master
	} else {
		n.Flags = topology.Replica
	}
	return n
}
