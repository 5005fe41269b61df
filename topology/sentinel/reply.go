package sentinel

import (
	"fmt"
	"net"
	"strconv"
	"strings"

	"github.com/slotrouter/slotrouter/internal/replyconv"
)

// parseMasterAddr decodes get-master-addr-by-name: [ip, port] with the port a bulk STRING
// (integers accepted too). ok=false with a nil error is the null reply of an unknown name.
func parseMasterAddr(v any) (addr string, ok bool, err error) {
	if v == nil {
		return "", false, nil
	}
	arr, isArr := v.([]any)
	if !isArr {
		return "", false, &ReplyError{"get-master-addr-by-name", fmt.Sprintf("%T, want array", v)}
	}
	if len(arr) == 0 {
		return "", false, nil // RESP3 clients may decode the null array as empty
	}
	if len(arr) != 2 {
		return "", false, &ReplyError{"get-master-addr-by-name", fmt.Sprintf("%d elements, want 2", len(arr))}
	}
	host, hok := replyconv.String(arr[0])
	var port int
	switch p := arr[1].(type) {
	case int64:
		port = int(p)
	default:
		s, sok := replyconv.String(p)
		if !sok {
			return "", false, &ReplyError{"get-master-addr-by-name", fmt.Sprintf("port is %T", p)}
		}
		n, perr := strconv.Atoi(s)
		if perr != nil {
			return "", false, &ReplyError{"get-master-addr-by-name", "port " + strconv.Quote(s)}
		}
		port = n
	}
	if !hok || host == "" || port <= 0 || port > 65535 {
		return "", false, &ReplyError{"get-master-addr-by-name", fmt.Sprintf("bad address %v:%d", arr[0], port)}
	}
	return net.JoinHostPort(host, strconv.Itoa(port)), true, nil
}

// fieldMap decodes one instance description: a flat [k, v, k, v...] array (RESP2) or a map
// (RESP3).
func fieldMap(v any) (map[string]string, bool) {
	out := map[string]string{}
	switch m := v.(type) {
	case []any:
		if len(m)%2 != 0 {
			return nil, false
		}
		for i := 0; i < len(m); i += 2 {
			k, kok := replyconv.String(m[i])
			if !kok {
				return nil, false
			}
			out[k] = fieldText(m[i+1])
		}
	case map[string]any:
		for k, val := range m {
			out[k] = fieldText(val)
		}
	case map[any]any:
		for kv, val := range m {
			k, kok := replyconv.String(kv)
			if !kok {
				return nil, false
			}
			out[k] = fieldText(val)
		}
	default:
		return nil, false
	}
	return out, true
}

// fieldText renders one field value: integers (as RESP3 decoders hand them over) in decimal,
// text as is, anything else as "".
func fieldText(v any) string {
	if n, isInt := v.(int64); isInt {
		return strconv.FormatInt(n, 10)
	}
	s, _ := replyconv.String(v)
	return s
}

// instance is a replica or sentinel from SENTINEL replicas / sentinels.
type instance struct {
	Addr   string
	Fields map[string]string
}

// parseInstances decodes the array of instance descriptions; entries without a usable address
// (ip "?" or port 0 while a node is being discovered) are skipped.
func parseInstances(cmd string, v any) ([]instance, error) {
	arr, ok := v.([]any)
	if !ok {
		if v == nil {
			return nil, nil
		}
		return nil, &ReplyError{cmd, fmt.Sprintf("%T, want array", v)}
	}
	out := make([]instance, 0, len(arr))
	for i, e := range arr {
		f, ok := fieldMap(e)
		if !ok {
			return nil, &ReplyError{cmd, fmt.Sprintf("element %d is not a field list", i)}
		}
		ip, port := f["ip"], f["port"]
		p, err := strconv.Atoi(port)
		if ip == "" || ip == "?" || err != nil || p <= 0 || p > 65535 {
			continue
		}
		out = append(out, instance{Addr: net.JoinHostPort(ip, port), Fields: f})
	}
	return out, nil
}

// healthy reports whether a replica's flags allow routing to it. Sentinel keeps reporting
// master-link-status ok for a dead replica (stale INFO), so only the flags are trustworthy.
func healthy(flags string) bool {
	for _, f := range strings.Split(flags, ",") {
		switch f {
		case "s_down", "o_down", "disconnected":
			return false
		}
	}
	return true
}

// parseRole decodes ROLE: its first element is the role; for a master the second is the
// replication offset.
func parseRole(v any) (role string, offset int64, err error) {
	arr, ok := v.([]any)
	if !ok || len(arr) == 0 {
		return "", 0, &ReplyError{"ROLE", fmt.Sprintf("%T, want non-empty array", v)}
	}
	role, ok = replyconv.String(arr[0])
	if !ok {
		return "", 0, &ReplyError{"ROLE", fmt.Sprintf("role is %T", arr[0])}
	}
	if role == "master" && len(arr) > 1 {
		offset, _ = arr[1].(int64)
	}
	return role, offset, nil
}
