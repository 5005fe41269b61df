package client

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/slotrouter/slotrouter/slots"
)

// PubSubOptions configure subscriptions. The zero value is usable.
type PubSubOptions struct {
	// Buffer is how many messages a Subscription holds for its reader.
	// Default 1024. When it is full, further messages are dropped and
	// counted, never waited for: a reader that stops holds up neither the
	// subscription's connections, nor other subscriptions, nor commands.
	// The drops are then reported in order as one Gap with Cause
	// ErrSlowReader, as soon as the reader makes room.
	Buffer int
	// PingInterval: a subscription connection silent for this long is
	// pinged, and one that does not answer within Options.HealthTimeout is
	// treated as lost (a hung node). Default 1s.
	PingInterval time.Duration
	// RESP3 switches subscription connections to RESP3 (HELLO 3), where
	// messages arrive as push frames. Default RESP2.
	RESP3 bool
}

func (o *PubSubOptions) setDefaults() {
	if o.Buffer <= 0 {
		o.Buffer = 1024
	}
	if o.PingInterval <= 0 {
		o.PingInterval = time.Second
	}
}

// Message is one published message, or, when Gap is set, the report of an
// interruption.
type Message struct {
	Channel string // the channel it was published to
	Pattern string // the pattern that matched (PSubscribe), else ""
	Payload string
	Sharded bool // published with SPUBLISH to a sharded channel
	// Gap, when not nil, makes this an interruption report: messages on
	// Gap.Channels may have been lost between Gap.Start and Gap.End.
	// Channel, Pattern and Payload are then empty.
	Gap *Gap
}

// Gap reports a window during which messages may have been missed: the
// node serving some of the subscription's channels died, hung, lost their
// slot, or stopped being the master, and the subscription was re-established
// elsewhere; or the reader was too slow and the buffer overflowed.
type Gap struct {
	// Start is the last moment the old connection was known to deliver (its
	// last frame read), or, for a slot that moved, the last message or
	// confirmation the old node sent for that slot (the node gives the slot
	// away before it announces it, so the announcement is too late); End is
	// when the new node confirmed the subscription, or, for ErrSlowReader,
	// when the report was handed over.
	Start, End time.Time
	Channels   []string // channels (sharded or classic) affected
	Patterns   []string // patterns affected
	From, To   string   // the old and the new node ("" when unknown)
	Cause      error    // why: a *ConnError, a moved slot, ErrSlowReader
	Dropped    int      // messages dropped because the buffer was full
}

// Duration is how long the window lasted.
func (g *Gap) Duration() time.Duration { return g.End.Sub(g.Start) }

// Subscription receives messages on channels, patterns and sharded
// channels, each group on a dedicated connection to a node that serves it:
// sharded channels on the master of their slot, classic ones on any master.
// When a node dies or hangs, a slot moves, or a master switch happens, the
// affected groups are re-subscribed on the node the router now names, and
// each interruption is reported in the stream as a Message with a Gap.
//
// Messages wait in a bounded buffer (PubSubOptions.Buffer); read them with
// Receive or from Channel, not both at once. A Subscription is safe for
// concurrent use. Close it when done.
type Subscription struct {
	c    *Client
	opts PubSubOptions
	log  *slog.Logger
	ch   chan *Message

	ctx    context.Context // ends with Close
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu      sync.Mutex
	classic *subGroup
	shards  map[slots.Slot]*subGroup
	conns   map[string]*subConn
	dials   map[string]*subDial
	closed  bool

	dmu  sync.Mutex
	held []*Message // reports waiting for room in ch
	shut bool       // ch is closed
}

// Subscribe subscribes to classic channels and returns once every one of
// them is confirmed. The returned Subscription can add and remove channels,
// patterns and sharded channels later.
func (c *Client) Subscribe(ctx context.Context, channels ...string) (*Subscription, error) {
	return c.newSubscription(ctx, func(s *Subscription) error { return s.Subscribe(ctx, channels...) })
}

// PSubscribe subscribes to glob-style patterns; see Subscribe.
func (c *Client) PSubscribe(ctx context.Context, patterns ...string) (*Subscription, error) {
	return c.newSubscription(ctx, func(s *Subscription) error { return s.PSubscribe(ctx, patterns...) })
}

// SSubscribe subscribes to sharded channels (Redis 7 SSUBSCRIBE): each on the
// master that owns the channel's slot, one connection per node. See
// Subscribe.
func (c *Client) SSubscribe(ctx context.Context, channels ...string) (*Subscription, error) {
	return c.newSubscription(ctx, func(s *Subscription) error { return s.SSubscribe(ctx, channels...) })
}

// Publish posts message on a classic channel (any node serves it); the
// reply is the number of clients that received it on that node.
func (c *Client) Publish(ctx context.Context, channel string, message any) Result {
	return c.Do(ctx, "PUBLISH", channel, message)
}

// SPublish posts message on a sharded channel, routed to the master of the
// channel's slot like a keyed command.
func (c *Client) SPublish(ctx context.Context, channel string, message any) Result {
	return c.Do(ctx, "SPUBLISH", channel, message)
}

func (c *Client) newSubscription(ctx context.Context, first func(*Subscription) error) (*Subscription, error) {
	if c.closed.Load() {
		return nil, ErrClosed
	}
	opts := c.opts.PubSub
	opts.setDefaults()
	s := &Subscription{
		c: c, opts: opts, log: c.opts.Logger,
		ch:      make(chan *Message, opts.Buffer),
		classic: newSubGroup(false, 0),
		shards:  map[slots.Slot]*subGroup{},
		conns:   map[string]*subConn{},
		dials:   map[string]*subDial{},
	}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	c.subs.Store(s, struct{}{})
	s.wg.Add(1)
	go s.watch()
	if err := first(s); err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
}

// Subscribe adds classic channels.
func (s *Subscription) Subscribe(ctx context.Context, channels ...string) error {
	return s.change(ctx, classicChannels, channels, true)
}

// PSubscribe adds patterns.
func (s *Subscription) PSubscribe(ctx context.Context, patterns ...string) error {
	return s.change(ctx, patternNames, patterns, true)
}

// SSubscribe adds sharded channels.
func (s *Subscription) SSubscribe(ctx context.Context, channels ...string) error {
	return s.change(ctx, shardChannels, channels, true)
}

// Unsubscribe removes classic channels.
func (s *Subscription) Unsubscribe(ctx context.Context, channels ...string) error {
	return s.change(ctx, classicChannels, channels, false)
}

// PUnsubscribe removes patterns.
func (s *Subscription) PUnsubscribe(ctx context.Context, patterns ...string) error {
	return s.change(ctx, patternNames, patterns, false)
}

// SUnsubscribe removes sharded channels.
func (s *Subscription) SUnsubscribe(ctx context.Context, channels ...string) error {
	return s.change(ctx, shardChannels, channels, false)
}

// Receive returns the next message or interruption report, waiting until
// one arrives, ctx ends, or the subscription is closed
// (ErrSubscriptionClosed).
func (s *Subscription) Receive(ctx context.Context) (*Message, error) {
	select {
	case m, ok := <-s.ch:
		if !ok {
			return nil, ErrSubscriptionClosed
		}
		s.flushHeld()
		return m, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// Channel returns the buffer Receive reads from; it is closed by Close.
// Interruption reports held back by a full buffer are handed over within
// PingInterval/2 of room appearing.
func (s *Subscription) Channel() <-chan *Message { return s.ch }

// Close unsubscribes by closing the subscription's connections, stops its
// goroutines and closes Channel. Safe to call more than once.
func (s *Subscription) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	s.c.subs.Delete(s)
	conns := make([]*subConn, 0, len(s.conns))
	for _, sc := range s.conns {
		conns = append(conns, sc)
	}
	s.mu.Unlock()
	s.cancel()
	for _, sc := range conns {
		sc.close()
	}
	s.wg.Wait()
	s.dmu.Lock()
	s.shut = true
	close(s.ch)
	s.dmu.Unlock()
	return nil
}

// deliver hands m to the reader without ever waiting: when the buffer is
// full, m is dropped and counted in a held ErrSlowReader report. Held
// reports go first, so the stream stays in order.
func (s *Subscription) deliver(m *Message) {
	s.dmu.Lock()
	defer s.dmu.Unlock()
	if s.shut {
		return
	}
	if s.flushHeldLocked() {
		select {
		case s.ch <- m:
			return
		default:
		}
	}
	if m.Gap != nil {
		s.held = append(s.held, m)
		return
	}
	if k := len(s.held); k > 0 && s.held[k-1].Gap.Cause == ErrSlowReader {
		g := s.held[k-1].Gap
		g.Dropped++
		addName(&g.Channels, m.Channel)
		addName(&g.Patterns, m.Pattern)
		return
	}
	g := &Gap{Start: time.Now(), Cause: ErrSlowReader, Dropped: 1}
	addName(&g.Channels, m.Channel)
	addName(&g.Patterns, m.Pattern)
	s.held = append(s.held, &Message{Gap: g})
}

// addName adds n to a short list of distinct names, bounded so a flood of
// channels cannot grow one report without limit.
func addName(list *[]string, n string) {
	if n == "" || len(*list) >= 1024 {
		return
	}
	for _, x := range *list {
		if x == n {
			return
		}
	}
	*list = append(*list, n)
}

// flushHeld hands over held reports while there is room.
func (s *Subscription) flushHeld() {
	s.dmu.Lock()
	s.flushHeldLocked()
	s.dmu.Unlock()
}

// flushHeldLocked reports whether nothing is held any more.
func (s *Subscription) flushHeldLocked() bool {
	for len(s.held) > 0 && !s.shut {
		m := s.held[0]
		if m.Gap.Cause == ErrSlowReader {
			m.Gap.End = time.Now()
		}
		select {
		case s.ch <- m:
			s.held[0] = nil
			s.held = s.held[1:]
		default:
			return false
		}
	}
	return true
}
