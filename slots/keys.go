package slots

// Key finding follows the server's getKeysFromCommandWithSpecs (7.0.15) step
// for step, because COMMAND GETKEYS and the cluster's own slot check use it:
// a router that disagrees would send commands where the server refuses them.
//
//   - Specs are evaluated in order and their keys concatenated (duplicates
//     kept, as GETKEYS keeps them).
//   - If any spec cannot be evaluated (unknown type, incomplete, or the
//     arguments do not fit it: numkeys too large, 0 or not a number, a range
//     past the end), the whole result is discarded and the command's
//     hand-written rule runs instead, like the server's getkeys_proc. Without
//     a rule the command has no keys, which is what GETKEYS answers
//     ("Invalid arguments specified for command") and the command itself
//     would fail with a syntax or arity error anyway.
//   - Commands without a rule whose specs the table cannot evaluate at all
//     (module commands with unknown or incomplete specs) get the keys of the
//     specs that do evaluate: a best effort, like GET_KEYSPEC_RETURN_PARTIAL.

// keyRange is the positions first, first+step, ... up to last (inclusive).
type keyRange struct{ first, last, step int }

// maxKeyRanges covers every built-in command (at most 3 specs) so that the
// range buffers of AppendKeys and Slot stay on the stack.
const maxKeyRanges = 8

// AppendKeys appends to dst the positions in args of every key of the
// command, args[0] being the command name, exactly as COMMAND GETKEYS lists
// them (order and repeats included). Shard channels (key specs flagged
// not_key: SPUBLISH, SSUBSCRIBE, SUNSUBSCRIBE) are not keys and are left out;
// AppendRoutingKeys includes them. It does not allocate when dst has room.
func (c *Command) AppendKeys(dst []int, args [][]byte) []int {
	return c.appendPositions(dst, args, false)
}

// AppendRoutingKeys is AppendKeys plus the shard channels: every argument
// whose hash slot decides where the command must run, as the cluster's slot
// check (getNodeByQuery) sees them.
func (c *Command) AppendRoutingKeys(dst []int, args [][]byte) []int {
	return c.appendPositions(dst, args, true)
}

func (c *Command) appendPositions(dst []int, args [][]byte, withChannels bool) []int {
	var buf [maxKeyRanges]keyRange
	for _, r := range c.keyRanges(buf[:0], args, withChannels) {
		for i := r.first; i <= r.last; i += r.step {
			dst = append(dst, i)
		}
	}
	return dst
}

// keyRanges appends the key ranges of args to dst. Every position it returns
// is within args.
func (c *Command) keyRanges(dst []keyRange, args [][]byte, withChannels bool) []keyRange {
	if c == nil || len(args) == 0 {
		return dst
	}
	start := len(dst)
	for i := range c.KeySpecs {
		ks := &c.KeySpecs[i]
		if ks.Flags&KeyNotKey != 0 && !withChannels {
			continue
		}
		r, found, ok := ks.evaluate(args)
		if !ok {
			if out, ok := applyRule(c.Name, dst[:start], args); ok {
				return out
			}
			if ks.Begin.Type == BeginUnknown || ks.Find.Type == FindUnknown {
				continue // best effort: keep what the other specs find
			}
			return dst[:start]
		}
		if found {
			dst = append(dst, r)
		}
		if ks.Flags&KeyIncomplete != 0 {
			// The server never trusts an incomplete spec, and falls back to
			// its getkeys_proc even when the spec found something.
			if out, ok := applyRule(c.Name, dst[:start], args); ok {
				return out
			}
		}
	}
	return dst
}

// evaluate runs one spec on args. found is false when a keyword spec's
// keyword is absent (no keys, not an error); ok is false when the spec cannot
// be applied to these arguments.
func (ks *KeySpec) evaluate(args [][]byte) (r keyRange, found, ok bool) {
	argc := len(args)
	first := 0
	switch ks.Begin.Type {
	case BeginIndex:
		first = ks.Begin.Index
	case BeginKeyword:
		first = keywordSearch(args, ks.Begin.Keyword, ks.Begin.StartFrom)
		if first == 0 {
			return r, false, true
		}
	default:
		return r, false, false
	}
	var last, step int
	switch ks.Find.Type {
	case FindRange:
		step = ks.Find.KeyStep
		switch {
		case ks.Find.LastKey >= 0:
			last = first + ks.Find.LastKey
		case ks.Find.Limit <= 1:
			last = argc + ks.Find.LastKey
		default:
			last = first + (argc-first)/ks.Find.Limit + ks.Find.LastKey
		}
	case FindKeynum:
		step = ks.Find.KeyStep
		idx := first + ks.Find.KeyNumIdx
		if idx < 0 || idx >= argc {
			return r, false, false
		}
		n, valid := parseNumKeys(args[idx])
		if !valid || n > argc {
			return r, false, false
		}
		first += ks.Find.FirstKey
		last = first + n - 1
	default:
		return r, false, false
	}
	if step < 1 {
		step = 1 // a module could declare 0; the server would loop forever
	}
	if first < 1 || first >= argc || last >= argc || last < first {
		return r, false, false
	}
	return keyRange{first, last, step}, true, true
}

// keywordSearch returns the index after the keyword, or 0 when it is absent.
// Like the server, a forward search stops before the last argument (nothing
// could follow the keyword there), and a backward search stops at args[2]:
// args[1] is never taken for the keyword.
func keywordSearch(args [][]byte, keyword string, startFrom int) int {
	argc := len(args)
	start, end := startFrom, argc-1
	if startFrom <= 0 {
		start, end = argc+startFrom, 1
	}
	for i := start; i != end; {
		if i >= argc || i < 1 {
			break
		}
		if equalFold(args[i], keyword) {
			return i + 1
		}
		if start <= end {
			i++
		} else {
			i--
		}
	}
	return 0
}

// parseNumKeys accepts what the server's string2ll accepts: an optional
// '-' and decimal digits, no leading zeros, no '+', no spaces. Negative
// counts are invalid.
func parseNumKeys(b []byte) (int, bool) {
	if len(b) == 0 || len(b) > 10 {
		return 0, false
	}
	if len(b) > 1 && b[0] == '0' {
		return 0, false
	}
	n := 0
	for _, ch := range b {
		if ch < '0' || ch > '9' {
			return 0, false
		}
		n = n*10 + int(ch-'0')
	}
	return n, true
}

// equalFold compares ASCII case-insensitively without allocating, as the
// server's strcasecmp does for keywords.
func equalFold(b []byte, s string) bool {
	if len(b) != len(s) {
		return false
	}
	for i := range len(b) {
		if lower(b[i]) != lower(s[i]) {
			return false
		}
	}
	return true
}

func lower(c byte) byte {
	if 'A' <= c && c <= 'Z' {
		return c + 'a' - 'A'
	}
	return c
}

// IsBlocking reports whether this invocation may block the connection:
// always for Blocking commands, and for XREAD/XREADGROUP only when a BLOCK
// option comes before STREAMS.
func (c *Command) IsBlocking(args [][]byte) bool {
	if c == nil {
		return false
	}
	if c.Flags&Blocking != 0 {
		return true
	}
	if c.Flags&BlockingWithArg == 0 {
		return false
	}
	// Option scan of the server's xreadCommand: STREAMS ends the options,
	// and a key or ID named "block" after it must not count.
	for i := 1; i < len(args); i++ {
		switch {
		case equalFold(args[i], "block"):
			return i+1 < len(args)
		case equalFold(args[i], "count"):
			i++
		case equalFold(args[i], "group"):
			i += 2
		case equalFold(args[i], "noack"):
		default:
			return false
		}
	}
	return false
}
