package proxy

import (
	"context"
	"sort"
)

// subKind is the flavour of a subscription.
type subKind uint8

const (
	subChannel subKind = iota // SUBSCRIBE
	subPattern                // PSUBSCRIBE
	subShard                  // SSUBSCRIBE
)

// subBackend is the seam between a session's subscribe mode and the
// client's subscriptions, which keep receiving across failovers and
// resharding. The session owns the protocol (confirmations and their
// counts, UNSUBSCRIBE of everything, the commands allowed in RESP2
// subscribe mode, RESP2 arrays or RESP3 pushes); the backend only delivers
// messages. Its production form is clientSub, a thin adapter over
// client.Client's Subscribe, PSubscribe and SSubscribe (pubsub_client.go).
type subBackend interface {
	Subscribe(ctx context.Context, kind subKind, names ...string) (subscription, error)
}

// subscription is one kind's subscription of one session.
type subscription interface {
	Add(ctx context.Context, names ...string) error
	Remove(ctx context.Context, names ...string) error
	// Receive waits for the next message; it fails once Close was called.
	Receive(ctx context.Context) (message, error)
	Close() error
}

// message is one published message. Pattern is set for PSUBSCRIBE
// deliveries only.
type message struct {
	Channel, Pattern, Payload string
}

// subState is a session's subscriptions, one per kind.
type subState struct {
	kinds [3]*pump
}

// pump delivers one subscription's messages to the session's client. It
// is the session's second goroutine, alive while the subscription is.
type pump struct {
	sub    subscription
	names  map[string]struct{}
	closed bool // under wmu: messages received after it are dropped
	done   chan struct{}
}

func (st *subState) active() bool {
	return st.kinds[0] != nil || st.kinds[1] != nil || st.kinds[2] != nil
}

// count is what a confirmation reports: channels and patterns together,
// shard channels apart, as redis-server 7.0 counts them.
func (st *subState) count(k subKind) int64 {
	n := func(k subKind) int64 {
		if p := st.kinds[k]; p != nil {
			return int64(len(p.names))
		}
		return 0
	}
	if k == subShard {
		return n(subShard)
	}
	return n(subChannel) + n(subPattern)
}

// subscribedRESP2 is RESP2's subscribe mode, where only subscription
// commands, PING, QUIT and RESET are allowed. RESP3 clients may send
// anything: their messages are pushes, told apart from replies by type.
func (s *session) subscribedRESP2() bool { return !s.w.resp3 && s.sub.active() }

// kindOf reads a (un)subscribe command's kind, and its lower-case name for
// the confirmations.
func kindOf(name []byte) (subKind, string) {
	var buf [12]byte
	word := string(lowerName(buf[:0], name))
	switch word {
	case "psubscribe", "punsubscribe":
		return subPattern, word
	case "ssubscribe", "sunsubscribe":
		return subShard, word
	}
	return subChannel, word
}

func (s *session) subscribe(args [][]byte) {
	if len(args) < 2 {
		s.arityError(args)
		return
	}
	k, word := kindOf(args[0])
	names := make([]string, len(args)-1)
	for i, a := range args[1:] {
		names[i] = string(a)
	}
	// Under wmu until the confirmations are written: a message of a new
	// channel must not reach the client before its confirmation.
	s.wmu.Lock()
	defer s.wmu.Unlock()
	p := s.sub.kinds[k]
	if p == nil {
		sub, err := s.srv.sub.Subscribe(s.ctx, k, names...)
		if err != nil {
			s.w.errorReply(err)
			return
		}
		p = &pump{sub: sub, names: make(map[string]struct{}), done: make(chan struct{})}
		s.sub.kinds[k] = p
		go s.pump(p, k)
	} else if err := p.sub.Add(s.ctx, names...); err != nil {
		s.w.errorReply(err)
		return
	}
	for _, n := range names {
		p.names[n] = struct{}{}
		s.w.push(3)
		s.w.bulk(word)
		s.w.bulk(n)
		s.w.int(s.sub.count(k))
	}
	if err := s.flushLocked(); err != nil {
		s.closing = true
	}
}

func (s *session) unsubscribe(args [][]byte) {
	k, word := kindOf(args[0])
	p := s.sub.kinds[k]
	var names []string
	for _, a := range args[1:] {
		names = append(names, string(a))
	}
	if len(args) == 1 && p != nil {
		for n := range p.names {
			names = append(names, n)
		}
		sort.Strings(names)
	}
	s.wmu.Lock()
	if p != nil {
		var drop []string
		for _, n := range names {
			if _, ok := p.names[n]; ok {
				drop = append(drop, n)
			}
		}
		if len(drop) > 0 {
			if err := p.sub.Remove(s.ctx, drop...); err != nil {
				// The session is off these channels either way: messages
				// still arriving for them are not forwarded.
				s.srv.opts.Logger.Info("proxy: unsubscribe failed", "id", s.id, "err", err)
			}
		}
	}
	if len(names) == 0 {
		s.w.push(3)
		s.w.bulk(word)
		s.w.null()
		s.w.int(s.sub.count(k))
	}
	for _, n := range names {
		if p != nil {
			delete(p.names, n)
		}
		s.w.push(3)
		s.w.bulk(word)
		s.w.bulk(n)
		s.w.int(s.sub.count(k))
	}
	var ended *pump
	if p != nil && len(p.names) == 0 {
		p.closed = true
		s.sub.kinds[k] = nil
		ended = p
	}
	if err := s.flushLocked(); err != nil {
		s.closing = true
	}
	s.wmu.Unlock()
	if ended != nil {
		ended.sub.Close()
		<-ended.done
	}
}

// endSubscriptions closes every subscription and waits for its pump.
func (s *session) endSubscriptions() {
	s.wmu.Lock()
	ps := s.sub.kinds
	for i, p := range ps {
		if p != nil {
			p.closed = true
			s.sub.kinds[i] = nil
		}
	}
	s.wmu.Unlock()
	for _, p := range ps {
		if p != nil {
			p.sub.Close()
			<-p.done
		}
	}
}

// pump writes one subscription's messages as they arrive. A client that
// does not read them is disconnected after WriteTimeout, as redis-server's
// pubsub client-output-buffer-limit does; the subscription's own buffer
// is the client's to bound.
func (s *session) pump(p *pump, k subKind) {
	defer close(p.done)
	var w replyWriter
	for {
		m, err := p.sub.Receive(s.ctx)
		if err != nil {
			return
		}
		s.wmu.Lock()
		if p.closed {
			s.wmu.Unlock()
			return
		}
		w.resp3, w.b = s.w.resp3, w.b[:0]
		switch k {
		case subPattern:
			w.push(4)
			w.bulk("pmessage")
			w.bulk(m.Pattern)
		case subShard:
			w.push(3)
			w.bulk("smessage")
		default:
			w.push(3)
			w.bulk("message")
		}
		w.bulk(m.Channel)
		w.bulk(m.Payload)
		err = s.write(w.b)
		s.wmu.Unlock()
		if err != nil {
			s.conn.Close() // the session's read fails and ends it
			return
		}
	}
}
