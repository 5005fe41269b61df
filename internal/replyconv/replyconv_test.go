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

func TestReplIDs(t *testing.T) {
	// INFO replication of a replica just promoted by REPLICAOF NO ONE (7.0.15).
	text := "# Replication\r\nrole:master\r\nmaster_replid:ff5d74daa7d557d6127a1529f21200a9122cc2f6\r\n" +
		"master_replid2:55b3c1c28fae06687a8bfe0dc3143426db6bdc71\r\nsecond_repl_offset:142\r\n"
	f, ok := replyconv.Info(text)
	if !ok || f["role"] != "master" {
		t.Fatalf("Info = %v, %v", f, ok)
	}
	if id, id2 := replyconv.ReplIDs(f); id != "ff5d74daa7d557d6127a1529f21200a9122cc2f6" || id2 != "55b3c1c28fae06687a8bfe0dc3143426db6bdc71" {
		t.Fatalf("ReplIDs = %q %q", id, id2)
	}
	never, _ := replyconv.Info("master_replid:55b3c1c28fae06687a8bfe0dc3143426db6bdc71\nmaster_replid2:0000000000000000000000000000000000000000\n")
	if _, id2 := replyconv.ReplIDs(never); id2 != "" {
		t.Fatalf("all-zero master_replid2 = %q, want empty", id2)
	}
	if _, ok := replyconv.Info(int64(1)); ok {
		t.Fatal("Info accepted an integer")
	}
}
