package topology

import (
	"errors"
	"net"
	"strconv"
	"strings"

	"github.com/slotrouter/slotrouter/slots"
)

// ErrMalformed is matched (errors.Is) by every *ParseError.
var ErrMalformed = errors.New("topology: malformed reply")

// ParseError says where a CLUSTER NODES / SLOTS / SHARDS reply went wrong.
// For CLUSTER NODES, Line is the 1-based text line; for SLOTS and SHARDS it
// is the 1-based entry index.
type ParseError struct {
	Source string // "CLUSTER NODES", "CLUSTER SLOTS", "CLUSTER SHARDS"
	Line   int
	Field  string
	Reason string
}

func (e *ParseError) Error() string {
	return "topology: " + e.Source + " line " + strconv.Itoa(e.Line) + ", " + e.Field + ": " + e.Reason
}

// Is makes errors.Is(err, ErrMalformed) true for any *ParseError.
func (e *ParseError) Is(target error) bool { return target == ErrMalformed }

func nodesErr(line int, field, reason string) error {
	return &ParseError{Source: "CLUSTER NODES", Line: line, Field: field, Reason: reason}
}

// ParseClusterNodes parses CLUSTER NODES text from any server version
// (Redis 3.x to 7.4, Valkey 8, and nodes.conf lines): LF or CRLF line ends,
// blank lines ignored, lines in any order.
//
// Node.Addr is ip:port (IPv6 as [ip]:port); it is empty for a noaddr node
// and for a myself line that does not know its own ip, because CLUSTER
// NODES gives no other dialable address (Discover fills the latter from the
// address it asked). Hostnames go to Node.Hostname.
//
// The whole input is converted to one string once and every field is a
// substring of it, so a 1000-node reply costs about one allocation per
// master (its slot ranges) plus two in total.
func ParseClusterNodes(data []byte) ([]Node, error) {
	text := string(data)
	nodes := make([]Node, 0, strings.Count(text, "\n")+1)
	lineNo := 0
	for len(text) > 0 {
		lineNo++
		var line string
		if i := strings.IndexByte(text, '\n'); i >= 0 {
			line, text = text[:i], text[i+1:]
		} else {
			line, text = text, ""
		}
		line = strings.TrimSuffix(line, "\r")
		if strings.TrimSpace(line) == "" {
			continue
		}
		nodes = append(nodes, Node{})
		if err := parseNodeLine(&nodes[len(nodes)-1], line, lineNo); err != nil {
			return nil, err
		}
	}
	return nodes, nil
}

// field returns the next space-separated token of s and the rest.
func field(s string) (tok, rest string) {
	for len(s) > 0 && s[0] == ' ' {
		s = s[1:]
	}
	i := strings.IndexByte(s, ' ')
	if i < 0 {
		return s, ""
	}
	return s[:i], s[i+1:]
}

func isNodeID(s string) bool {
	if len(s) != 40 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F') {
			return false
		}
	}
	return true
}

func parseNodeLine(n *Node, line string, ln int) error {
	var tok string
	names := [...]string{"id", "address", "flags", "master", "ping-sent", "pong-recv", "config-epoch", "link-state"}
	var f [8]string
	rest := line
	for i := range f {
		tok, rest = field(rest)
		if tok == "" {
			return nodesErr(ln, names[i], "missing (a node line has at least 8 fields)")
		}
		f[i] = tok
	}
	if !isNodeID(f[0]) {
		return nodesErr(ln, "id", "not 40 hex characters: "+quote(f[0]))
	}
	n.ID = f[0]
	if err := parseNodeAddr(n, f[1], ln); err != nil {
		return err
	}
	if err := parseFlags(n, f[2], ln); err != nil {
		return err
	}
	if f[3] != "-" {
		if !isNodeID(f[3]) {
			return nodesErr(ln, "master", "not '-' or a node id: "+quote(f[3]))
		}
		n.MasterID = f[3]
	}
	for i := 4; i <= 5; i++ {
		if _, err := strconv.ParseUint(f[i], 10, 64); err != nil {
			return nodesErr(ln, names[i], "not an unsigned integer: "+quote(f[i]))
		}
	}
	epoch, err := strconv.ParseUint(f[6], 10, 64)
	if err != nil {
		return nodesErr(ln, "config-epoch", "not an unsigned integer: "+quote(f[6]))
	}
	n.ConfigEpoch = epoch
	switch f[7] {
	case "connected":
		n.Connected = true
	case "disconnected":
	default:
		return nodesErr(ln, "link-state", "want connected or disconnected, got "+quote(f[7]))
	}
	return parseSlotEntries(n, rest, ln)
}

// parseNodeAddr handles ip:port, ip:port@cport, ip:port@cport,hostname,
// a trailing comma, and key=value aux fields; IPv6 splits at the last ':'.
func parseNodeAddr(n *Node, s string, ln int) error {
	addr, extra, hasExtra := strings.Cut(s, ",")
	if at := strings.IndexByte(addr, '@'); at >= 0 {
		cp, err := strconv.ParseUint(addr[at+1:], 10, 16)
		if err != nil {
			return nodesErr(ln, "address", "bad cluster bus port in "+quote(s))
		}
		n.CPort = int(cp)
		addr = addr[:at]
	}
	colon := strings.LastIndexByte(addr, ':')
	if colon < 0 {
		return nodesErr(ln, "address", "no ':' before the port in "+quote(s))
	}
	port, err := strconv.ParseUint(addr[colon+1:], 10, 16)
	if err != nil {
		return nodesErr(ln, "address", "bad port in "+quote(s))
	}
	n.Port = int(port)
	n.IP = strings.TrimSuffix(strings.TrimPrefix(addr[:colon], "["), "]")
	if n.IP != "" && n.Port != 0 {
		if strings.IndexByte(n.IP, ':') >= 0 {
			n.Addr = net.JoinHostPort(n.IP, addr[colon+1:])
		} else {
			n.Addr = addr
		}
	}
	if !hasExtra {
		return nil
	}
	// The first item after the comma is the hostname unless it is an aux
	// field (7.2-rc printed "ip:port@cport,,shard-id=..." with an empty
	// hostname; nodes.conf may omit it entirely).
	first := true
	for extra != "" || first {
		var item string
		item, extra, _ = strings.Cut(extra, ",")
		k, v, isKV := strings.Cut(item, "=")
		switch {
		case first && !isKV:
			n.Hostname = item
		case !isKV:
			if item != "" {
				return nodesErr(ln, "address", "aux field without '=': "+quote(item))
			}
		case k == "shard-id":
			n.ShardID = v
		case k == "tls-port":
			if p, err := strconv.ParseUint(v, 10, 16); err == nil {
				n.TLSPort = int(p)
			}
		case k == "hostname":
			n.Hostname = v
		}
		first = false
	}
	return nil
}

var flagByName = map[string]Flags{
	"myself": Myself, "master": Master, "slave": Replica, "replica": Replica,
	"fail?": PFail, "fail": Fail, "handshake": Handshake, "noaddr": NoAddr,
	"nofailover": NoFailover, "noflags": NoFlags,
}

func parseFlags(n *Node, s string, ln int) error {
	for s != "" {
		var name string
		name, s, _ = strings.Cut(s, ",")
		if name == "" {
			return nodesErr(ln, "flags", "empty flag")
		}
		if f, ok := flagByName[name]; ok {
			n.Flags |= f
		} else {
			n.Flags |= Unknown
		}
	}
	if n.Flags&Replica != 0 {
		n.Role = RoleReplica
	}
	return nil
}

func parseSlotNum(s string) (slots.Slot, bool) {
	v, err := strconv.ParseUint(s, 10, 16)
	if err != nil || v >= slots.Count {
		return 0, false
	}
	return slots.Slot(v), true
}

func parseSlotEntries(n *Node, rest string, ln int) error {
	count := 0
	for r := rest; ; {
		var tok string
		tok, r = field(r)
		if tok == "" {
			break
		}
		if tok[0] != '[' {
			count++
		}
	}
	if count > 0 {
		n.Slots = make([]Range, 0, count)
	}
	for {
		var tok string
		tok, rest = field(rest)
		if tok == "" {
			return nil
		}
		if tok[0] == '[' {
			if err := parseMigration(n, tok, ln); err != nil {
				return err
			}
			continue
		}
		a, b, isRange := strings.Cut(tok, "-")
		start, ok := parseSlotNum(a)
		end := start
		if ok && isRange {
			end, ok = parseSlotNum(b)
		}
		if !ok || end < start {
			return nodesErr(ln, "slots", "bad slot or range "+quote(tok))
		}
		n.Slots = append(n.Slots, Range{start, end})
	}
}

// parseMigration reads "[N->-id]" (migrating to id) or "[N-<-id]"
// (importing from id).
func parseMigration(n *Node, tok string, ln int) error {
	if len(tok) < 2 || tok[len(tok)-1] != ']' {
		return nodesErr(ln, "slots", "unterminated migration marker "+quote(tok))
	}
	body := tok[1 : len(tok)-1]
	var m *map[slots.Slot]string
	var num, id string
	if a, b, ok := strings.Cut(body, "->-"); ok {
		num, id, m = a, b, &n.Migrating
	} else if a, b, ok := strings.Cut(body, "-<-"); ok {
		num, id, m = a, b, &n.Importing
	} else {
		return nodesErr(ln, "slots", "migration marker is neither ->- nor -<-: "+quote(tok))
	}
	slot, ok := parseSlotNum(num)
	if !ok || !isNodeID(id) {
		return nodesErr(ln, "slots", "bad migration marker "+quote(tok))
	}
	if *m == nil {
		*m = make(map[slots.Slot]string, 1)
	}
	(*m)[slot] = id
	return nil
}

// quote shortens and quotes s for error messages, so a huge garbage field
// does not produce a huge error.
func quote(s string) string {
	if len(s) > 64 {
		s = s[:64] + "..."
	}
	return strconv.Quote(s)
}
