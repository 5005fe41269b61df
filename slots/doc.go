// Package slots maps Redis keys, and whole commands, to Redis Cluster hash
// slots.
//
// # Keys
//
// A key's slot is CRC16-XMODEM of its hash tag modulo 16384, exactly as
// keyHashSlot() in the Redis server computes it (Of, HashTag). Every routing
// decision in slotrouter starts here, so the function is fast and checked
// byte for byte against CLUSTER KEYSLOT of a real server. The checksum uses
// slicing-by-16 tables (16 independent lookups per 16 bytes instead of one
// dependent lookup per byte, about 4-6x faster on 64-byte keys) and the tag
// search uses the vectorised strings.IndexByte. Neither allocates, for
// strings or byte slices.
//
// # Commands
//
// A client only sees argument lists, so it must know where the keys of each
// command are before it can pick a node. Table holds that knowledge for
// every command: arity, flags, the request/response policy tips that say
// where a key-less command goes (every master for DBSIZE, split by slot for
// MSET) and how to merge the replies, and the Redis 7 key specs.
//
// DefaultTable is generated (commands_gen.go, by internal/gen/commands) from
// the COMMAND reply of redis-server 7.0.15 and parsed by ParseCommandInfo,
// the same function a client uses to learn module commands at run time;
// Table.With adds those to a copy. Key positions follow the server's own
// algorithm (getKeysFromCommandWithSpecs), including its hand-written rules
// for SORT, SORT_RO and MIGRATE, and its answer when arguments do not fit
// the specs (no keys). They are tested against COMMAND GETKEYS of a real
// server for every command in the table.
//
// Two kinds of arguments decide a slot. Keys (AppendKeys) are what COMMAND
// GETKEYS lists. Shard channels of SPUBLISH, SSUBSCRIBE and SUNSUBSCRIBE are
// not keys (their key spec is flagged not_key, and GETKEYS says "The command
// has no key arguments") but the cluster routes them by slot all the same;
// AppendRoutingKeys and Table.Slot include them.
//
// Table.Slot refuses keys in different slots with ErrCrossSlot, whose text is
// the server's. Lookup, AppendKeys and Slot do not allocate, so they can sit
// on the path of every command.
//
// Blocking commands (BLPOP and friends, WAIT) hold their connection; XREAD
// and XREADGROUP do so only with a BLOCK option, which Command.IsBlocking
// checks for.
package slots
