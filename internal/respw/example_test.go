package respw_test

import (
	"fmt"

	"github.com/slotrouter/slotrouter/internal/respw"
)

// The replies to a pipelined SET, GET and LLEN, built in one buffer.
func Example() {
	b := respw.Simple(nil, "OK")
	b = respw.Bulk(b, "value")
	b = respw.Int(b, -3)
	b = respw.Header(b, '*', 2)
	b = respw.Bulk(b, []byte("a"))
	b = respw.Header(b, '$', -1)
	fmt.Printf("%q\n", b)
	// Output: "+OK\r\n$5\r\nvalue\r\n:-3\r\n*2\r\n$1\r\na\r\n$-1\r\n"
}
