// Package fakeresp is a hand-written RESP server for the hostile cases that
// a real redis-server never produces: a seed that names a stranger as the
// owner of every slot, a redirect for the wrong slot, a reply too many or
// too few. A Handler decides, request by request, what bytes go back; the
// server counts every command it received so a test can assert that
// nothing reached an address it should not have.
//
// Everything else in the suite runs against real servers (internal/redistest);
// use this only where the behaviour under test is a broken or lying server.
package fakeresp

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"sync"
	"testing"
)

// Handler returns the raw bytes to send for one request (nil: send
// nothing). conn numbers the connections from 0 in accept order.
type Handler func(conn int, args []string) []byte

// Server is a listening fake. Addr is its "127.0.0.1:port".
type Server struct {
	Addr string

	ln      net.Listener
	handler Handler
	wg      sync.WaitGroup

	mu     sync.Mutex
	counts map[string]int // upper-case command name -> requests
	conns  int
	open   []net.Conn
}

// Start listens on 127.0.0.1 (a free port) and serves until the test ends.
func Start(t testing.TB, h Handler) *Server {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &Server{Addr: ln.Addr().String(), ln: ln, handler: h, counts: map[string]int{}}
	s.wg.Add(1)
	go s.serve()
	t.Cleanup(s.Close)
	return s
}

// Close stops the server and closes its connections.
func (s *Server) Close() {
	_ = s.ln.Close()
	s.mu.Lock()
	for _, c := range s.open {
		_ = c.Close()
	}
	s.mu.Unlock()
	s.wg.Wait()
}

// Count is how many requests named cmd (any case) arrived; "" counts all.
func (s *Server) Count(cmd string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if cmd == "" {
		n := 0
		for _, v := range s.counts {
			n += v
		}
		return n
	}
	return s.counts[strings.ToUpper(cmd)]
}

// Conns is how many connections were accepted.
func (s *Server) Conns() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.conns
}

func (s *Server) serve() {
	defer s.wg.Done()
	for {
		c, err := s.ln.Accept()
		if err != nil {
			return
		}
		s.mu.Lock()
		id := s.conns
		s.conns++
		s.open = append(s.open, c)
		s.mu.Unlock()
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			defer c.Close()
			r := bufio.NewReader(c)
			for {
				args, err := ReadRequest(r)
				if err != nil {
					return
				}
				if len(args) > 0 {
					s.mu.Lock()
					s.counts[strings.ToUpper(args[0])]++
					s.mu.Unlock()
				}
				if out := s.handler(id, args); out != nil {
					if _, err := c.Write(out); err != nil {
						return
					}
				}
			}
		}()
	}
}

// ReadRequest reads one RESP array of bulk strings.
func ReadRequest(r *bufio.Reader) ([]string, error) {
	line, err := r.ReadString('\n')
	if err != nil {
		return nil, err
	}
	if len(line) < 3 || line[0] != '*' {
		return nil, fmt.Errorf("fakeresp: bad request header %q", line)
	}
	n, err := strconv.Atoi(strings.TrimSuffix(line[1:], "\r\n"))
	if err != nil || n < 0 {
		return nil, fmt.Errorf("fakeresp: bad array length %q", line)
	}
	args := make([]string, 0, n)
	for range n {
		h, err := r.ReadString('\n')
		if err != nil {
			return nil, err
		}
		l, err := strconv.Atoi(strings.TrimSuffix(strings.TrimPrefix(h, "$"), "\r\n"))
		if err != nil || l < 0 {
			return nil, fmt.Errorf("fakeresp: bad bulk header %q", h)
		}
		b := make([]byte, l+2)
		if _, err := io.ReadFull(r, b); err != nil {
			return nil, err
		}
		args = append(args, string(b[:l]))
	}
	return args, nil
}

// Bulk, Simple, Int and Err encode one reply.
func Bulk(s string) []byte   { return []byte("$" + strconv.Itoa(len(s)) + "\r\n" + s + "\r\n") }
func Simple(s string) []byte { return []byte("+" + s + "\r\n") }
func Int(n int64) []byte     { return []byte(":" + strconv.FormatInt(n, 10) + "\r\n") }
func Err(s string) []byte    { return []byte("-" + s + "\r\n") }
