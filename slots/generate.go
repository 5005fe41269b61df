package slots

import "sync"

//go:generate go run ../internal/gen/commands -out commands_gen.go

// defaultTable is built on first use and never changed afterwards.
var defaultTable = sync.OnceValue(func() *Table { return NewTable(generatedCommands()...) })

// DefaultTable returns the command table of redis-server 7.0.15 (see
// commands_gen.go). It is shared and read-only; extend it with With.
func DefaultTable() *Table { return defaultTable() }
