package slots

import (
	"errors"
	"fmt"
	"strings"

	"github.com/slotrouter/slotrouter/internal/replyconv"
)

// ErrCommandInfo is matched (errors.Is) by every error of ParseCommandInfo.
var ErrCommandInfo = errors.New("slots: malformed COMMAND INFO reply")

// ParseError says which command and which field of a COMMAND INFO reply
// could not be understood.
type ParseError struct {
	Command string // "" when the command name itself is unreadable
	Field   string
	Reason  string
}

func (e *ParseError) Error() string {
	return fmt.Sprintf("slots: COMMAND INFO %q: %s: %s", e.Command, e.Field, e.Reason)
}

// Unwrap makes errors.Is(err, ErrCommandInfo) hold.
func (e *ParseError) Unwrap() error { return ErrCommandInfo }

// ParseCommandInfo turns a decoded COMMAND or COMMAND INFO reply into
// Commands. The reply is what a generic RESP decoder produces: nested []any,
// string (or []byte), int64 (or int) and nil; key-spec maps may be RESP2
// flat arrays or RESP3 maps (map[string]any or map[any]any). Nil entries
// (COMMAND INFO of an unknown name) are skipped. Replies of pre-7.0 servers
// (6 or 7 fields, no key specs) parse too, with keys from the legacy triple.
//
// This is the only place that interprets COMMAND output: the generator of
// DefaultTable uses it as well, so run-time learnt (module) commands and the
// built-in table follow the same rules.
func ParseCommandInfo(reply any) ([]*Command, error) {
	list, ok := reply.([]any)
	if !ok {
		return nil, &ParseError{Field: "reply", Reason: fmt.Sprintf("want an array, got %T", reply)}
	}
	cmds := make([]*Command, 0, len(list))
	for _, entry := range list {
		if entry == nil {
			continue
		}
		c, err := parseCommand(entry)
		if err != nil {
			return nil, err
		}
		cmds = append(cmds, c)
	}
	return cmds, nil
}

func parseCommand(v any) (*Command, error) {
	f, ok := v.([]any)
	if !ok || len(f) < 6 {
		return nil, &ParseError{Field: "entry", Reason: fmt.Sprintf("want an array of at least 6, got %T", v)}
	}
	name, ok := replyconv.String(f[0])
	if !ok || name == "" {
		return nil, &ParseError{Field: "name", Reason: fmt.Sprintf("want a non-empty string, got %T", f[0])}
	}
	c := &Command{Name: strings.ToLower(name)}
	perr := func(field, format string, a ...any) error {
		return &ParseError{Command: c.Name, Field: field, Reason: fmt.Sprintf(format, a...)}
	}
	ints := [4]*int{&c.Arity, &c.FirstKey, &c.LastKey, &c.Step}
	for i, idx := range [4]int{1, 3, 4, 5} {
		n, ok := replyInt(f[idx])
		if !ok {
			return nil, perr("field "+fmt.Sprint(idx), "want an integer, got %T", f[idx])
		}
		*ints[i] = n
	}
	flags, ok := replyStrings(f[2])
	if !ok {
		return nil, perr("flags", "want an array of strings, got %T", f[2])
	}
	for _, name := range flags {
		c.Flags |= flagByName("", name)
	}
	if len(f) > 7 && f[7] != nil {
		tips, ok := replyStrings(f[7])
		if !ok {
			return nil, perr("tips", "want an array of strings, got %T", f[7])
		}
		for _, tip := range tips {
			if p, ok := strings.CutPrefix(tip, "response_policy:"); ok {
				c.Response = responseByName(p)
				if c.Response == ResponseDefault && p != "default" {
					c.Flags |= Unknown
				}
				continue
			}
			c.Flags |= flagByName("request_policy:", tip)
		}
	}
	if len(f) > 8 && f[8] != nil {
		specs, ok := f[8].([]any)
		if !ok {
			return nil, perr("key specs", "want an array, got %T", f[8])
		}
		for i, s := range specs {
			ks, err := parseKeySpec(s)
			if err != nil {
				return nil, perr(fmt.Sprintf("key spec %d", i), "%v", err)
			}
			c.KeySpecs = append(c.KeySpecs, ks)
		}
	} else if c.FirstKey > 0 {
		// Pre-7.0 server: the legacy triple is the only description.
		c.KeySpecs = []KeySpec{{
			Begin: BeginSearch{Type: BeginIndex, Index: c.FirstKey},
			Find:  FindKeys{Type: FindRange, LastKey: legacyLast(c.FirstKey, c.LastKey), KeyStep: max(c.Step, 1)},
		}}
	}
	if len(f) > 9 && f[9] != nil {
		subs, ok := f[9].([]any)
		if !ok {
			return nil, perr("subcommands", "want an array, got %T", f[9])
		}
		for _, s := range subs {
			sc, err := parseCommand(s)
			if err != nil {
				return nil, err
			}
			c.Subcommands = append(c.Subcommands, sc)
		}
	}
	applyRules(c)
	return c, nil
}

// legacyLast converts the absolute legacy last-key index to a key-spec
// lastkey, which is relative to the first key when not negative.
func legacyLast(first, last int) int {
	if last < 0 {
		return last
	}
	return last - first
}

// applyRules adds what COMMAND INFO does not say but routing needs.
func applyRules(c *Command) {
	switch c.Name {
	case "xread", "xreadgroup":
		// The server flags them blocking, but they block only with BLOCK.
		c.Flags = c.Flags&^Blocking | BlockingWithArg
	case "wait", "waitaof":
		// They hold the connection until replicas acknowledge.
		c.Flags |= Blocking
	}
	c.Flags |= NoKeys
	for _, ks := range c.KeySpecs {
		if ks.Flags&KeyNotKey == 0 {
			c.Flags &^= NoKeys
			break
		}
	}
}

func flagByName(prefix, name string) Flags {
	name = strings.ToLower(name)
	for _, n := range flagNames {
		if n.name == name || (prefix != "" && n.name == prefix+name) {
			return n.f
		}
	}
	return Unknown
}

func responseByName(name string) ResponsePolicy {
	for i, n := range responseNames {
		if n.name == name {
			return ResponsePolicy(i)
		}
	}
	return ResponseDefault
}

func parseKeySpec(v any) (KeySpec, error) {
	var ks KeySpec
	m, err := replyMap(v)
	if err != nil {
		return ks, err
	}
	flags, ok := replyStrings(m["flags"])
	if !ok {
		return ks, fmt.Errorf("flags: want an array of strings, got %T", m["flags"])
	}
	for _, name := range flags {
		f := KeyUnknown
		for _, n := range keyFlagNames {
			if strings.EqualFold(n.name, name) {
				f = n.f
				break
			}
		}
		ks.Flags |= f
	}
	typ, spec, err := typedSpec(m["begin_search"])
	if err != nil {
		return ks, fmt.Errorf("begin_search: %w", err)
	}
	switch typ {
	case "index":
		ks.Begin.Type = BeginIndex
		ks.Begin.Index, err = intField(spec, "index")
	case "keyword":
		ks.Begin.Type = BeginKeyword
		var ok bool
		if ks.Begin.Keyword, ok = replyconv.String(spec["keyword"]); !ok || ks.Begin.Keyword == "" {
			err = errors.New("keyword: want a non-empty string")
		} else {
			ks.Begin.StartFrom, err = intField(spec, "startfrom")
		}
	default: // "unknown", or a type a later server may add
		ks.Begin.Type = BeginUnknown
	}
	if err != nil {
		return ks, fmt.Errorf("begin_search: %w", err)
	}
	typ, spec, err = typedSpec(m["find_keys"])
	if err != nil {
		return ks, fmt.Errorf("find_keys: %w", err)
	}
	switch typ {
	case "range":
		ks.Find.Type = FindRange
		err = intFields(spec, map[string]*int{"lastkey": &ks.Find.LastKey, "keystep": &ks.Find.KeyStep, "limit": &ks.Find.Limit})
	case "keynum":
		ks.Find.Type = FindKeynum
		err = intFields(spec, map[string]*int{"keynumidx": &ks.Find.KeyNumIdx, "firstkey": &ks.Find.FirstKey, "keystep": &ks.Find.KeyStep})
	default:
		ks.Find.Type = FindUnknown
	}
	if err != nil {
		return ks, fmt.Errorf("find_keys: %w", err)
	}
	return ks, nil
}

func typedSpec(v any) (string, map[string]any, error) {
	m, err := replyMap(v)
	if err != nil {
		return "", nil, err
	}
	typ, ok := replyconv.String(m["type"])
	if !ok {
		return "", nil, fmt.Errorf("type: want a string, got %T", m["type"])
	}
	spec := map[string]any{}
	if s := m["spec"]; s != nil {
		if spec, err = replyMap(s); err != nil {
			return "", nil, fmt.Errorf("spec: %w", err)
		}
	}
	return strings.ToLower(typ), spec, nil
}

func intFields(m map[string]any, dst map[string]*int) error {
	for name, p := range dst {
		n, err := intField(m, name)
		if err != nil {
			return err
		}
		*p = n
	}
	return nil
}

func intField(m map[string]any, name string) (int, error) {
	n, ok := replyInt(m[name])
	if !ok {
		return 0, fmt.Errorf("%s: want an integer, got %T", name, m[name])
	}
	return n, nil
}

// replyMap accepts a RESP2 flat [k1, v1, k2, v2 ...] array or a RESP3 map.
func replyMap(v any) (map[string]any, error) {
	switch v := v.(type) {
	case map[string]any:
		return v, nil
	case map[any]any:
		m := make(map[string]any, len(v))
		for k, val := range v {
			ks, ok := replyconv.String(k)
			if !ok {
				return nil, fmt.Errorf("map key: want a string, got %T", k)
			}
			m[ks] = val
		}
		return m, nil
	case []any:
		if len(v)%2 != 0 {
			return nil, fmt.Errorf("flat map has odd length %d", len(v))
		}
		m := make(map[string]any, len(v)/2)
		for i := 0; i < len(v); i += 2 {
			ks, ok := replyconv.String(v[i])
			if !ok {
				return nil, fmt.Errorf("map key: want a string, got %T", v[i])
			}
			m[ks] = v[i+1]
		}
		return m, nil
	}
	return nil, fmt.Errorf("want a map, got %T", v)
}

func replyInt(v any) (int, bool) {
	switch v := v.(type) {
	case int64:
		return int(v), true
	case int:
		return v, true
	}
	return 0, false
}

func replyStrings(v any) ([]string, bool) {
	if v == nil {
		return nil, true
	}
	var out []string
	switch v := v.(type) {
	case []any:
		for _, e := range v {
			s, ok := replyconv.String(e)
			if !ok {
				return nil, false
			}
			out = append(out, s)
		}
	case []string:
		out = v
	case map[any]any: // RESP3 sets decode to maps in some clients
		for k := range v {
			s, ok := replyconv.String(k)
			if !ok {
				return nil, false
			}
			out = append(out, s)
		}
	default:
		return nil, false
	}
	return out, true
}
