package respw

import "strconv"

// Simple appends a simple string: +s.
func Simple(b []byte, s string) []byte { return line(append(b, '+'), s) }

// Error appends an error reply: -s, s starting with its code ("ERR ...").
func Error(b []byte, s string) []byte { return line(append(b, '-'), s) }

// Int appends an integer: :n.
func Int(b []byte, n int64) []byte {
	b = strconv.AppendInt(append(b, ':'), n, 10)
	return append(b, '\r', '\n')
}

// Header appends an aggregate's or a bulk's header: typ followed by n
// ("*3", "%2", "$5"), or a RESP2 null ("$-1", "*-1") for n = -1.
func Header(b []byte, typ byte, n int) []byte {
	b = append(b, typ)
	b = strconv.AppendInt(b, int64(n), 10)
	return append(b, '\r', '\n')
}

// Bulk appends a bulk string: $len, then s.
func Bulk[T string | []byte](b []byte, s T) []byte {
	return line(Header(b, '$', len(s)), s)
}

func line[T string | []byte](b []byte, s T) []byte {
	b = append(b, s...)
	return append(b, '\r', '\n')
}
