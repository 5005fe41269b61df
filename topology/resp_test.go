package topology

import (
	"bytes"
	"errors"
	"strconv"
)

// decodeRESP turns raw RESP2/RESP3 bytes (as captured from real servers in
// testdata/topology/*.resp*) into the reply tree the parsers take: []any,
// string, int64, nil, and map[string]any for RESP3 maps. It is test-only
// and defensive (depth and size limits) because the fuzz targets feed it
// arbitrary bytes.
func decodeRESP(b []byte) (any, error) {
	d := respDecoder{b: b}
	return d.value(0)
}

var errRESP = errors.New("bad RESP")

type respDecoder struct {
	b []byte
	i int
}

func (d *respDecoder) line() (byte, string, error) {
	if d.i >= len(d.b) {
		return 0, "", errRESP
	}
	j := bytes.Index(d.b[d.i:], []byte("\r\n"))
	if j < 1 {
		return 0, "", errRESP
	}
	t, s := d.b[d.i], string(d.b[d.i+1:d.i+j])
	d.i += j + 2
	return t, s, nil
}

func (d *respDecoder) value(depth int) (any, error) {
	if depth > 16 {
		return nil, errRESP
	}
	t, s, err := d.line()
	if err != nil {
		return nil, err
	}
	switch t {
	case '+', '(', ',':
		return s, nil
	case '-':
		return nil, errors.New(s)
	case ':':
		return strconv.ParseInt(s, 10, 64)
	case '#':
		return s == "t", nil
	case '_':
		return nil, nil
	case '$', '=', '!':
		n, err := strconv.Atoi(s)
		if err != nil || n < -1 {
			return nil, errRESP
		}
		if n == -1 {
			return nil, nil
		}
		if d.i+n+2 > len(d.b) || n > len(d.b) {
			return nil, errRESP
		}
		v := string(d.b[d.i : d.i+n])
		d.i += n + 2
		return v, nil
	case '*', '~', '>', '%':
		n, err := strconv.Atoi(s)
		if err != nil || n < -1 {
			return nil, errRESP
		}
		if n == -1 {
			return nil, nil
		}
		if t == '%' {
			return d.mapValue(n, depth)
		}
		// Every element takes at least 3 bytes: refuse counts the input
		// cannot hold before allocating for them.
		if n > (len(d.b)-d.i)/3 {
			return nil, errRESP
		}
		out := make([]any, n)
		for k := range out {
			if out[k], err = d.value(depth + 1); err != nil {
				return nil, err
			}
		}
		return out, nil
	}
	return nil, errRESP
}

func (d *respDecoder) mapValue(n, depth int) (any, error) {
	if n > (len(d.b)-d.i)/6 {
		return nil, errRESP
	}
	m := make(map[string]any, n)
	for k := 0; k < n; k++ {
		key, err := d.value(depth + 1)
		if err != nil {
			return nil, err
		}
		ks, ok := key.(string)
		if !ok {
			return nil, errRESP
		}
		if m[ks], err = d.value(depth + 1); err != nil {
			return nil, err
		}
	}
	return m, nil
}
