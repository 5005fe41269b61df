package client

import (
	"context"
	"testing"
)

// BenchmarkMGet/100 is one MGET of 100 keys over every slot range, split by
// slot; ns/op is per call, as BenchmarkPipeline/100 (the same keys as GETs)
// measures the floor.
//
//	go test -run '^$' -bench 'BenchmarkMGet|BenchmarkPipeline' -benchmem ./client/
func BenchmarkMGet(b *testing.B) {
	c, keys := benchCluster(b)
	ctx := context.Background()
	b.Run("100", func(b *testing.B) {
		b.ReportAllocs()
		args := make([]any, 101)
		args[0] = "MGET"
		i := 0
		for b.Loop() {
			for j := range 100 {
				args[j+1] = keys[(i*100+j*37)&1023]
			}
			res, err := c.Do(ctx, args...).Results()
			if err != nil || len(res) != 100 {
				b.Fatalf("%d results, %v", len(res), err)
			}
			i++
		}
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/100, "ns/key")
	})
}
