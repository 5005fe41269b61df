// Package respw appends RESP replies to a byte slice.
//
// The proxy (answering its clients) and clustertest (its in-process nodes)
// both write replies the way redis-server does; this package is the one
// place that spells out the wire form, so the two cannot drift apart. The
// functions take and return the slice, like strconv's Append functions, so
// a caller builds a whole batch of replies in one buffer.
package respw
