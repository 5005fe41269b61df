package slots_test

import (
	"errors"
	"fmt"

	"github.com/slotrouter/slotrouter/slots"
)

func ExampleOf() {
	fmt.Println(slots.Of("{user1000}.following"), slots.Of("{user1000}.followers"))
	fmt.Println(slots.Of("foo{}{bar}"), slots.HashTag("foo{}{bar}")) // an empty tag hashes the whole key
	fmt.Println(slots.Of([]byte("123456789")))
	// Output:
	// 3443 3443
	// 8363 foo{}{bar}
	// 12739
}

func ExampleTable_Slot() {
	tab := slots.DefaultTable()
	cmd := func(s ...string) [][]byte {
		out := make([][]byte, len(s))
		for i, a := range s {
			out[i] = []byte(a)
		}
		return out
	}
	slot, hasKeys, err := tab.Slot(cmd("MSET", "{user1000}.name", "Ann", "{user1000}.age", "42"))
	fmt.Println(slot, hasKeys, err)

	_, _, err = tab.Slot(cmd("MSET", "a", "1", "b", "2"))
	fmt.Println(errors.Is(err, slots.ErrCrossSlot), err)

	_, hasKeys, _ = tab.Slot(cmd("PING"))
	fmt.Println(hasKeys, tab.Lookup(cmd("PING")).Flags&slots.AllShards != 0)
	// Output:
	// 3443 true <nil>
	// true CROSSSLOT Keys in request don't hash to the same slot
	// false true
}

func ExampleCommand_AppendKeys() {
	args := [][]byte{[]byte("EVAL"), []byte("return 1"), []byte("2"), []byte("k1"), []byte("k2"), []byte("arg")}
	c := slots.DefaultTable().Lookup(args)
	for _, p := range c.AppendKeys(nil, args) {
		fmt.Printf("%d:%s\n", p, args[p])
	}

	spublish := [][]byte{[]byte("SPUBLISH"), []byte("news"), []byte("hi")}
	c = slots.DefaultTable().Lookup(spublish)
	fmt.Println(c.AppendKeys(nil, spublish), c.AppendRoutingKeys(nil, spublish))
	// Output:
	// 3:k1
	// 4:k2
	// [] [1]
}
