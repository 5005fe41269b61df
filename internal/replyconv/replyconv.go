package replyconv

import "strconv"

// String returns v as text when it is a string or []byte.
func String(v any) (string, bool) {
	switch s := v.(type) {
	case string:
		return s, true
	case []byte:
		return string(s), true
	}
	return "", false
}

// Int returns v as an integer when it is an int64, an int, or decimal text
// (string or []byte).
func Int(v any) (int64, bool) {
	switch n := v.(type) {
	case int64:
		return n, true
	case int:
		return int64(n), true
	}
	if s, ok := String(v); ok {
		n, err := strconv.ParseInt(s, 10, 64)
		return n, err == nil
	}
	return 0, false
}
