package client

import (
	"bytes"
	"fmt"
	"testing"
)

// BenchmarkReadArray parses an LRANGE-shaped reply: n short bulk strings,
// as the reply alone and then read out with Strings, as most callers do.
func BenchmarkReadArray(b *testing.B) {
	for _, n := range []int{100, 10_000} {
		var buf bytes.Buffer
		fmt.Fprintf(&buf, "*%d\r\n", n)
		for j := range n {
			e := fmt.Sprintf("0:%d", j)
			fmt.Fprintf(&buf, "$%d\r\n%s\r\n", len(e), e)
		}
		data := buf.Bytes()
		for _, strs := range []bool{false, true} {
			name := fmt.Sprint(n)
			if strs {
				name += "/Strings"
			}
			b.Run(name, func(b *testing.B) {
				b.SetBytes(int64(len(data)))
				b.ReportAllocs()
				src := bytes.NewReader(data)
				rd := newRespReader(src)
				for b.Loop() {
					src.Reset(data)
					res, err := rd.readReply()
					if err != nil || res.Len() != n {
						b.Fatalf("%d elements, %v", res.Len(), err)
					}
					if strs {
						if s, err := res.Strings(); err != nil || len(s) != n {
							b.Fatalf("Strings: %d, %v", len(s), err)
						}
					}
				}
			})
		}
	}
}
