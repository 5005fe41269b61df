package main

import (
	"cmp"
	"slices"
)

// median is the middle of xs (the upper one of an even count), or the zero
// value when xs is empty. xs is left as it was: tallies are read in call
// order afterwards.
func median[T cmp.Ordered](xs []T) T {
	if len(xs) == 0 {
		var zero T
		return zero
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	return s[len(s)/2]
}
