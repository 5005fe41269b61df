// Package slots maps Redis keys, and whole commands, to Redis Cluster hash
// slots.
//
// A key's slot is CRC16-XMODEM of its hash tag modulo 16384, exactly as
// keyHashSlot() in the Redis server computes it. Every routing decision in
// slotrouter starts here, so the function is fast (no allocation, several
// bytes per step) and checked byte for byte against CLUSTER KEYSLOT of a real
// server.
package slots
