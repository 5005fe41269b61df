// Package replyconv reads strings and integers out of decoded RESP replies.
//
// The reply parsers of slots, topology, topology/sentinel and
// topology/roleprobe take replies from a decoder they do not control, and
// decoders differ: a bulk string may arrive as string or []byte, an integer
// as int64, int or (from some RESP2 decoders) decimal text. This package is
// the one place that accepts all of those, so every parser treats the same
// reply the same way.
package replyconv
