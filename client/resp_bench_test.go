package client

import (
	"bytes"
	"fmt"
	"testing"
)

// BenchmarkReadArray parses an LRANGE-shaped reply: n short bulk strings.
func BenchmarkReadArray(b *testing.B) {
	for _, n := range []int{100, 10_000} {
		var buf bytes.Buffer
		fmt.Fprintf(&buf, "*%d\r\n", n)
		for j := range n {
			e := fmt.Sprintf("0:%d", j)
			fmt.Fprintf(&buf, "$%d\r\n%s\r\n", len(e), e)
		}
		data := buf.Bytes()
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			b.SetBytes(int64(len(data)))
			b.ReportAllocs()
			src := bytes.NewReader(data)
			rd := newRespReader(src)
			for b.Loop() {
				src.Reset(data)
				res, err := rd.readReply()
				if err != nil || len(res.arr) != n {
					b.Fatalf("%d elements, %v", len(res.arr), err)
				}
			}
		})
	}
}
