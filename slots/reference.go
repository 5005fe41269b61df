package slots

// referenceTable is the byte-at-a-time table that go-redis and rueidis use.
// It is kept as the test oracle and as the baseline in BenchmarkSlot.
var referenceTable = func() (t [256]uint16) {
	for i := range t {
		crc := uint16(i) << 8
		for range 8 {
			if crc&0x8000 != 0 {
				crc = crc<<1 ^ 0x1021
			} else {
				crc <<= 1
			}
		}
		t[i] = crc
	}
	return t
}()

func referenceChecksum[K ~string | ~[]byte](b K) uint16 {
	var crc uint16
	for i := 0; i < len(b); i++ {
		crc = crc<<8 ^ referenceTable[byte(crc>>8)^b[i]]
	}
	return crc
}
