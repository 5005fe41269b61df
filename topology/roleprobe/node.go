package roleprobe

import (
	"net"
	"net/netip"
	"strconv"

	"github.com/slotrouter/slotrouter/slots"
	"github.com/slotrouter/slotrouter/topology"
)

// newNode describes a probed node. Non-cluster nodes have no node id, so the address doubles
// as the id.
func newNode(st NodeStatus, role topology.Role, masterID string) *topology.Node {
	n := &topology.Node{ID: st.Addr, Addr: st.Addr, Role: role, MasterID: masterID,
		Connected: role == topology.RoleMaster || st.LinkUp, ReplOffset: st.Offset}
	if host, ps, err := net.SplitHostPort(st.Addr); err == nil {
		n.Port, _ = strconv.Atoi(ps)
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

func snapshot(r *Report) *topology.Snapshot {
	byAddr := map[string]NodeStatus{}
	for _, n := range r.Nodes {
		byAddr[n.Addr] = n
	}
	shard := topology.Shard{Ranges: []topology.Range{{Start: 0, End: slots.Count - 1}}}
	masterID := ""
	if r.Master != "" {
		shard.Master = newNode(byAddr[r.Master], topology.RoleMaster, "")
		masterID = shard.Master.ID
	}
	for _, a := range r.Replicas {
		shard.Replicas = append(shard.Replicas, newNode(byAddr[a], topology.RoleReplica, masterID))
	}
	return topology.NewSnapshot([]topology.Shard{shard})
}
