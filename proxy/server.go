package proxy

import (
	"context"
	"errors"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/slotrouter/slotrouter/client"
)

// ErrServerClosed is returned by Serve after Shutdown or Close, as
// net/http's is.
var ErrServerClosed = errors.New("proxy: server closed")

// Server serves sessions over one client.Client. Each connection, accepted
// by Serve or made by DialContext, is a session with its own protocol
// version, name, transaction and subscriptions; one goroutine runs it.
type Server struct {
	c    *client.Client
	opts Options
	// The seams to the client's transaction and pub/sub APIs (tx.go,
	// pubsub.go).
	tx  txBackend
	sub subBackend

	nextID   atomic.Int64
	draining atomic.Bool

	mu        sync.Mutex
	sessions  map[*session]struct{}
	listeners map[net.Listener]struct{}
	wg        sync.WaitGroup
}

// New returns a Server carrying every session's commands through c. The
// Server does not own c: close c after the Server.
func New(c *client.Client, opts Options) *Server {
	opts.setDefaults()
	return &Server{
		c:         c,
		opts:      opts,
		tx:        clientTx{c},
		sub:       clientSub{c: c, log: opts.Logger},
		sessions:  make(map[*session]struct{}),
		listeners: make(map[net.Listener]struct{}),
	}
}

// Serve accepts connections on l until l fails or the server is shut
// down; see Server.Serve.
func Serve(l net.Listener, c *client.Client, opts Options) error {
	return New(c, opts).Serve(l)
}

// Serve accepts connections on l, each a session, until Shutdown or Close
// (then it returns ErrServerClosed) or l fails. l is closed on return.
func (s *Server) Serve(l net.Listener) error {
	s.mu.Lock()
	if s.draining.Load() {
		s.mu.Unlock()
		l.Close()
		return ErrServerClosed
	}
	s.listeners[l] = struct{}{}
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.listeners, l)
		s.mu.Unlock()
		l.Close()
	}()
	var backoff time.Duration
	for {
		conn, err := l.Accept()
		if err != nil {
			if s.draining.Load() {
				return ErrServerClosed
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				// EMFILE and friends: wait, as net/http does, rather than
				// spin or give up on every other session.
				backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
				s.opts.Logger.Warn("proxy: accept failed", "err", err, "retry_in", backoff)
				time.Sleep(backoff)
				continue
			}
			return err
		}
		backoff = 0
		s.start(conn)
	}
}

// DialContext is a dialer for go-redis (redis.Options.Dialer) and other
// Go clients: it returns one end of an in-memory connection whose other end
// is a session of s. No socket is opened; the session is one goroutine,
// as for an accepted connection, and a command costs no goroutine at all.
func (s *Server) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if s.draining.Load() {
		return nil, ErrServerClosed
	}
	local, remote := memPipe(addr)
	s.start(remote)
	return local, nil
}

// start runs a session for conn, or refuses it over MaxClients.
func (s *Server) start(conn net.Conn) {
	s.mu.Lock()
	if s.draining.Load() {
		s.mu.Unlock()
		conn.Close()
		return
	}
	if len(s.sessions) >= s.opts.MaxClients {
		s.mu.Unlock()
		s.opts.Logger.Warn("proxy: max clients reached", "max", s.opts.MaxClients, "remote", conn.RemoteAddr().String())
		// Told why, as redis-server tells it; the write cannot hold the
		// accept loop for long.
		conn.SetWriteDeadline(time.Now().Add(100 * time.Millisecond))
		conn.Write([]byte("-ERR max number of clients reached\r\n"))
		conn.Close()
		return
	}
	ss := newSession(s, conn)
	s.sessions[ss] = struct{}{}
	s.wg.Add(1)
	s.mu.Unlock()
	go func() {
		defer s.wg.Done()
		ss.run()
		s.mu.Lock()
		delete(s.sessions, ss)
		s.mu.Unlock()
	}()
}

// Sessions is the number of sessions open now.
func (s *Server) Sessions() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.sessions)
}

// Shutdown stops accepting, lets every session finish the commands it has
// already read (their replies are written), then closes it; sessions idle
// in a read close at once. It returns when all sessions are gone, or when
// ctx ends, closing the rest (blocked BLPOPs, subscribers) by force.
func (s *Server) Shutdown(ctx context.Context) error {
	s.stop((*session).drain)
	done := make(chan struct{})
	go func() {
		s.wg.Wait()
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		s.Close()
		<-done
		return ctx.Err()
	}
}

// Close closes the listeners and every session at once.
func (s *Server) Close() error {
	s.stop((*session).abort)
	s.wg.Wait()
	return nil
}

// stop closes the listeners, refuses new sessions and applies end to the
// open ones.
func (s *Server) stop(end func(*session)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.draining.Store(true)
	for l := range s.listeners {
		l.Close()
	}
	for ss := range s.sessions {
		end(ss)
	}
}
