package slots

import (
	"strings"
	"unsafe"
)

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
	s := asString(key)
	i := strings.IndexByte(s, '{')
	if i < 0 {
		return key
	}
	j := strings.IndexByte(s[i+1:], '}')
	if j <= 0 { // no '}' at all, or the empty tag "{}"
		return key
	}
	return key[i+1 : i+1+j]
}

// asString views key as a string without copying, so HashTag can use the
// vectorised strings.IndexByte for both strings and byte slices. A slice
// header starts with the same (pointer, length) pair as a string header, and
// the view never outlives the call, so nothing can observe a mutation.
func asString[K ~string | ~[]byte](key K) string {
	return *(*string)(unsafe.Pointer(&key))
}
