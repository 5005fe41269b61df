package clustertest

import (
	"bufio"
	"net"
	"testing"
)

// BenchmarkRoundTrip measures one SET + GET round trip per op on one
// connection: the cost a client benchmark pays per command.
func BenchmarkRoundTrip(b *testing.B) {
	c := New(b, Options{Masters: 1, Replicas: -1})
	r := dialRaw(b, c.Addrs()[0])
	set, get := encode("SET", "k", "v"), encode("GET", "k")
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		_, _ = r.nc.Write(set)
		if _, err := readRaw(r.br); err != nil {
			b.Fatal(err)
		}
		_, _ = r.nc.Write(get)
		if _, err := readRaw(r.br); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkPipelineParallel runs pipelines of 64 SETs from parallel
// connections against a master that replicates to one replica.
func BenchmarkPipelineParallel(b *testing.B) {
	c := New(b, Options{Masters: 1, Replicas: 1})
	addr := c.Addrs()[0]
	var batch []byte
	for i := 0; i < 64; i++ {
		batch = append(batch, encode("SET", "key", "value-of-some-length")...)
	}
	b.SetBytes(int64(len(batch)))
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		nc, err := net.Dial("tcp", addr)
		if err != nil {
			b.Error(err)
			return
		}
		defer nc.Close()
		br := bufio.NewReader(nc)
		for pb.Next() {
			if _, err := nc.Write(batch); err != nil {
				b.Error(err)
				return
			}
			for i := 0; i < 64; i++ {
				if _, err := readRaw(br); err != nil {
					b.Error(err)
					return
				}
			}
		}
	})
}
