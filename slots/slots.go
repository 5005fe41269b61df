package slots

// Count is the number of hash slots in a Redis Cluster.
const Count = 16384

// Slot is a hash slot, 0 to Count-1.
type Slot uint16

// Of returns the hash slot of key: CRC16-XMODEM of the key's hash tag (or of
// the whole key when it has none), modulo Count. The empty key is slot 0.
func Of[K ~string | ~[]byte](key K) Slot {
	return Slot(checksum(HashTag(key)) & (Count - 1))
}

// HashTag returns the part of key that Redis hashes: the bytes between the
// first '{' and the first '}' after it, unless that tag is empty ("{}"), in
// which case the whole key is hashed. Redis does not look for a later tag
// after an empty one, so neither do we.
func HashTag[K ~string | ~[]byte](key K) K {
	for i := 0; i < len(key); i++ {
		if key[i] != '{' {
			continue
		}
		for j := i + 1; j < len(key); j++ {
			if key[j] == '}' {
				if j == i+1 {
					return key
				}
				return key[i+1 : j]
			}
		}
		return key
	}
	return key
}
