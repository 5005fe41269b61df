package client

import (
	"context"
	"crypto/sha1"
	"encoding/hex"
	"errors"
)

// Script is a Lua script run by its SHA1 digest, so its source crosses the
// network only when a node does not have it yet. Make one per script (at
// package level, typically) and share it.
type Script struct {
	src, hash string
}

// NewScript prepares src; nothing is sent until Run.
func NewScript(src string) *Script {
	h := sha1.Sum([]byte(src))
	return &Script{src: src, hash: hex.EncodeToString(h[:])}
}

// Hash is the script's SHA1 digest, as EVALSHA and SCRIPT LOAD know it.
func (s *Script) Hash() string { return s.hash }

// Run runs the script on the node that owns keys (they must share one slot;
// no keys: any master) with EVALSHA and, when that node answers NOSCRIPT (a
// node that never loaded it: after a restart, a failover to a replica that
// missed SCRIPT LOAD, a node added since), once more with EVAL, which also
// leaves the script cached there. Redirects and failovers are handled as
// for Do; the script is retried after an ambiguous failure only under
// Idempotent, since it may write.
func (s *Script) Run(ctx context.Context, c *Client, keys []string, args ...any) Result {
	return s.run(ctx, c, "EVALSHA", "EVAL", keys, args)
}

// RunRO is Run for a script that only reads (Redis 7+): EVALSHA_RO and
// EVAL_RO are read-only commands, so they follow Options.ReadPolicy to
// replicas, and are retried after any failure. A script that writes fails.
func (s *Script) RunRO(ctx context.Context, c *Client, keys []string, args ...any) Result {
	return s.run(ctx, c, "EVALSHA_RO", "EVAL_RO", keys, args)
}

func (s *Script) run(ctx context.Context, c *Client, bySHA, bySrc string, keys []string, args []any) Result {
	cmd := make([]any, 0, 3+len(keys)+len(args))
	cmd = append(cmd, bySHA, s.hash, len(keys))
	for _, k := range keys {
		cmd = append(cmd, k)
	}
	cmd = append(cmd, args...)
	r := c.Do(ctx, cmd...)
	if !errors.Is(r.Err(), ErrNoScript) {
		return r
	}
	cmd[0], cmd[1] = bySrc, s.src
	return c.Do(ctx, cmd...)
}
