package slots

// Hand-written key rules for the commands whose key specs are "unknown" or
// "incomplete" in Redis 7.0.15. Each mirrors the server's getkeys_proc
// (db.c), which is what COMMAND GETKEYS and the cluster slot check use for
// these commands.

// applyRule runs the rule of the command name, and reports false when it has
// none. The calls are static (not through a func value) so the caller's
// stack buffer does not escape.
func applyRule(name string, dst []keyRange, args [][]byte) ([]keyRange, bool) {
	switch name {
	case "sort":
		return sortKeys(dst, args), true
	case "sort_ro":
		return sortROKeys(dst, args), true
	case "migrate":
		return migrateKeys(dst, args), true
	}
	return dst, false
}

func single(dst []keyRange, pos int) []keyRange {
	return append(dst, keyRange{pos, pos, 1})
}

// sortKeys: SORT key [BY pattern] [LIMIT offset count] [GET pattern ...]
// [ASC|DESC] [ALPHA] [STORE destination]. The BY and GET patterns name keys
// only through the sorted values, so they are not keys here (and cluster
// mode refuses them). The last STORE wins, as in SORT itself.
func sortKeys(dst []keyRange, args [][]byte) []keyRange {
	if len(args) < 2 {
		return dst
	}
	dst = single(dst, 1)
	store := 0
	for i := 2; i < len(args); i++ {
		switch {
		case equalFold(args[i], "limit"):
			i += 2
		case equalFold(args[i], "store") && i+1 < len(args):
			store = i + 1
		case equalFold(args[i], "get"), equalFold(args[i], "by"):
			i++
		}
	}
	if store > 0 {
		dst = single(dst, store)
	}
	return dst
}

// sortROKeys: SORT_RO has no STORE, so only the sorted key.
func sortROKeys(dst []keyRange, args [][]byte) []keyRange {
	if len(args) < 2 {
		return dst
	}
	return single(dst, 1)
}

// migrateKeys: MIGRATE host port key|"" db timeout [COPY] [REPLACE]
// [AUTH pw | AUTH2 user pw] [KEYS key ...]. Like the server, the options are
// scanned forward from args[6] (an AUTH password named "keys" is skipped);
// in the KEYS form args[3] must be "" and is not a key.
func migrateKeys(dst []keyRange, args [][]byte) []keyRange {
	if len(args) < 4 {
		return dst
	}
	for i := 6; i < len(args); i++ {
		switch {
		case equalFold(args[i], "keys"):
			if len(args[3]) != 0 || i+1 >= len(args) {
				return dst
			}
			return append(dst, keyRange{i + 1, len(args) - 1, 1})
		case equalFold(args[i], "auth"):
			i++
		case equalFold(args[i], "auth2"):
			i += 2
		}
	}
	return single(dst, 3)
}
