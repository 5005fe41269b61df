package client

import (
	"context"
	"errors"
	"iter"
	"strconv"
	"strings"

	"github.com/slotrouter/slotrouter/router"
	"github.com/slotrouter/slotrouter/slots"
)

// ScanOptions filter a scan. The zero value returns everything.
type ScanOptions struct {
	// Match keeps only names matching this glob pattern (SCAN MATCH).
	Match string
	// Count is the work hint of each SCAN call (COUNT). Default 100.
	Count int
	// Type keeps only keys of this type, e.g. "hash" (SCAN TYPE; whole
	// keyspace scans only).
	Type string
}

// maxScanPasses bounds the walks of nodes that keys kept arriving on.
const maxScanPasses = 16

// Scan walks the keyspace of every master and yields each key name. It
// stops at the first error, which it yields (with an empty name).
//
// Guarantee: every key present for the whole scan is returned at least
// once, through a failover and through slot migrations. Keys may be
// returned more than once (SCAN's own rule, and a shard's walk starts over
// on a promoted replica); keys added or removed during the scan may or may
// not be returned.
//
// How: each master's walk is an ordinary routed attempt (a failover sends it
// to the promoted replica, where it starts over, since a cursor means
// nothing to another node). A key that moves to another node during the
// scan may be on neither node when each is walked; but the node it moved to
// ran MIGRATE's RESTORE-ASKING for it. So after the walks, every master
// whose INFO commandstats count of RESTORE-ASKING grew since its walk began,
// and every master not walked yet (a new owner), is walked again, until a
// round finds none. Where an ACL refuses INFO, moves to that node go unseen.
func (c *Client) Scan(ctx context.Context, o ScanOptions) iter.Seq2[string, error] {
	return func(yield func(string, error) bool) {
		s := &keyspaceScan{c: c, opts: o, received: map[string]int64{}}
		legs := c.router.Masters()
		for pass := 0; len(legs) > 0; pass++ {
			if pass == maxScanPasses {
				yield("", ErrScanUnstable)
				return
			}
			for _, leg := range legs {
				if err := s.walk(ctx, leg, yield); err != nil {
					if !errors.Is(err, errStopped) {
						yield("", err)
					}
					return
				}
			}
			legs = s.arrivals(ctx)
		}
	}
}

// errStopped: the caller broke out of the loop.
var errStopped = errors.New("slotrouter: scan stopped by its caller")

// keyspaceScan is the state of one Scan.
type keyspaceScan struct {
	c    *Client
	opts ScanOptions
	// received is each walked master's RESTORE-ASKING count when its walk
	// began or it was last checked; -1 when the node would not say (INFO
	// refused by an ACL: moves to it then go unseen).
	received map[string]int64
}

// baseline records addr's RESTORE-ASKING count before its walk.
func (s *keyspaceScan) baseline(ctx context.Context, addr string) {
	n, err := s.c.restores(ctx, addr)
	if err != nil {
		n = -1
	}
	s.received[addr] = n
}

// walk runs one master's SCAN to its end, yielding every name.
func (s *keyspaceScan) walk(ctx context.Context, leg router.Leg, yield func(string, error) bool) error {
	leg.Attempt.Idempotent = true // a read: safe to resend; never ReadOnly, the cursor belongs to the master
	pinned := ""
	if leg.Pinned {
		pinned = leg.Addr
	}
	owner := s.c.legAddr(leg)
	s.baseline(ctx, owner)
	moved := func(addr string) { s.baseline(ctx, addr) }
	return s.c.cursorWalk(ctx, "SCAN", "", s.opts, leg.Attempt, pinned, owner, moved, func(keys []string) bool {
		for _, k := range keys {
			if !yield(k, nil) {
				return false
			}
		}
		return true
	})
}

// legAddr is the node leg goes to now ("" while its shard has no master).
func (c *Client) legAddr(leg router.Leg) string {
	if leg.Pinned {
		return leg.Addr
	}
	a := leg.Attempt
	addr, _ := c.router.Target(&a)
	return addr
}

// arrivals returns the masters to walk again: those that received migrated
// keys since their walk or last check, those never walked (new owners), and
// shards whose master could not be asked.
func (s *keyspaceScan) arrivals(ctx context.Context) []router.Leg {
	var again []router.Leg
	for _, leg := range s.c.router.Masters() {
		addr := s.c.legAddr(leg)
		before, walked := s.received[addr]
		n, err := s.c.restores(ctx, addr)
		var refused *Error
		switch {
		case addr == "" || !walked:
			again = append(again, leg)
		case errors.As(err, &refused):
		case err != nil: // down: its shard's keys are on a promoted replica now
			again = append(again, leg)
		case before >= 0 && n > before:
			again = append(again, leg)
		}
		if err == nil {
			s.received[addr] = n
		}
	}
	return again
}

// restores is addr's count of RESTORE-ASKING calls: the receiving half of
// MIGRATE, so it grows whenever keys move to addr.
func (c *Client) restores(ctx context.Context, addr string) (int64, error) {
	if addr == "" {
		return 0, ErrNoOwner
	}
	// A hung node must not hold the scan: the walk itself finds out, and
	// follows the shard to its next master.
	ctx, cancel := context.WithTimeout(ctx, c.opts.HealthTimeout)
	defer cancel()
	txt, err := c.DoOn(ctx, addr, "INFO", "commandstats").Text()
	if err != nil {
		return 0, err
	}
	_, rest, ok := strings.Cut(txt, "cmdstat_restore-asking:calls=")
	if !ok {
		return 0, nil
	}
	num, _, _ := strings.Cut(rest, ",")
	return strconv.ParseInt(num, 10, 64)
}

// scanArgs builds "SCAN cursor ..." or "HSCAN key cursor ...".
func scanArgs(name, key, cursor string, o ScanOptions) []any {
	args := []any{name}
	if key != "" {
		args = append(args, key)
	}
	args = append(args, cursor)
	if o.Match != "" {
		args = append(args, "MATCH", o.Match)
	}
	count := o.Count
	if count <= 0 {
		count = 100
	}
	args = append(args, "COUNT", count)
	if o.Type != "" && key == "" {
		args = append(args, "TYPE", o.Type)
	}
	return args
}

// scanCall sends one SCAN-family call through the attempt loop and splits
// its [cursor, [elements]] reply.
func (c *Client) scanCall(ctx context.Context, args []any, a router.Attempt, pinned string, served *string) ([]string, string, error) {
	if c.closed.Load() {
		return nil, "", ErrClosed
	}
	cmd, err := newCommand(args)
	if err != nil {
		return nil, "", err
	}
	res := c.attemptLoop(ctx, cmd, a, false, pinned, served)
	cmd.release()
	if err := res.Err(); err != nil {
		return nil, "", err
	}
	parts, err := res.Results()
	if err != nil || len(parts) != 2 {
		return nil, "", &ReplyTypeError{Want: "[cursor, elements]", Got: res.kind}
	}
	next, err := parts[0].Text()
	if err != nil {
		return nil, "", err
	}
	elems, err := parts[1].Strings()
	return elems, next, err
}

// cursorWalk runs one SCAN-family walk to its end. The cursor belongs to
// the node that answered: when another one answers (a failover, the key's
// migration), the walk starts over there, after moved(addr) when moved is
// set. owner is the node expected to answer first ("" when unknown). It
// returns errStopped when yield asks to stop.
func (c *Client) cursorWalk(ctx context.Context, name, key string, o ScanOptions, a router.Attempt, pinned, owner string,
	moved func(addr string), yield func([]string) bool) error {
	cursor := "0"
	for {
		var served string
		elems, next, err := c.scanCall(ctx, scanArgs(name, key, cursor, o), a, pinned, &served)
		if err != nil {
			return err
		}
		if !yield(elems) {
			return errStopped
		}
		switch {
		case owner != "" && served != owner:
			owner, cursor = served, "0"
			if moved != nil {
				moved(owner)
			}
		case next == "0":
			return nil
		default:
			owner, cursor = served, next
		}
	}
}

// keyScan walks one key's collection with HSCAN, SSCAN or ZSCAN, routed by
// the key: a failover or a migration of the key's slot starts the walk over
// on the node that now holds it. Each run of step elements becomes one T.
func keyScan[T any](ctx context.Context, c *Client, name, key string, o ScanOptions, step int, conv func([]string) (T, error)) iter.Seq2[T, error] {
	return func(yield func(T, error) bool) {
		var zero T
		a := router.Attempt{Slot: slots.Of(key), HasSlot: true, Idempotent: true}
		err := c.cursorWalk(ctx, name, key, o, a, "", "", nil, func(elems []string) bool {
			for i := 0; i+step <= len(elems); i += step {
				v, err := conv(elems[i : i+step])
				if err != nil {
					yield(zero, err)
					return false
				}
				if !yield(v, nil) {
					return false
				}
			}
			return true
		})
		if err != nil && !errors.Is(err, errStopped) {
			yield(zero, err)
		}
	}
}

// SScan yields the members of the set at key (SSCAN), at least once each
// for members present for the whole walk.
func (c *Client) SScan(ctx context.Context, key string, o ScanOptions) iter.Seq2[string, error] {
	return keyScan(ctx, c, "SSCAN", key, o, 1, func(e []string) (string, error) { return e[0], nil })
}

// FieldValue is one field of a hash.
type FieldValue struct{ Field, Value string }

// HScan yields the fields of the hash at key (HSCAN), as SScan does.
func (c *Client) HScan(ctx context.Context, key string, o ScanOptions) iter.Seq2[FieldValue, error] {
	return keyScan(ctx, c, "HSCAN", key, o, 2, func(e []string) (FieldValue, error) { return FieldValue{e[0], e[1]}, nil })
}

// MemberScore is one member of a sorted set.
type MemberScore struct {
	Member string
	Score  float64
}

// ZScan yields the members of the sorted set at key (ZSCAN), as SScan does.
func (c *Client) ZScan(ctx context.Context, key string, o ScanOptions) iter.Seq2[MemberScore, error] {
	return keyScan(ctx, c, "ZSCAN", key, o, 2, func(e []string) (MemberScore, error) {
		score, err := strconv.ParseFloat(e[1], 64)
		if err != nil {
			return MemberScore{}, &ReplyTypeError{Want: "score", Got: KindBulk, Text: e[1]}
		}
		return MemberScore{e[0], score}, nil
	})
}
