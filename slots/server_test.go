package slots

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"reflect"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/slotrouter/slotrouter/internal/redistest"
)

// These tests compare with a real redis-server: CLUSTER KEYSLOT for Of, and
// COMMAND GETKEYS / COMMAND for the command table. Expected values always
// come from the server, never from this package.

func startClusterNode(t *testing.T) *redistest.Server {
	t.Helper()
	redistest.Require(t)
	return redistest.StartServer(t, redistest.ServerOptions{Config: []string{"cluster-enabled yes"}})
}

func keyslotKeys() [][]byte {
	var keys [][]byte
	for b := range 256 {
		keys = append(keys, []byte{byte(b)})
	}
	// Every string over '{', '}', 'a', 'b' up to length 6: all the hash-tag
	// corner cases ("{}", "{{a}}", "}{a}", "{a}{b}", ...).
	alphabet := []byte("{}ab")
	level := [][]byte{{}}
	for range 6 {
		var next [][]byte
		for _, p := range level {
			for _, c := range alphabet {
				next = append(next, append(append([]byte(nil), p...), c))
			}
		}
		keys = append(keys, level...)
		level = next
	}
	keys = append(keys, level...)
	rng := rand.New(rand.NewPCG(7, 11))
	for range 1000 {
		k := make([]byte, rng.IntN(65))
		for i := range k {
			k[i] = byte(rng.Uint32())
		}
		keys = append(keys, k)
	}
	for _, s := range []string{"ключ", "键{标签}", "{标签}x", "🔑{🗝}", "e\u0301", "é", "ß{ẞ}", "日本語のキー", "{}🗝", "\u2028{\u2029}"} {
		keys = append(keys, []byte(s))
	}
	for i := range 12 {
		n := 1024 + i*800 // 1 KiB to ~10 KiB
		k := bytes.Repeat([]byte{'a' + byte(i)}, n)
		if i%3 == 1 { // a tag deep inside a long key
			copy(k[n/2:], "{deep-tag}")
		}
		if i%3 == 2 { // a long tag
			k[0], k[n-1] = '{', '}'
		}
		keys = append(keys, k)
	}
	return keys
}

func TestOfMatchesClusterKeyslot(t *testing.T) {
	srv := startClusterNode(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	keys := keyslotKeys()
	if len(keys) < 5000 {
		t.Fatalf("only %d keys", len(keys))
	}
	const batch = 1000
	for start := 0; start < len(keys); start += batch {
		part := keys[start:min(start+batch, len(keys))]
		pipe := srv.Client().Pipeline()
		cmds := make([]*redis.IntCmd, len(part))
		for i, k := range part {
			cmds[i] = pipe.ClusterKeySlot(ctx, string(k))
		}
		if _, err := pipe.Exec(ctx); err != nil {
			t.Fatalf("pipeline: %v", err)
		}
		for i, k := range part {
			want := cmds[i].Val()
			if got := Of(k); int64(got) != want {
				t.Errorf("Of(%q) = %d, CLUSTER KEYSLOT = %d", k, got, want)
			}
			if got := Of(string(k)); int64(got) != want {
				t.Errorf("Of(string %q) = %d, CLUSTER KEYSLOT = %d", k, got, want)
			}
		}
	}
	t.Logf("%d keys agree with CLUSTER KEYSLOT", len(keys))
}

// getKeysResult is what COMMAND GETKEYS said: the keys, or an error text.
type getKeysResult struct {
	keys [][]byte
	err  string
}

func serverGetKeys(ctx context.Context, t *testing.T, srv *redistest.Server, invocations [][][]byte) []getKeysResult {
	t.Helper()
	out := make([]getKeysResult, 0, len(invocations))
	const batch = 500
	for start := 0; start < len(invocations); start += batch {
		part := invocations[start:min(start+batch, len(invocations))]
		pipe := srv.Client().Pipeline()
		cmds := make([]*redis.Cmd, len(part))
		for i, args := range part {
			a := []any{"COMMAND", "GETKEYS"}
			for _, arg := range args {
				a = append(a, string(arg))
			}
			cmds[i] = pipe.Do(ctx, a...)
		}
		_, _ = pipe.Exec(ctx) // per-command errors are read below
		for i := range part {
			v, err := cmds[i].Result()
			if err != nil {
				var rerr redis.Error
				if !errors.As(err, &rerr) {
					t.Fatalf("GETKEYS %q: transport error %v", part[i], err)
				}
				out = append(out, getKeysResult{err: err.Error()})
				continue
			}
			list, ok := v.([]any)
			if !ok {
				t.Fatalf("GETKEYS %q: reply %T", part[i], v)
			}
			var keys [][]byte
			for _, k := range list {
				keys = append(keys, []byte(k.(string)))
			}
			out = append(out, getKeysResult{keys: keys})
		}
	}
	return out
}

// checkAgainstServer compares our view of one invocation with GETKEYS.
func checkAgainstServer(t *testing.T, args [][]byte, res getKeysResult) {
	t.Helper()
	c := DefaultTable().Lookup(args)
	var ours [][]byte
	if c != nil {
		for _, p := range c.AppendKeys(nil, args) {
			ours = append(ours, args[p])
		}
	}
	switch {
	case res.err == "":
		if c == nil {
			t.Errorf("%q: unknown to us, server keys %q", args, res.keys)
		} else if !reflect.DeepEqual(ours, res.keys) {
			t.Errorf("%q: keys %q, server %q", args, ours, res.keys)
		}
	case strings.Contains(res.err, "Invalid command specified"):
		if c != nil {
			t.Errorf("%q: we know %s, the server does not", args, c.Name)
		}
	case strings.Contains(res.err, "The command has no key arguments"):
		if c == nil || c.Flags&NoKeys == 0 || len(ours) != 0 {
			t.Errorf("%q: server: no key arguments; we: %v keys %q", args, c, ours)
		}
	case strings.Contains(res.err, "Invalid arguments specified"):
		if len(ours) != 0 {
			t.Errorf("%q: server: invalid arguments; we: keys %q", args, ours)
		}
	case strings.Contains(res.err, "Invalid number of arguments"):
		if c == nil || c.ValidArity(len(args)) {
			t.Errorf("%q: server: wrong arity; we accept %d args", args, len(args))
		}
	case len(args) == 1 && strings.Contains(res.err, "wrong number of arguments for 'command|getkeys'"):
		// GETKEYS needs an argument after the name; positions start at 1.
		if c == nil || len(ours) != 0 {
			t.Errorf("%q: command %v, keys %q", args, c, ours)
		}
	default:
		t.Errorf("%q: unexpected server error %q", args, res.err)
	}
}

func TestGetKeysCorpus(t *testing.T) {
	srv := startClusterNode(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	invocations := corpus(t)
	if len(invocations) < 150 {
		t.Fatalf("corpus has only %d invocations", len(invocations))
	}
	results := serverGetKeys(ctx, t, srv, invocations)
	withKeys := 0
	for i, args := range invocations {
		checkAgainstServer(t, args, results[i])
		if len(results[i].keys) > 0 {
			withKeys++
		}
	}
	t.Logf("%d invocations agree with COMMAND GETKEYS (%d with keys)", len(invocations), withKeys)
}

// TestGetKeysSweep builds, for every command and subcommand of the table,
// invocations with the smallest argument count the arity allows and (for
// variadic commands) a few more, and compares each with GETKEYS.
func TestGetKeysSweep(t *testing.T) {
	srv := startClusterNode(t)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	var invocations [][][]byte
	var names []string
	DefaultTable().Commands(func(c *Command) bool {
		names = append(names, c.Name)
		return true
	})
	sort.Strings(names)
	for _, name := range names {
		c := DefaultTable().Lookup(nameArgs(name))
		counts := []int{c.Arity}
		if c.Arity < 0 {
			n := -c.Arity
			counts = []int{n, n + 1, n + 2, n + 3, n + 6}
		}
		for _, n := range counts {
			args := nameArgs(name)
			for i := len(args); i < n; i++ {
				args = append(args, fmt.Appendf(nil, "a%d", i))
			}
			invocations = append(invocations, args)
		}
	}
	results := serverGetKeys(ctx, t, srv, invocations)
	withKeys := 0
	for i, args := range invocations {
		checkAgainstServer(t, args, results[i])
		if len(results[i].keys) > 0 {
			withKeys++
		}
	}
	if withKeys < 150 {
		t.Errorf("only %d sweep invocations have keys", withKeys)
	}
	t.Logf("%d commands, %d invocations agree with COMMAND GETKEYS (%d with keys)", len(names), len(invocations), withKeys)
}

func nameArgs(name string) [][]byte {
	parent, sub, ok := strings.Cut(name, "|")
	if !ok {
		return [][]byte{[]byte(strings.ToUpper(parent))}
	}
	return [][]byte{[]byte(strings.ToUpper(parent)), []byte(sub)}
}

// TestDefaultTableIsCurrent checks that commands_gen.go is what the
// generator would write today: the live COMMAND reply, through the same
// parser, gives the same table.
func TestDefaultTableIsCurrent(t *testing.T) {
	srv := startClusterNode(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	info, err := srv.Client().Info(ctx, "server").Result()
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(info, "redis_version:"+generatedVersion+"\r\n") {
		t.Skipf("the table was generated from %s; this redis-server is another version", generatedVersion)
	}
	reply, err := srv.Do(ctx, "COMMAND")
	if err != nil {
		t.Fatal(err)
	}
	live, err := ParseCommandInfo(reply)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := len(live), len(generatedCommands()); got != want {
		t.Fatalf("live COMMAND has %d commands, the table %d", got, want)
	}
	for _, lc := range live {
		gc := DefaultTable().Lookup(nameArgs(lc.Name))
		if gc == nil || gc.Name != lc.Name {
			t.Errorf("%s: missing from the table", lc.Name)
			continue
		}
		if !sameCommand(gc, lc) {
			t.Errorf("%s: table %+v, live %+v", lc.Name, gc, lc)
		}
	}
}

// sameCommand compares two commands, ignoring subcommand order.
func sameCommand(a, b *Command) bool {
	ac, bc := *a, *b
	ac.Subcommands, bc.Subcommands = nil, nil
	if !reflect.DeepEqual(ac, bc) || len(a.Subcommands) != len(b.Subcommands) {
		return false
	}
	byName := map[string]*Command{}
	for _, s := range a.Subcommands {
		byName[s.Name] = s
	}
	for _, s := range b.Subcommands {
		if o := byName[s.Name]; o == nil || !sameCommand(o, s) {
			return false
		}
	}
	return true
}

// TestShardChannelRouting checks on a real 3-master cluster that the slot
// of SPUBLISH is the channel's: the owner accepts it, any other master
// answers MOVED to that slot. Keyed commands are checked the same way.
func TestShardChannelRouting(t *testing.T) {
	redistest.Require(t)
	cl := redistest.StartCluster(t, redistest.ClusterOptions{Masters: 3})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cl.WaitOK(ctx)
	for _, args := range [][]string{
		{"SPUBLISH", "news{eu}", "hello"},
		{"SPUBLISH", "chan-42", "x"},
		{"SET", "{user1000}.following", "1"},
		{"MSET", "{t}a", "1", "{t}b", "2"},
	} {
		bargs := make([][]byte, len(args))
		anyArgs := make([]any, len(args))
		for i, a := range args {
			bargs[i], anyArgs[i] = []byte(a), a
		}
		slot, hasKeys, err := DefaultTable().Slot(bargs)
		if err != nil || !hasKeys {
			t.Fatalf("%q: Slot = %d, %v, %v", args, slot, hasKeys, err)
		}
		owner := cl.MasterOf(int(slot))
		if _, err := owner.Do(ctx, anyArgs...); err != nil {
			t.Errorf("%q on the owner of slot %d: %v", args, slot, err)
		}
		for _, m := range cl.Masters() {
			if m.Addr == owner.Addr {
				continue
			}
			_, err := m.Do(ctx, anyArgs...)
			if err == nil || !strings.Contains(err.Error(), fmt.Sprintf("MOVED %d ", slot)) {
				t.Errorf("%q on %s (not the owner of %d): %v, want MOVED %d", args, m.Addr, slot, err, slot)
			}
		}
	}
	// CROSSSLOT: our error text is the server's.
	m := cl.Masters()[0]
	_, err := m.Do(ctx, "MSET", "a", "1", "b", "2")
	if err == nil || !strings.Contains(err.Error(), ErrCrossSlot.Error()) {
		t.Errorf("server MSET a b: %v, want %q", err, ErrCrossSlot)
	}
	if _, _, err := DefaultTable().Slot([][]byte{[]byte("MSET"), []byte("a"), []byte("1"), []byte("b"), []byte("2")}); !errors.Is(err, ErrCrossSlot) {
		t.Errorf("Slot MSET a b: %v, want ErrCrossSlot", err)
	}
}
