package client

import (
	"errors"
	"testing"

	"github.com/slotrouter/slotrouter/slots"
)

// The response policies no built-in 7.0 command exercises end to end
// (agg_max, agg_logical_or, one_succeeded with every leg failing), on
// hand-made leg replies.
func TestMergePolicies(t *testing.T) {
	ints := func(ns ...int64) []NodeResult {
		var out []NodeResult
		for i, n := range ns {
			out = append(out, NodeResult{Addr: string(rune('a' + i)), Result: Result{kind: KindInt, num: n}})
		}
		return out
	}
	cmd := func(p slots.ResponsePolicy) *slots.Command {
		return &slots.Command{Name: "x", Flags: slots.AllShards, Response: p}
	}
	for _, c := range []struct {
		p    slots.ResponsePolicy
		in   []int64
		want string
	}{
		{slots.ResponseAggSum, []int64{3, 4, 5}, "(integer) 12"},
		{slots.ResponseAggMin, []int64{3, 1, 5}, "(integer) 1"},
		{slots.ResponseAggMax, []int64{3, 9, 5}, "(integer) 9"},
		{slots.ResponseAggLogicalAnd, []int64{1, 0, 1}, "(integer) 0"},
		{slots.ResponseAggLogicalOr, []int64{0, 1, 0}, "(integer) 1"},
		{slots.ResponseAllSucceeded, []int64{7, 7, 7}, "(integer) 7"},
	} {
		if got := merge("X", cmd(c.p), ints(c.in...)).String(); got != c.want {
			t.Errorf("%v %v = %s, want %s", c.p, c.in, got, c.want)
		}
	}

	busy := Result{kind: KindError, err: &Error{msg: "NOTBUSY No scripts in execution right now."}}
	legs := []NodeResult{{Addr: "a", Result: busy}, {Addr: "b", Result: Result{kind: KindString, str: "OK"}}}
	if got := merge("SCRIPT", cmd(slots.ResponseOneSucceeded), legs).String(); got != `"OK"` {
		t.Errorf("one_succeeded = %s", got)
	}
	legs[1].Result = busy
	var fe *FanoutError
	if err := merge("SCRIPT", cmd(slots.ResponseOneSucceeded), legs).Err(); !errors.As(err, &fe) || len(fe.Failed) != 2 {
		t.Errorf("one_succeeded, all failed: %v", err)
	}
	// A node's error reply fails an aggregate, and still matches its kind.
	legs = ints(1, 2)
	legs[1].Result = Result{kind: KindError, err: &Error{msg: "LOADING Redis is loading"}}
	err := merge("DBSIZE", cmd(slots.ResponseAggSum), legs).Err()
	if !errors.As(err, &fe) || fe.Failed[0].Addr != "b" || len(fe.Succeeded) != 1 || !errors.Is(err, ErrLoading) {
		t.Errorf("agg_sum with an error leg: %v", err)
	}
	// A non-integer reply cannot be summed.
	legs = ints(1)
	legs = append(legs, NodeResult{Addr: "b", Result: Result{kind: KindBulk, str: "x"}})
	var rte *ReplyTypeError
	if err := merge("DBSIZE", cmd(slots.ResponseAggSum), legs).Err(); !errors.As(err, &rte) {
		t.Errorf("agg_sum of a bulk: %v", err)
	}
	// Per-node replies keep every node.
	nodes, err := merge("INFO", cmd(slots.ResponseSpecial), ints(1, 2, 3)).Nodes()
	if err != nil || len(nodes) != 3 || nodes[2].Addr != "c" {
		t.Errorf("special: %v %v", nodes, err)
	}
	if _, err := (Result{kind: KindInt}).Nodes(); err == nil {
		t.Error("Nodes of an integer reply")
	}
}
