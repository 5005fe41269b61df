package slots

import (
	"errors"
	"strings"
)

// ErrCrossSlot is returned by Table.Slot when the keys of a command hash to
// different slots. Its text is the server's, so a router can pass it on as
// if a node had answered. Match it with errors.Is.
var ErrCrossSlot error = CrossSlotError{}

// CrossSlotError is the type of ErrCrossSlot, for errors.As.
type CrossSlotError struct{}

func (CrossSlotError) Error() string {
	return "CROSSSLOT Keys in request don't hash to the same slot"
}

// ErrUnknownCommand is returned by Table.Slot for a command the table does
// not know. Learn it with COMMAND INFO, ParseCommandInfo and Table.With.
var ErrUnknownCommand = errors.New("slots: unknown command")

// ErrNoCommand is returned by Table.Slot for an empty argument list.
var ErrNoCommand = errors.New("slots: empty command")

// Table finds commands by name. It is immutable once built, so one Table is
// safely shared by every goroutine; With returns an extended copy.
type Table struct {
	// byName holds top-level commands by lower-case name and subcommands by
	// their full "parent|sub" name.
	byName map[string]*Command
}

// NewTable builds a table of cmds and their subcommands. A later command
// replaces an earlier one of the same name.
func NewTable(cmds ...*Command) *Table {
	t := &Table{byName: make(map[string]*Command, len(cmds)*2)}
	t.add(cmds)
	return t
}

func (t *Table) add(cmds []*Command) {
	for _, c := range cmds {
		if c == nil {
			continue
		}
		t.byName[strings.ToLower(c.Name)] = c
		t.add(c.Subcommands)
	}
}

// With returns a new table holding t's commands plus cmds (which replace
// commands of the same name). t itself is not changed.
func (t *Table) With(cmds ...*Command) *Table {
	n := &Table{byName: make(map[string]*Command, t.Len()+len(cmds))}
	if t != nil {
		for k, v := range t.byName {
			n.byName[k] = v
		}
	}
	n.add(cmds)
	return n
}

// Len returns the number of commands and subcommands in the table.
func (t *Table) Len() int {
	if t == nil {
		return 0
	}
	return len(t.byName)
}

// Commands calls yield for every command and subcommand, in no fixed order.
func (t *Table) Commands(yield func(*Command) bool) {
	if t == nil {
		return
	}
	for _, c := range t.byName {
		if !yield(c) {
			return
		}
	}
}

// nameBufSize bounds the stack buffer of Lookup; longer names (no built-in
// command comes close) take a slower, allocating path.
const nameBufSize = 96

// Lookup returns the command args names, with any case, resolved to its
// subcommand when it has subcommands ("OBJECT ENCODING" gives
// "object|encoding"). A container without a subcommand argument resolves to
// the container itself; with an unknown subcommand it is unknown. Lookup
// returns nil for an unknown command and does not allocate.
func (t *Table) Lookup(args [][]byte) *Command {
	if t == nil || len(args) == 0 {
		return nil
	}
	var buf [nameBufSize]byte
	name := args[0]
	if len(name) > len(buf) {
		return t.byName[strings.ToLower(string(name))]
	}
	n := lowerInto(buf[:], name)
	c := t.byName[string(buf[:n])] // indexing with string(bytes) does not allocate
	if c == nil || len(c.Subcommands) == 0 || len(args) < 2 {
		return c
	}
	sub := args[1]
	if n+1+len(sub) > len(buf) {
		return t.byName[strings.ToLower(string(name)+"|"+string(sub))]
	}
	buf[n] = '|'
	m := lowerInto(buf[n+1:], sub)
	// Like the server's lookupCommand: an unknown subcommand is an unknown
	// command, so nobody routes "CONFIG BOGUS" as if it were CONFIG.
	return t.byName[string(buf[:n+1+m])]
}

func lowerInto(dst, src []byte) int {
	for i, ch := range src {
		dst[i] = lower(ch)
	}
	return len(src)
}

// Slot returns the hash slot of the command in args: the slot all its keys
// and shard channels share. hasKeys is false for a command without keys
// (PING, KEYS, EVAL with numkeys 0, ...), which any node (or the node its
// request policy names) may run. Repeating one key is fine; keys in
// different slots give ErrCrossSlot, as the server would answer. Slot does
// not allocate.
func (t *Table) Slot(args [][]byte) (s Slot, hasKeys bool, err error) {
	if len(args) == 0 {
		return 0, false, ErrNoCommand
	}
	c := t.Lookup(args)
	if c == nil {
		return 0, false, ErrUnknownCommand
	}
	return c.Slot(args)
}

// Slot is Table.Slot for a command already looked up.
func (c *Command) Slot(args [][]byte) (s Slot, hasKeys bool, err error) {
	var buf [maxKeyRanges]keyRange
	for _, r := range c.keyRanges(buf[:0], args, true) {
		for i := r.first; i <= r.last; i += r.step {
			k := Of(args[i])
			if !hasKeys {
				s, hasKeys = k, true
			} else if k != s {
				return 0, false, ErrCrossSlot
			}
		}
	}
	return s, hasKeys, nil
}
