package proxy

import (
	"context"
	"log/slog"

	"github.com/slotrouter/slotrouter/client"
)

// clientSub is the production subBackend: one client.Subscription per
// session and kind, which follows its channels across failovers and
// resharding.
type clientSub struct {
	c   *client.Client
	log *slog.Logger
}

func (b clientSub) Subscribe(ctx context.Context, kind subKind, names ...string) (subscription, error) {
	var sub *client.Subscription
	var err error
	switch kind {
	case subPattern:
		sub, err = b.c.PSubscribe(ctx, names...)
	case subShard:
		sub, err = b.c.SSubscribe(ctx, names...)
	default:
		sub, err = b.c.Subscribe(ctx, names...)
	}
	if err != nil {
		return nil, err
	}
	return &clientSubscription{sub: sub, kind: kind, log: b.log}, nil
}

type clientSubscription struct {
	sub  *client.Subscription
	kind subKind
	log  *slog.Logger
}

func (s *clientSubscription) Add(ctx context.Context, names ...string) error {
	switch s.kind {
	case subPattern:
		return s.sub.PSubscribe(ctx, names...)
	case subShard:
		return s.sub.SSubscribe(ctx, names...)
	}
	return s.sub.Subscribe(ctx, names...)
}

func (s *clientSubscription) Remove(ctx context.Context, names ...string) error {
	switch s.kind {
	case subPattern:
		return s.sub.PUnsubscribe(ctx, names...)
	case subShard:
		return s.sub.SUnsubscribe(ctx, names...)
	}
	return s.sub.Unsubscribe(ctx, names...)
}

// Receive returns the next message. A Gap (an interruption the client
// re-subscribed across, or messages dropped for a slow reader) has no
// form in the Redis protocol: a redis-server that lost a subscriber's
// messages says nothing either. It is logged at Warn, with its window and
// channels, and skipped; the session's client goes on receiving.
func (s *clientSubscription) Receive(ctx context.Context) (message, error) {
	for {
		m, err := s.sub.Receive(ctx)
		if err != nil {
			return message{}, err
		}
		if g := m.Gap; g != nil {
			s.log.Warn("proxy: subscription interrupted; messages may have been lost",
				"channels", g.Channels, "patterns", g.Patterns, "from", g.From, "to", g.To,
				"start", g.Start, "duration", g.Duration(), "dropped", g.Dropped, "cause", g.Cause)
			continue
		}
		return message{Channel: m.Channel, Pattern: m.Pattern, Payload: m.Payload}, nil
	}
}

func (s *clientSubscription) Close() error { return s.sub.Close() }
