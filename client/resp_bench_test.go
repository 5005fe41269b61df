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

// BenchmarkReadBulk parses a GET-shaped reply: one bulk string of 1 MiB or
// 16 MiB, which the reader reads straight into the value's own allocation.
func BenchmarkReadBulk(b *testing.B) {
	for _, n := range []int{1 << 20, 16 << 20} {
		data := append(fmt.Appendf(nil, "$%d\r\n", n), bytes.Repeat([]byte{'v'}, n)...)
		data = append(data, "\r\n"...)
		b.Run(fmt.Sprintf("%dMiB", n>>20), func(b *testing.B) {
			b.SetBytes(int64(n))
			b.ReportAllocs()
			src := bytes.NewReader(data)
			rd := newRespReader(src)
			for b.Loop() {
				src.Reset(data)
				res, err := rd.readReply()
				if err != nil || len(res.str) != n {
					b.Fatalf("%d bytes, %v", len(res.str), err)
				}
			}
		})
	}
}
