package replyconv_test

import (
	"fmt"

	"github.com/slotrouter/slotrouter/internal/replyconv"
)

// A ROLE reply of a replica as a RESP2 decoder may hand it over: text as
// []byte, the port as decimal text.
func Example() {
	reply := []any{[]byte("slave"), "127.0.0.1", "6380", "connected", int64(1234)}
	role, _ := replyconv.String(reply[0])
	port, _ := replyconv.Int(reply[2])
	offset, _ := replyconv.Int(reply[4])
	fmt.Println(role, port, offset)
	// Output: slave 6380 1234
}
