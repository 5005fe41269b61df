package replyconv_test

import (
	"testing"

	"github.com/slotrouter/slotrouter/internal/replyconv"
)

func TestString(t *testing.T) {
	for _, tc := range []struct {
		in   any
		want string
		ok   bool
	}{
		{"master", "master", true},
		{[]byte("slave"), "slave", true},
		{"", "", true},
		{int64(1), "", false},
		{nil, "", false},
		{[]any{"x"}, "", false},
	} {
		got, ok := replyconv.String(tc.in)
		if got != tc.want || ok != tc.ok {
			t.Errorf("String(%#v) = %q, %v; want %q, %v", tc.in, got, ok, tc.want, tc.ok)
		}
	}
}

func TestInt(t *testing.T) {
	for _, tc := range []struct {
		in   any
		want int64
		ok   bool
	}{
		{int64(-7), -7, true},
		{42, 42, true},
		{"6379", 6379, true},
		{[]byte("9223372036854775807"), 9223372036854775807, true},
		{"9223372036854775808", 9223372036854775807, false}, // out of range: ParseInt's clamp, not ok
		{"12a", 0, false},
		{"", 0, false},
		{1.5, 0, false},
		{nil, 0, false},
	} {
		got, ok := replyconv.Int(tc.in)
		if got != tc.want || ok != tc.ok {
			t.Errorf("Int(%#v) = %d, %v; want %d, %v", tc.in, got, ok, tc.want, tc.ok)
		}
	}
}
