package slots

import (
	"math/rand/v2"
	"strconv"
	"testing"
)

func TestChecksumMatchesReference(t *testing.T) {
	if got := checksum("123456789"); got != 0x31C3 {
		t.Fatalf("check value: got %#04x, want 0x31c3", got)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	buf := make([]byte, 600)
	for n := 0; n <= len(buf); n++ {
		for range 8 {
			for i := range buf[:n] {
				buf[i] = byte(rng.Uint32())
			}
			if got, want := checksum(buf[:n]), referenceChecksum(buf[:n]); got != want {
				t.Fatalf("len %d: checksum %#04x, reference %#04x (% x)", n, got, want, buf[:n])
			}
			if got, want := checksum(string(buf[:n])), referenceChecksum(buf[:n]); got != want {
				t.Fatalf("len %d string: checksum %#04x, reference %#04x", n, got, want)
			}
		}
	}
}

func TestChecksumZeroAllocs(t *testing.T) {
	key := []byte("{user1000}.following-and-some-more-bytes-to-cross-16")
	s := string(key)
	if n := testing.AllocsPerRun(100, func() { _ = Of(key); _ = Of(s) }); n != 0 {
		t.Fatalf("Of allocates %v times per call", n)
	}
}

var sinkSlot Slot

// BenchmarkSlot compares the byte-at-a-time reference with the slicing-by-16
// checksum on keys without a hash tag, so the whole key is hashed.
func BenchmarkSlot(b *testing.B) {
	impls := []struct {
		name string
		fn   func([]byte) Slot
	}{
		{"reference", func(k []byte) Slot { return Slot(referenceChecksum(HashTag(k)) & (Count - 1)) }},
		{"fast", Of[[]byte]},
	}
	for _, impl := range impls {
		b.Run(impl.name, func(b *testing.B) {
			for _, size := range []int{8, 16, 64, 256, 4096} {
				key := make([]byte, size)
				for i := range key {
					key[i] = 'a' + byte(i%26) // no '{', so HashTag returns the whole key
				}
				b.Run(strconv.Itoa(size), func(b *testing.B) {
					b.ReportAllocs()
					b.SetBytes(int64(size))
					var s Slot
					for b.Loop() {
						s ^= impl.fn(key)
					}
					sinkSlot = s
				})
			}
		})
	}
}
