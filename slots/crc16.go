package slots

// checksum is CRC-16/XMODEM (poly 0x1021, init 0, no reflection).
// TODO(slots helper): replace with the fast implementation; referenceChecksum stays as the oracle.
func checksum[K ~string | ~[]byte](b K) uint16 {
	return referenceChecksum(b)
}
