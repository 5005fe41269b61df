package slots

import (
	"strconv"
	"strings"
)

// Command describes one Redis command (or subcommand) as COMMAND INFO reports
// it: enough to find its keys, decide where it may run, and how to merge a
// fan-out. Treat a Command as read-only once it is in a Table.
type Command struct {
	// Name is lower case; a subcommand is "parent|sub" ("object|encoding").
	Name string
	// Arity is the exact argument count including the name when positive,
	// the minimum when negative.
	Arity int
	// Flags holds the server's command flags, the request policy from the
	// command tips, and the blocking rules slotrouter adds (see Blocking).
	Flags Flags
	// Response is the response_policy tip: how to merge replies of a fan-out.
	Response ResponsePolicy
	// FirstKey, LastKey and Step are the legacy (pre-7.0) key triple. They are
	// kept for completeness; AppendKeys uses KeySpecs.
	FirstKey, LastKey, Step int
	// KeySpecs are the Redis 7 key specifications, in server order.
	KeySpecs []KeySpec
	// Subcommands of a container command (OBJECT, XINFO, ...).
	Subcommands []*Command
}

// Flags is a set of command properties.
type Flags uint32

// Server command flags (COMMAND INFO), request policies (command tips) and
// slotrouter's own additions. Their String names are the server's spelling.
const (
	Write Flags = 1 << iota
	Readonly
	DenyOOM
	Module
	Admin
	Pubsub
	Noscript
	// Blocking: the command may block the connection (BLPOP, BRPOP, BLMOVE,
	// BRPOPLPUSH, BLMPOP, BZPOPMIN, BZPOPMAX, BZMPOP, WAIT, WAITAOF). XREAD and
	// XREADGROUP carry BlockingWithArg instead: use Command.IsBlocking.
	Blocking
	Loading
	Stale
	SkipMonitor
	SkipSlowlog
	Asking
	Fast
	NoAuth
	MayReplicate
	NoMandatoryKeys
	NoAsyncLoading
	NoMulti
	MovableKeys
	AllowBusy
	// AllNodes, AllShards, MultiShard and Special are the request_policy tip:
	// where a command without a single slot must be sent (notes §7.4).
	AllNodes
	AllShards
	MultiShard
	Special
	NondeterministicOutput
	NondeterministicOutputOrder
	// BlockingWithArg: the command blocks only when it has a BLOCK argument.
	BlockingWithArg
	// NoKeys: no key spec names a key (channels of not_key specs aside), so
	// the command never has a hash slot of its own.
	NoKeys
	// Unknown marks a server flag or tip this version of slotrouter does not
	// know. Such a command still works; the flag keeps it visible.
	Unknown
)

// named ties a flag bit to its server name and its Go identifier.
type named[F Flags | KeyFlags] struct {
	f           F
	name, ident string
}

var flagNames = [...]named[Flags]{
	{Write, "write", "Write"},
	{Readonly, "readonly", "Readonly"},
	{DenyOOM, "denyoom", "DenyOOM"},
	{Module, "module", "Module"},
	{Admin, "admin", "Admin"},
	{Pubsub, "pubsub", "Pubsub"},
	{Noscript, "noscript", "Noscript"},
	{Blocking, "blocking", "Blocking"},
	{Loading, "loading", "Loading"},
	{Stale, "stale", "Stale"},
	{SkipMonitor, "skip_monitor", "SkipMonitor"},
	{SkipSlowlog, "skip_slowlog", "SkipSlowlog"},
	{Asking, "asking", "Asking"},
	{Fast, "fast", "Fast"},
	{NoAuth, "no_auth", "NoAuth"},
	{MayReplicate, "may_replicate", "MayReplicate"},
	{NoMandatoryKeys, "no_mandatory_keys", "NoMandatoryKeys"},
	{NoAsyncLoading, "no_async_loading", "NoAsyncLoading"},
	{NoMulti, "no_multi", "NoMulti"},
	{MovableKeys, "movablekeys", "MovableKeys"},
	{AllowBusy, "allow_busy", "AllowBusy"},
	{AllNodes, "request_policy:all_nodes", "AllNodes"},
	{AllShards, "request_policy:all_shards", "AllShards"},
	{MultiShard, "request_policy:multi_shard", "MultiShard"},
	{Special, "request_policy:special", "Special"},
	{NondeterministicOutput, "nondeterministic_output", "NondeterministicOutput"},
	{NondeterministicOutputOrder, "nondeterministic_output_order", "NondeterministicOutputOrder"},
	{BlockingWithArg, "blocking_with_arg", "BlockingWithArg"},
	{NoKeys, "no_keys", "NoKeys"},
	{Unknown, "unknown", "Unknown"},
}

// String lists the flags by their server names, joined by '|'.
func (f Flags) String() string { return joinNames(f, flagNames[:], false) }

// GoString lists the flags as Go identifiers, so generated code can print
// them with %#v.
func (f Flags) GoString() string { return joinNames(f, flagNames[:], true) }

// joinNames lists the names (or identifiers) of the bits set in f.
func joinNames[F Flags | KeyFlags](f F, names []named[F], ident bool) string {
	var parts []string
	for _, n := range names {
		if f&n.f != 0 {
			if ident {
				parts = append(parts, n.ident)
			} else {
				parts = append(parts, n.name)
			}
		}
	}
	if len(parts) == 0 {
		return "0"
	}
	return strings.Join(parts, "|")
}

// ResponsePolicy is the response_policy tip of a command.
type ResponsePolicy uint8

// Response policies, as in the Redis command tips documentation.
const (
	ResponseDefault ResponsePolicy = iota
	ResponseOneSucceeded
	ResponseAllSucceeded
	ResponseAggLogicalAnd
	ResponseAggLogicalOr
	ResponseAggMin
	ResponseAggMax
	ResponseAggSum
	ResponseSpecial
)

var responseNames = [...]struct{ name, ident string }{
	{"default", "ResponseDefault"},
	{"one_succeeded", "ResponseOneSucceeded"},
	{"all_succeeded", "ResponseAllSucceeded"},
	{"agg_logical_and", "ResponseAggLogicalAnd"},
	{"agg_logical_or", "ResponseAggLogicalOr"},
	{"agg_min", "ResponseAggMin"},
	{"agg_max", "ResponseAggMax"},
	{"agg_sum", "ResponseAggSum"},
	{"special", "ResponseSpecial"},
}

func (p ResponsePolicy) String() string {
	if int(p) < len(responseNames) {
		return responseNames[p].name
	}
	return "invalid"
}

// GoString returns the constant's identifier.
func (p ResponsePolicy) GoString() string {
	if int(p) < len(responseNames) {
		return responseNames[p].ident
	}
	return "ResponsePolicy(" + strconv.Itoa(int(p)) + ")"
}

// KeySpec is one Redis 7 key specification: where to start looking for keys
// (Begin) and how to find them from there (Find).
type KeySpec struct {
	Flags KeyFlags
	Begin BeginSearch
	Find  FindKeys
}

// KeyFlags are the flags of a key spec.
type KeyFlags uint16

// Key spec flags. KeyNotKey marks a shard channel: it is not a key for
// COMMAND GETKEYS, but it decides the slot (SPUBLISH, SSUBSCRIBE).
const (
	KeyRO KeyFlags = 1 << iota
	KeyRW
	KeyOW
	KeyRM
	KeyAccess
	KeyUpdate
	KeyInsert
	KeyDelete
	KeyNotKey
	KeyIncomplete
	KeyVariableFlags
	KeyUnknown
)

var keyFlagNames = [...]named[KeyFlags]{
	{KeyRO, "RO", "KeyRO"},
	{KeyRW, "RW", "KeyRW"},
	{KeyOW, "OW", "KeyOW"},
	{KeyRM, "RM", "KeyRM"},
	{KeyAccess, "access", "KeyAccess"},
	{KeyUpdate, "update", "KeyUpdate"},
	{KeyInsert, "insert", "KeyInsert"},
	{KeyDelete, "delete", "KeyDelete"},
	{KeyNotKey, "not_key", "KeyNotKey"},
	{KeyIncomplete, "incomplete", "KeyIncomplete"},
	{KeyVariableFlags, "variable_flags", "KeyVariableFlags"},
	{KeyUnknown, "unknown", "KeyUnknown"},
}

func (f KeyFlags) String() string { return joinNames(f, keyFlagNames[:], false) }

// GoString lists the flags as Go identifiers.
func (f KeyFlags) GoString() string { return joinNames(f, keyFlagNames[:], true) }

// SearchType says how a key spec finds its first key.
type SearchType uint8

// BeginIndex starts at a fixed argument; BeginKeyword after a keyword;
// BeginUnknown means only a hand-written rule (or GETKEYS) can tell.
const (
	BeginUnknown SearchType = iota
	BeginIndex
	BeginKeyword
)

// BeginSearch is the begin_search part of a key spec.
type BeginSearch struct {
	Type  SearchType
	Index int // BeginIndex: args[Index] is the first key
	// BeginKeyword: look for Keyword (any case) from StartFrom forward, or,
	// when StartFrom < 0, from len(args)+StartFrom backward.
	Keyword   string
	StartFrom int
}

// FindType says how a key spec finds the rest of its keys.
type FindType uint8

// FindRange: a run of keys; FindKeynum: an argument holds the key count.
const (
	FindUnknown FindType = iota
	FindRange
	FindKeynum
)

// FindKeys is the find_keys part of a key spec. Positions are relative to
// the argument where begin_search stopped.
type FindKeys struct {
	Type FindType
	// FindRange: LastKey >= 0 is relative to the first key, < 0 counts from
	// the end (-1 is the last argument). With LastKey -1 and Limit N > 1 only
	// the first 1/N of the remaining arguments are keys (XREAD STREAMS).
	LastKey, KeyStep, Limit int
	// FindKeynum: args[begin+KeyNumIdx] is the key count, the first key is
	// args[begin+FirstKey].
	KeyNumIdx, FirstKey int
}

// ValidArity reports whether argc arguments (the name, and for a
// subcommand the container name, included) satisfy the command's arity.
// AppendKeys does not check it: a command with the wrong arity is refused by
// every node alike, so where it goes does not matter.
func (c *Command) ValidArity(argc int) bool {
	if c.Arity >= 0 {
		return argc == c.Arity
	}
	return argc >= -c.Arity
}
