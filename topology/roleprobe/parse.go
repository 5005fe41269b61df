package roleprobe

import (
	"fmt"
	"strconv"

	"github.com/slotrouter/slotrouter/internal/replyconv"
)

// ReplyError says that a ROLE or INFO reply did not have the documented shape.
type ReplyError struct {
	Command string
	Reason  string
}

func (e *ReplyError) Error() string {
	return "roleprobe: unexpected " + e.Command + " reply: " + e.Reason
}

// parseRole fills st from a ROLE reply:
//
//	master:          ["master", offset, [[ip, port, offset], ...]]
//	slave:           ["slave", master-ip, master-port, state, offset]
//	active-replica:  KeyDB; same shape as slave (writable anyway)
//	sentinel:        ["sentinel", [names]]
func parseRole(v any, st *NodeStatus) error {
	arr, ok := v.([]any)
	if !ok || len(arr) == 0 {
		return &ReplyError{"ROLE", fmt.Sprintf("%T, want non-empty array", v)}
	}
	role, ok := replyconv.String(arr[0])
	if !ok {
		return &ReplyError{"ROLE", fmt.Sprintf("role is %T", arr[0])}
	}
	st.Role, st.Via = role, "ROLE"
	switch role {
	case "master":
		st.Writable = true
		if len(arr) > 1 {
			st.Offset, _ = replyconv.Int(arr[1])
		}
	case "slave", "replica", "active-replica":
		st.Writable = role == "active-replica"
		if len(arr) < 5 {
			if st.Writable {
				return nil // KeyDB variants may omit the link details; writability is what counts
			}
			return &ReplyError{"ROLE", fmt.Sprintf("%s reply has %d elements, want 5", role, len(arr))}
		}
		host, _ := replyconv.String(arr[1])
		port, _ := replyconv.Int(arr[2])
		state, _ := replyconv.String(arr[3])
		st.MasterAddr = joinAddr(host, port)
		st.LinkUp = state == "connected"
		st.Offset, _ = replyconv.Int(arr[4])
	case "sentinel":
	default:
		return &ReplyError{"ROLE", "unknown role " + strconv.Quote(role)}
	}
	return nil
}

// parseInfo fills st from INFO replication text (CRLF or LF lines), the fallback for servers
// that refuse ROLE (renamed, ACL, proxies).
func parseInfo(v any, st *NodeStatus) error {
	f, err := infoFields(v)
	if err != nil {
		return err
	}
	st.ReplID, st.ReplID2 = replyconv.ReplIDs(f)
	role, found := f["role"]
	if !found {
		return &ReplyError{"INFO replication", "no role: line"}
	}
	st.Role, st.Via = role, "INFO"
	switch role {
	case "master":
		st.Writable = true
		st.Offset, _ = replyconv.Int(f["master_repl_offset"])
	case "slave", "active-replica":
		st.Writable = role == "active-replica"
		port, _ := replyconv.Int(f["master_port"])
		st.MasterAddr = joinAddr(f["master_host"], port)
		st.LinkUp = f["master_link_status"] == "up"
		st.Offset, _ = replyconv.Int(f["slave_repl_offset"])
		if st.Offset == 0 {
			st.Offset, _ = replyconv.Int(f["master_repl_offset"])
		}
	default:
		return &ReplyError{"INFO replication", "unknown role " + strconv.Quote(role)}
	}
	return nil
}

func infoFields(v any) (map[string]string, error) {
	f, ok := replyconv.Info(v)
	if !ok {
		return nil, &ReplyError{"INFO replication", fmt.Sprintf("%T, want text", v)}
	}
	return f, nil
}

// parseLineage fills st's replication IDs (the lineage Decide compares) from INFO
// replication, asked of a node whose role ROLE already gave.
func parseLineage(v any, st *NodeStatus) error {
	f, err := infoFields(v)
	if err != nil {
		return err
	}
	st.ReplID, st.ReplID2 = replyconv.ReplIDs(f)
	return nil
}
