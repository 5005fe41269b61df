package topology

import (
	"net"
	"strconv"

	"github.com/slotrouter/slotrouter/internal/replyconv"
	"github.com/slotrouter/slotrouter/slots"
)

// ReplyOptions tell the CLUSTER SLOTS / SHARDS parsers what they cannot see
// in the reply itself.
type ReplyOptions struct {
	// AskedHost is the host (without port) of the node the reply came from.
	// A NULL or "" endpoint means "the host you are talking to"
	// (cluster-preferred-endpoint-type unknown-endpoint, or a node that does
	// not know its own ip), so it resolves to AskedHost. When AskedHost is
	// empty such nodes get no Addr and are not routable.
	AskedHost string
	// TLS makes CLUSTER SHARDS nodes dial tls-port instead of port.
	TLS bool
}

// ParseClusterSlots is ParseClusterSlotsWith with zero options.
func ParseClusterSlots(reply any) ([]Shard, error) {
	return ParseClusterSlotsWith(reply, ReplyOptions{})
}

// ParseClusterSlotsWith parses a CLUSTER SLOTS reply of any version (3.0
// two-element nodes, 3.2+ with id, 7.0+ with metadata as a flat array or a
// map). The reply is a decoded tree: []any, string or []byte, int64, nil,
// and map[string]any / map[any]any for RESP3 maps.
//
// Entries of one master (6.2+ emits one per contiguous run) become one
// Shard. Endpoint rules: NULL or "" means opts.AskedHost; "?" means the
// node has no usable address (Addr stays empty, so it is not routable).
// Replicas with an empty endpoint and port 0 (noaddr) are dropped; such a
// master is kept so the slots stay known as owned, but is not routable.
func ParseClusterSlotsWith(reply any, opts ReplyOptions) ([]Shard, error) {
	entries, ok := asArray(reply)
	if !ok {
		return nil, slotsErr(0, "reply", "not an array: "+typeName(reply))
	}
	var out []Shard
	byKey := map[string]int{}
	for i, e := range entries {
		ln := i + 1
		arr, ok := asArray(e)
		if !ok || len(arr) < 3 {
			return nil, slotsErr(ln, "entry", "want an array of start, end, master[, replicas]")
		}
		start, ok1 := replyconv.Int(arr[0])
		end, ok2 := replyconv.Int(arr[1])
		if !ok1 || !ok2 || start < 0 || end < start || end >= slots.Count {
			return nil, slotsErr(ln, "range", "bad slot range")
		}
		var shardNodes [](*Node)
		for j, nv := range arr[2:] {
			n, err := parseSlotsNode(nv, opts, ln, j)
			if err != nil {
				return nil, err
			}
			if j == 0 {
				n.Role, n.Flags = RoleMaster, n.Flags|Master
			} else {
				n.Role, n.Flags = RoleReplica, n.Flags|Replica
				if n.Port == 0 && n.Addr == "" && n.IP == "" {
					continue
				}
			}
			shardNodes = append(shardNodes, n)
		}
		m := shardNodes[0]
		key := m.ID
		if key == "" {
			key = "addr:" + m.Addr + "/" + strconv.Itoa(m.Port)
		}
		r := Range{slots.Slot(start), slots.Slot(end)}
		if idx, seen := byKey[key]; seen {
			out[idx].Ranges = append(out[idx].Ranges, r)
			continue
		}
		for _, rep := range shardNodes[1:] {
			rep.MasterID = m.ID
		}
		byKey[key] = len(out)
		out = append(out, Shard{Master: m, Replicas: shardNodes[1:], Ranges: []Range{r}})
	}
	for i := range out {
		out[i].Master.Slots = out[i].Ranges
	}
	return out, nil
}

func slotsErr(ln int, field, reason string) error {
	return &ParseError{Source: "CLUSTER SLOTS", Line: ln, Field: field, Reason: reason}
}

func parseSlotsNode(v any, opts ReplyOptions, ln, j int) (*Node, error) {
	fieldName := "nodes[" + strconv.Itoa(j) + "]"
	arr, ok := asArray(v)
	if !ok || len(arr) < 2 {
		return nil, slotsErr(ln, fieldName, "want [endpoint, port, ...]")
	}
	n := &Node{Connected: true}
	endpoint, isNull, ok := asStringOrNull(arr[0])
	if !ok {
		return nil, slotsErr(ln, fieldName+".endpoint", "not a string or NULL: "+typeName(arr[0]))
	}
	port, ok := replyconv.Int(arr[1])
	if !ok || port < 0 || port > 65535 {
		return nil, slotsErr(ln, fieldName+".port", "not a port number")
	}
	n.Port = int(port)
	if len(arr) >= 3 {
		id, ok := replyconv.String(arr[2])
		if !ok || (id != "" && !isNodeID(id)) {
			return nil, slotsErr(ln, fieldName+".id", "not a node id")
		}
		n.ID = id
	}
	if len(arr) >= 4 {
		err := eachPair(arr[3], func(k string, val any) bool {
			s, ok := replyconv.String(val)
			if !ok {
				return false
			}
			switch k {
			case "ip":
				n.IP = s
			case "hostname":
				n.Hostname = s
			}
			return true
		})
		if err != "" {
			return nil, slotsErr(ln, fieldName+".metadata", err)
		}
	}
	setEndpoint(n, endpoint, isNull, opts.AskedHost, n.Port)
	return n, nil
}

// setEndpoint applies the endpoint rules shared by SLOTS and SHARDS.
func setEndpoint(n *Node, endpoint string, isNull bool, asked string, port int) {
	switch {
	case endpoint == "?":
		// Hostname endpoints requested but this node has none: the ip is
		// known to be the wrong thing to dial (why else ask for hostnames).
		return
	case isNull || endpoint == "":
		endpoint = asked
	case net.ParseIP(endpoint) == nil:
		if n.Hostname == "" {
			n.Hostname = endpoint
		}
	default:
		if n.IP == "" {
			n.IP = endpoint
		}
	}
	if endpoint == "" || port == 0 {
		return
	}
	n.Addr = net.JoinHostPort(endpoint, strconv.Itoa(port))
}

// ParseClusterShards is ParseClusterShardsWith with zero options.
func ParseClusterShards(reply any) ([]Shard, error) {
	return ParseClusterShardsWith(reply, ReplyOptions{})
}

// ParseClusterShardsWith parses a CLUSTER SHARDS reply (7.0+), RESP2 (maps
// as flat key/value arrays) or RESP3 (maps). Keys are read by name, missing
// ones tolerated (a noaddr node has no "port").
//
// The shard's master is its first "master" node that is not health "fail";
// any other master (7.2+ keeps a failed ex-primary in its old shard) becomes
// a shard of its own with no slots, as 7.0 reports it. A shard with no
// master at all is skipped. Health "fail" sets Fail on the node; "loading"
// makes it not routable. Nodes with neither a port nor a tls-port and no
// endpoint (noaddr) are dropped unless they are the master.
func ParseClusterShardsWith(reply any, opts ReplyOptions) ([]Shard, error) {
	entries, ok := asArray(reply)
	if !ok {
		return nil, shardsErr(0, "reply", "not an array: "+typeName(reply))
	}
	var out []Shard
	for i, e := range entries {
		ln := i + 1
		var rangesV, nodesV any
		if err := eachPair(e, func(k string, v any) bool {
			switch k {
			case "slots":
				rangesV = v
			case "nodes":
				nodesV = v
			}
			return true
		}); err != "" {
			return nil, shardsErr(ln, "shard", err)
		}
		var ranges []Range
		if rangesV != nil {
			flat, ok := asArray(rangesV)
			if !ok || len(flat)%2 != 0 {
				return nil, shardsErr(ln, "slots", "want a flat list of start/end pairs")
			}
			for k := 0; k < len(flat); k += 2 {
				a, ok1 := replyconv.Int(flat[k])
				b, ok2 := replyconv.Int(flat[k+1])
				if !ok1 || !ok2 || a < 0 || b < a || b >= slots.Count {
					return nil, shardsErr(ln, "slots", "bad slot range")
				}
				ranges = append(ranges, Range{slots.Slot(a), slots.Slot(b)})
			}
		}
		list, ok := asArray(nodesV)
		if !ok && nodesV != nil {
			return nil, shardsErr(ln, "nodes", "not an array")
		}
		var master *Node
		var extraMasters, replicas []*Node
		for j, nv := range list {
			n, err := parseShardsNode(nv, opts, ln, j)
			if err != nil {
				return nil, err
			}
			switch {
			case n.Role == RoleMaster && master == nil && !n.Failed():
				master = n
			case n.Role == RoleMaster:
				extraMasters = append(extraMasters, n)
			case n.Addr == "" && n.IP == "" && n.Port == 0 && n.TLSPort == 0:
				// noaddr replica: nothing to dial, nothing to report.
			default:
				replicas = append(replicas, n)
			}
		}
		if master == nil && len(extraMasters) > 0 {
			master, extraMasters = extraMasters[0], extraMasters[1:]
		}
		if master == nil {
			continue
		}
		for _, r := range replicas {
			r.MasterID = master.ID
		}
		master.Slots = ranges
		out = append(out, Shard{Master: master, Replicas: replicas, Ranges: ranges})
		for _, m := range extraMasters {
			out = append(out, Shard{Master: m})
		}
	}
	return out, nil
}

func shardsErr(ln int, field, reason string) error {
	return &ParseError{Source: "CLUSTER SHARDS", Line: ln, Field: field, Reason: reason}
}

func parseShardsNode(v any, opts ReplyOptions, ln, j int) (*Node, error) {
	n := &Node{Connected: true}
	var endpoint string
	var bad string
	if err := eachPair(v, func(k string, val any) bool {
		switch k {
		case "id", "ip", "endpoint", "hostname", "role", "health":
			s, ok := replyconv.String(val)
			if !ok {
				bad = k
				return false
			}
			switch k {
			case "id":
				n.ID = s
			case "ip":
				n.IP = s
			case "endpoint":
				endpoint = s
			case "hostname":
				n.Hostname = s
			case "role":
				if s == "replica" || s == "slave" {
					n.Role, n.Flags = RoleReplica, n.Flags|Replica
				} else {
					n.Role, n.Flags = RoleMaster, n.Flags|Master
				}
			case "health":
				n.Health = s
				if s == "fail" || s == "failed" {
					n.Health = "fail"
					n.Flags |= Fail
				}
			}
		case "port", "tls-port", "replication-offset":
			x, ok := replyconv.Int(val)
			if !ok || (k != "replication-offset" && (x < 0 || x > 65535)) {
				bad = k
				return false
			}
			switch k {
			case "port":
				n.Port = int(x)
			case "tls-port":
				n.TLSPort = int(x)
			default:
				n.ReplOffset = x
			}
		}
		return true
	}); err != "" {
		f := "nodes[" + strconv.Itoa(j) + "]"
		if bad != "" {
			f += "." + bad
		}
		return nil, shardsErr(ln, f, err)
	}
	if n.ID != "" && !isNodeID(n.ID) {
		return nil, shardsErr(ln, "nodes["+strconv.Itoa(j)+"].id", "not a node id")
	}
	port := n.Port
	if opts.TLS && n.TLSPort != 0 || port == 0 {
		port = n.TLSPort
	}
	// SHARDS never sends NULL: "" is both "unknown-endpoint" and "node
	// does not know its ip"; either way the asked host is the answer,
	// except for a noaddr node, which has no port at all.
	setEndpoint(n, endpoint, false, opts.AskedHost, port)
	return n, nil
}

// eachPair walks a map given as map[string]any, map[any]any (go-redis
// RESP3) or a flat [k1, v1, k2, v2] array (RESP2). It returns a reason on
// failure, "" on success.
func eachPair(v any, fn func(k string, val any) bool) string {
	switch m := v.(type) {
	case map[string]any:
		for k, val := range m {
			if !fn(k, val) {
				return "bad value for " + quote(k)
			}
		}
		return ""
	case map[any]any:
		for k, val := range m {
			ks, ok := replyconv.String(k)
			if !ok {
				return "map key is not a string"
			}
			if !fn(ks, val) {
				return "bad value for " + quote(ks)
			}
		}
		return ""
	}
	arr, ok := asArray(v)
	if !ok {
		return "not a map or key/value array: " + typeName(v)
	}
	if len(arr)%2 != 0 {
		return "odd number of elements in key/value array"
	}
	for i := 0; i < len(arr); i += 2 {
		k, ok := replyconv.String(arr[i])
		if !ok {
			return "key is not a string"
		}
		if !fn(k, arr[i+1]) {
			return "bad value for " + quote(k)
		}
	}
	return ""
}

func asArray(v any) ([]any, bool) {
	a, ok := v.([]any)
	return a, ok
}

func asStringOrNull(v any) (s string, isNull, ok bool) {
	if v == nil {
		return "", true, true
	}
	s, ok = replyconv.String(v)
	return s, false, ok
}

func typeName(v any) string {
	switch v.(type) {
	case nil:
		return "nil"
	case []any:
		return "array"
	case string, []byte:
		return "string"
	case int64, int:
		return "integer"
	case map[string]any, map[any]any:
		return "map"
	}
	return "unexpected type"
}
