package roleprobe

import (
	"github.com/slotrouter/slotrouter/slots"
	"github.com/slotrouter/slotrouter/topology"
)

// newNode describes a probed node; a master is connected by definition, a replica when its
// link to the master is up.
func newNode(st NodeStatus, role topology.Role, masterID string) *topology.Node {
	n := topology.NewAddrNode(st.Addr, role, masterID)
	n.Connected = role == topology.RoleMaster || st.LinkUp
	n.ReplOffset = st.Offset
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
