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
				benchReply(b, data, len(data), func(res Result) error {
					if res.Len() != n {
						return fmt.Errorf("%d elements", res.Len())
					}
					if strs {
						if s, err := res.Strings(); err != nil || len(s) != n {
							return fmt.Errorf("Strings: %d, %v", len(s), err)
						}
					}
					return nil
				})
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
			benchReply(b, data, n, func(res Result) error {
				if len(res.str) != n {
					return fmt.Errorf("%d bytes", len(res.str))
				}
				return nil
			})
		})
	}
}

// benchReply parses data, one reply, once per iteration, and checks it.
func benchReply(b *testing.B, data []byte, payload int, check func(Result) error) {
	b.SetBytes(int64(payload))
	b.ReportAllocs()
	src := bytes.NewReader(data)
	rd := newRespReader(src)
	for b.Loop() {
		src.Reset(data)
		res, err := rd.readReply()
		if err == nil {
			err = check(res)
		}
		if err != nil {
			b.Fatal(err)
		}
	}
}
