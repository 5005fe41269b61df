package dnstest

import (
	"errors"
	"net"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/net/dns/dnsmessage"
)

// DefaultTTL is the TTL put on answers until SetTTL says otherwise. It is short so that tests
// exercising re-resolution finish quickly.
const DefaultTTL = time.Second

// Zone maps a name ("node1.cluster.test", trailing dot optional, case-insensitive) to its IPv4
// addresses.
type Zone map[string][]string

// Server is a tiny authoritative DNS server for one test. It answers A queries from its zone,
// NOERROR with no answer for other types of known names (so the Go resolver's parallel AAAA
// query does not fail the lookup), and NXDOMAIN for unknown names.
type Server struct {
	// Addr is "127.0.0.1:port"; the same port serves UDP and, when TCP is non-empty, TCP.
	Addr string
	// TCP is Addr when the TCP listener could be bound on the same port, else "".
	TCP string

	udp net.PacketConn
	tcp net.Listener
	wg  sync.WaitGroup

	mu      sync.Mutex
	records map[string][]netip.Addr
	ttl     time.Duration
	queries map[string]int
}

// Start serves zone on 127.0.0.1 until the test ends. Invalid addresses in zone fail the test.
func Start(t testing.TB, zone Zone) *Server {
	t.Helper()
	s := &Server{records: map[string][]netip.Addr{}, ttl: DefaultTTL, queries: map[string]int{}}
	for name, ips := range zone {
		if err := s.set(name, ips); err != nil {
			t.Fatalf("dnstest: %v", err)
		}
	}
	// A UDP port that happens to be busy on TCP is retried a few times, then TCP is given up:
	// the Go resolver only falls back to TCP on truncation, which these tiny answers never need.
	for attempt := 0; attempt < 5; attempt++ {
		pc, err := net.ListenPacket("udp4", "127.0.0.1:0")
		if err != nil {
			t.Fatalf("dnstest: listen udp: %v", err)
		}
		ln, err := net.Listen("tcp4", pc.LocalAddr().String())
		if err != nil && attempt < 4 {
			pc.Close()
			continue
		}
		s.udp, s.Addr = pc, pc.LocalAddr().String()
		if err == nil {
			s.tcp, s.TCP = ln, ln.Addr().String()
		}
		break
	}
	s.wg.Add(1)
	go s.serveUDP()
	if s.tcp != nil {
		s.wg.Add(1)
		go s.serveTCP()
	}
	t.Cleanup(s.close)
	return s
}

func (s *Server) close() {
	s.udp.Close()
	if s.tcp != nil {
		s.tcp.Close()
	}
	s.wg.Wait()
}

// Set re-points name at ips (none: the name exists with no addresses). It takes effect for the
// next query; resolvers caching the old answer see it after the TTL.
func (s *Server) Set(name string, ips ...string) error {
	return s.set(name, ips)
}

// Delete removes name, so that it gets NXDOMAIN.
func (s *Server) Delete(name string) {
	s.mu.Lock()
	delete(s.records, canonical(name))
	s.mu.Unlock()
}

// SetTTL changes the TTL of every answer from now on.
func (s *Server) SetTTL(d time.Duration) {
	s.mu.Lock()
	s.ttl = d
	s.mu.Unlock()
}

// Queries returns how many A questions for name were answered. AAAA and other types are not
// counted, so a LookupHost that goes to the server adds exactly one.
func (s *Server) Queries(name string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.queries[canonical(name)]
}

// ErrBadAddress is returned (wrapped) by Set for an address that is not IPv4.
var ErrBadAddress = errors.New("dnstest: not an IPv4 address")

func (s *Server) set(name string, ips []string) error {
	addrs := make([]netip.Addr, 0, len(ips))
	for _, ip := range ips {
		a, err := netip.ParseAddr(ip)
		if err != nil || !a.Is4() {
			return errors.Join(ErrBadAddress, errors.New(name+": "+ip))
		}
		addrs = append(addrs, a)
	}
	s.mu.Lock()
	s.records[canonical(name)] = addrs
	s.mu.Unlock()
	return nil
}

func canonical(name string) string {
	name = strings.ToLower(name)
	if !strings.HasSuffix(name, ".") {
		name += "."
	}
	return name
}

func (s *Server) serveUDP() {
	defer s.wg.Done()
	buf := make([]byte, 1500)
	for {
		n, from, err := s.udp.ReadFrom(buf)
		if err != nil {
			return // closed
		}
		if resp := s.answer(buf[:n]); resp != nil {
			s.udp.WriteTo(resp, from)
		}
	}
}

func (s *Server) serveTCP() {
	defer s.wg.Done()
	var conns sync.WaitGroup
	defer conns.Wait()
	for {
		c, err := s.tcp.Accept()
		if err != nil {
			return
		}
		conns.Add(1)
		go func() {
			defer conns.Done()
			defer c.Close()
			c.SetDeadline(time.Now().Add(5 * time.Second))
			// TCP DNS frames each message with a two-byte length.
			for {
				var l [2]byte
				if _, err := readFull(c, l[:]); err != nil {
					return
				}
				msg := make([]byte, int(l[0])<<8|int(l[1]))
				if _, err := readFull(c, msg); err != nil {
					return
				}
				resp := s.answer(msg)
				if resp == nil {
					return
				}
				out := append([]byte{byte(len(resp) >> 8), byte(len(resp))}, resp...)
				if _, err := c.Write(out); err != nil {
					return
				}
			}
		}()
	}
}

func readFull(c net.Conn, b []byte) (int, error) {
	n := 0
	for n < len(b) {
		m, err := c.Read(b[n:])
		n += m
		if err != nil {
			return n, err
		}
	}
	return n, nil
}

// answer builds the reply to one query message; nil drops a message that cannot be parsed.
func (s *Server) answer(req []byte) []byte {
	var p dnsmessage.Parser
	h, err := p.Start(req)
	if err != nil {
		return nil
	}
	q, err := p.Question()
	if err != nil {
		return nil
	}
	// Authoritative and RecursionAvailable matter: the Go resolver treats an empty NOERROR
	// answer without them as a lame referral and fails the whole lookup.
	rh := dnsmessage.Header{ID: h.ID, Response: true, Authoritative: true,
		RecursionDesired: h.RecursionDesired, RecursionAvailable: true}
	name := canonical(q.Name.String())

	s.mu.Lock()
	addrs, known := s.records[name]
	addrs = append([]netip.Addr(nil), addrs...)
	ttl := s.ttl
	if known && q.Type == dnsmessage.TypeA {
		s.queries[name]++
	}
	s.mu.Unlock()

	if !known {
		rh.RCode = dnsmessage.RCodeNameError
	}
	b := dnsmessage.NewBuilder(nil, rh)
	b.EnableCompression()
	if b.StartQuestions() != nil || b.Question(q) != nil || b.StartAnswers() != nil {
		return nil
	}
	if known && q.Type == dnsmessage.TypeA && q.Class == dnsmessage.ClassINET {
		for _, a := range addrs {
			rr := dnsmessage.ResourceHeader{Name: q.Name, Type: dnsmessage.TypeA,
				Class: dnsmessage.ClassINET, TTL: uint32(ttl / time.Second)}
			if err := b.AResource(rr, dnsmessage.AResource{A: a.As4()}); err != nil {
				return nil
			}
		}
	}
	out, err := b.Finish()
	if err != nil {
		return nil
	}
	return out
}
