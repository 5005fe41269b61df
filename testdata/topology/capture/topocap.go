// topocap sends one command over raw TCP and writes the raw RESP reply bytes
// (CLUSTER NODES: the bulk string text) to stdout. It lives under testdata so
// the go tool ignores it; build it with "go run topocap.go".
// usage: topocap [-3] [-owners] addr args...
package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"time"
)

func readLine(r *bufio.Reader, w *bytes.Buffer) (byte, string) {
	line, err := r.ReadString('\n')
	if err != nil {
		panic(err)
	}
	w.WriteString(line)
	return line[0], line[1 : len(line)-2]
}

func readValue(r *bufio.Reader, w *bytes.Buffer) any {
	t, rest := readLine(r, w)
	switch t {
	case '+', '-', '(', ',':
		return rest
	case ':':
		n, _ := strconv.ParseInt(rest, 10, 64)
		return n
	case '#':
		return rest == "t"
	case '_':
		return nil
	case '$', '=', '!':
		n, _ := strconv.Atoi(rest)
		if n < 0 {
			return nil
		}
		b := make([]byte, n+2)
		if _, err := io.ReadFull(r, b); err != nil {
			panic(err)
		}
		w.Write(b)
		return string(b[:n])
	case '*', '~', '>':
		n, _ := strconv.Atoi(rest)
		if n < 0 {
			return nil
		}
		out := make([]any, n)
		for i := range out {
			out[i] = readValue(r, w)
		}
		return out
	case '%', '|':
		n, _ := strconv.Atoi(rest)
		out := make([]any, 0, 2*n)
		for i := 0; i < 2*n; i++ {
			out = append(out, readValue(r, w))
		}
		if t == '|' {
			return readValue(r, w)
		}
		return out
	}
	panic("unknown type " + string(t))
}

func main() {
	args := os.Args[1:]
	resp3, owners := false, false
	for len(args) > 0 && args[0][0] == '-' {
		switch args[0] {
		case "-3":
			resp3 = true
		case "-owners":
			owners = true
		}
		args = args[1:]
	}
	c, err := net.DialTimeout("tcp", args[0], 2*time.Second)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	c.SetDeadline(time.Now().Add(5 * time.Second))
	r := bufio.NewReader(c)
	send := func(a []string) {
		var b bytes.Buffer
		fmt.Fprintf(&b, "*%d\r\n", len(a))
		for _, s := range a {
			fmt.Fprintf(&b, "$%d\r\n%s\r\n", len(s), s)
		}
		c.Write(b.Bytes())
	}
	if resp3 {
		send([]string{"HELLO", "3"})
		readValue(r, &bytes.Buffer{})
	}
	if owners {
		send([]string{"CLUSTER", "SLOTS"})
		v := readValue(r, &bytes.Buffer{}).([]any)
		type own struct {
			Start int64  `json:"start"`
			End   int64  `json:"end"`
			Addr  string `json:"owner"`
			ID    string `json:"owner_id"`
		}
		var out []own
		for _, e := range v {
			e := e.([]any)
			m := e[2].([]any)
			host, _ := m[0].(string)
			out = append(out, own{e[0].(int64), e[1].(int64), host + ":" + strconv.FormatInt(m[1].(int64), 10), m[2].(string)})
		}
		j, _ := json.MarshalIndent(out, "", "  ")
		os.Stdout.Write(j)
		return
	}
	send(args[1:])
	var w bytes.Buffer
	v := readValue(r, &w)
	if len(args) > 2 && args[1] == "CLUSTER" && args[2] == "NODES" {
		if s, ok := v.(string); ok {
			os.Stdout.WriteString(s)
			return
		}
	}
	os.Stdout.Write(w.Bytes())
}
