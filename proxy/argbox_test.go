package proxy

import (
	"testing"

	"github.com/stretchr/testify/require"
)

// TestArgBoxes: the boxed arguments are ordinary []byte interface values
// (a type switch and an assertion see them so), equal to the input, and
// boxing allocates nothing once the session's slices have grown.
func TestArgBoxes(t *testing.T) {
	var b argBoxes
	for _, args := range [][][]byte{
		{[]byte("SET"), []byte("k"), []byte("v")},
		{[]byte("GET"), []byte("key:2")},
		{[]byte("PING")},
		{[]byte("MSET"), []byte("a"), []byte(""), []byte("b"), nil, []byte("c"), []byte("3")},
	} {
		got := b.box(args)
		require.Len(t, got, len(args))
		for i, a := range got {
			switch v := a.(type) {
			case []byte:
				require.Equal(t, args[i], v)
			default:
				t.Fatalf("argument %d boxed as %T", i, a)
			}
			require.Equal(t, any(args[i]), a)
		}
	}
	args := [][]byte{[]byte("SET"), []byte("key"), []byte("value")}
	n := testing.AllocsPerRun(100, func() { b.box(args) })
	require.Zero(t, n, "allocations per box")
}
