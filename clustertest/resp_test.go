package clustertest

import (
	"bufio"
	"bytes"
	"fmt"
	"sort"
	"strconv"
)

// rv is a decoded RESP2 reply, kept typed so it can be re-encoded after
// normalisation and compared byte for byte.
type rv struct {
	typ  byte // + - : $ *
	s    string
	n    int64
	null bool
	arr  []*rv
}

func parseRV(b []byte) (*rv, error) {
	br := bufio.NewReader(bytes.NewReader(b))
	v, err := readRV(br)
	if err != nil {
		return nil, err
	}
	if br.Buffered() != 0 {
		return nil, fmt.Errorf("%d trailing bytes", br.Buffered())
	}
	return v, nil
}

func readRV(br *bufio.Reader) (*rv, error) {
	line, err := br.ReadString('\n')
	if err != nil {
		return nil, err
	}
	if len(line) < 3 || line[len(line)-2] != '\r' {
		return nil, fmt.Errorf("bad line %q", line)
	}
	body := line[1 : len(line)-2]
	v := &rv{typ: line[0]}
	switch v.typ {
	case '+', '-':
		v.s = body
	case ':':
		v.n, err = strconv.ParseInt(body, 10, 64)
	case '$':
		var n int
		if n, err = strconv.Atoi(body); err != nil || n < 0 {
			v.null = n < 0
			return v, err
		}
		buf := make([]byte, n+2)
		if _, err = ioReadFull(br, buf); err == nil {
			v.s = string(buf[:n])
		}
	case '*':
		var n int
		if n, err = strconv.Atoi(body); err != nil || n < 0 {
			v.null = n < 0
			return v, err
		}
		for i := 0; i < n; i++ {
			sub, err := readRV(br)
			if err != nil {
				return nil, err
			}
			v.arr = append(v.arr, sub)
		}
	default:
		return nil, fmt.Errorf("bad type %q", line)
	}
	return v, err
}

func (v *rv) encode(b *bytes.Buffer) {
	switch v.typ {
	case '+', '-':
		b.WriteString(string(v.typ) + v.s + "\r\n")
	case ':':
		fmt.Fprintf(b, ":%d\r\n", v.n)
	case '$':
		if v.null {
			b.WriteString("$-1\r\n")
			return
		}
		fmt.Fprintf(b, "$%d\r\n%s\r\n", len(v.s), v.s)
	case '*':
		if v.null {
			b.WriteString("*-1\r\n")
			return
		}
		fmt.Fprintf(b, "*%d\r\n", len(v.arr))
		for _, e := range v.arr {
			e.encode(b)
		}
	}
}

func (v *rv) String() string {
	var b bytes.Buffer
	v.encode(&b)
	return b.String()
}

// walk applies f to every node, depth first.
func (v *rv) walk(f func(*rv)) {
	f(v)
	for _, e := range v.arr {
		e.walk(f)
	}
}

func (v *rv) sortArray() {
	sort.Slice(v.arr, func(i, j int) bool { return v.arr[i].String() < v.arr[j].String() })
}
