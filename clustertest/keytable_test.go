package clustertest

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/slotrouter/slotrouter/slots"
)

// The hand-written command table must agree with the table generated from
// redis-server 7.0.15's COMMAND reply (package slots) on arity, on the
// write/read flags the cluster check uses, and on key positions.
func TestCommandTableMatchesRedis(t *testing.T) {
	gen := slots.DefaultTable()
	check := func(c *command, name []string) {
		argc := c.arity
		if argc < 0 {
			argc = -argc + 2 // a few extra arguments
		}
		args := [][]byte{}
		for _, n := range name {
			args = append(args, []byte(n))
		}
		// COMMAND's optional argument is a subcommand, not a free one.
		for len(args) < argc && c.name != "command" {
			args = append(args, []byte(fmt.Sprintf("k%d", len(args))))
		}
		g := gen.Lookup(args)
		if g == nil {
			t.Errorf("%s: unknown to the generated table", c.name)
			return
		}
		if g.Name != c.name || g.Arity != c.arity {
			t.Errorf("%s arity %d; Redis says %s arity %d", c.name, c.arity, g.Name, g.Arity)
		}
		if (g.Flags&slots.Write != 0) != (c.flags&fWrite != 0) || (g.Flags&slots.Readonly != 0) != (c.flags&fRead != 0) {
			t.Errorf("%s flags %b; Redis says %v", c.name, c.flags, g.Flags)
		}
		want := g.AppendKeys(nil, args)
		got := c.keyPositions(args, nil)
		if !slices.Equal(got, want) && !(len(got) == 0 && len(want) == 0) {
			t.Errorf("%s %q: keys at %v; Redis says %v", c.name, args, got, want)
		}
	}
	for name, c := range buildTable() {
		if c.subs == nil {
			check(c, []string{name})
			continue
		}
		for sub, sc := range c.subs {
			check(sc, []string{name, strings.ToUpper(sub)})
		}
	}
}
