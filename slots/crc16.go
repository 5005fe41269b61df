package slots

// The byte-at-a-time loop (referenceChecksum) is one long dependency chain:
// every table lookup needs the previous CRC. Slicing-by-16 breaks the chain:
// CRC-16/XMODEM is linear and unreflected, so the CRC of a 16-byte block is
// the XOR of independent per-byte lookups, crcTables[k][x] being the CRC of
// byte x followed by k zero bytes. The incoming CRC only disturbs the block's
// first two bytes. The CPU can then run the 16 lookups in parallel.

// crcTables[0] is the classic table; crcTables[k] shifts it by k zero bytes.
// 16*256*2 = 8 KiB, small enough to stay in L1.
var crcTables = func() (t [16][256]uint16) {
	t[0] = referenceTable
	for k := 1; k < len(t); k++ {
		for x := range t[k] {
			prev := t[k-1][x]
			t[k][x] = prev<<8 ^ t[0][prev>>8]
		}
	}
	return t
}()

// checksum is CRC-16/XMODEM (poly 0x1021, init 0, no reflection).
// It must equal referenceChecksum for every input (FuzzSlot checks this).
func checksum[K ~string | ~[]byte](b K) uint16 {
	var crc uint16
	for len(b) >= 16 {
		_ = b[15] // one bounds check for the whole block
		crc = crcTables[15][b[0]^byte(crc>>8)] ^
			crcTables[14][b[1]^byte(crc)] ^
			crcTables[13][b[2]] ^
			crcTables[12][b[3]] ^
			crcTables[11][b[4]] ^
			crcTables[10][b[5]] ^
			crcTables[9][b[6]] ^
			crcTables[8][b[7]] ^
			crcTables[7][b[8]] ^
			crcTables[6][b[9]] ^
			crcTables[5][b[10]] ^
			crcTables[4][b[11]] ^
			crcTables[3][b[12]] ^
			crcTables[2][b[13]] ^
			crcTables[1][b[14]] ^
			crcTables[0][b[15]]
		b = b[16:]
	}
	if len(b) >= 8 {
		_ = b[7]
		crc = crcTables[7][b[0]^byte(crc>>8)] ^
			crcTables[6][b[1]^byte(crc)] ^
			crcTables[5][b[2]] ^
			crcTables[4][b[3]] ^
			crcTables[3][b[4]] ^
			crcTables[2][b[5]] ^
			crcTables[1][b[6]] ^
			crcTables[0][b[7]]
		b = b[8:]
	}
	if len(b) >= 4 {
		_ = b[3]
		crc = crcTables[3][b[0]^byte(crc>>8)] ^
			crcTables[2][b[1]^byte(crc)] ^
			crcTables[1][b[2]] ^
			crcTables[0][b[3]]
		b = b[4:]
	}
	for i := 0; i < len(b); i++ {
		crc = crc<<8 ^ crcTables[0][byte(crc>>8)^b[i]]
	}
	return crc
}
