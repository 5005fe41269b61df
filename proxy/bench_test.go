package proxy

import (
	"bufio"
	"context"
	"fmt"
	"strings"
	"testing"
)

// BenchmarkSessionPipelined is a redis-benchmark -P 16 batch through one
// in-process session: 16 SETs or GETs written at once, 16 replies read.
// One op is one command; allocs/op is the proxy's and the client's cost
// per command.
func BenchmarkSessionPipelined(b *testing.B) {
	srv := newServer(b, Options{})
	for _, cmd := range []string{"SET", "GET"} {
		b.Run(cmd, func(b *testing.B) {
			conn, err := srv.DialContext(context.Background(), "tcp", "proxy")
			if err != nil {
				b.Fatal(err)
			}
			defer conn.Close()
			var batch strings.Builder
			for i := range 16 {
				if cmd == "SET" {
					batch.WriteString(encode("SET", fmt.Sprintf("bench:%d", i), "xxxxxxxxxxxxxxxx"))
				} else {
					batch.WriteString(encode("GET", fmt.Sprintf("bench:%d", i)))
				}
			}
			req := []byte(batch.String())
			rd := bufio.NewReader(conn)
			var sink strings.Builder
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i += 16 {
				if _, err := conn.Write(req); err != nil {
					b.Fatal(err)
				}
				for range 16 {
					sink.Reset()
					if err := readReply(rd, &sink); err != nil {
						b.Fatal(err)
					}
				}
			}
		})
	}
}
