package proxy

import (
	"context"
	"errors"

	"github.com/redis/go-redis/v9"

	"github.com/slotrouter/slotrouter/client"
)

// fakeTx stands in for the client's transactions (slotrouter issue 11)
// so the session's side of MULTI/EXEC/WATCH can be tested against a real
// cluster before they exist. It is NOT atomic: Exec runs the commands one
// by one through client.Do, and a watch compares DUMPs of the watched keys
// at WATCH and at EXEC. That is enough to see the session queue, abort,
// discard and report a failed watch exactly as redis-server would.
type fakeTx struct{ c *client.Client }

func (f *fakeTx) Exec(ctx context.Context, cmds [][]any) ([]client.Result, error) {
	out := make([]client.Result, len(cmds))
	for i, cmd := range cmds {
		out[i] = f.c.Do(ctx, cmd...)
	}
	return out, nil
}

func (f *fakeTx) Watch(ctx context.Context, fn func(watchedConn) error, keys ...string) error {
	w := &fakeWatched{tx: f, snap: map[string]string{}}
	if err := w.snapshot(ctx, keys); err != nil {
		return err
	}
	return fn(w)
}

type fakeWatched struct {
	tx   *fakeTx
	snap map[string]string
}

func (w *fakeWatched) snapshot(ctx context.Context, keys []string) error {
	for _, k := range keys {
		v, err := w.dump(ctx, k)
		if err != nil {
			return err
		}
		w.snap[k] = v
	}
	return nil
}

func (w *fakeWatched) dump(ctx context.Context, key string) (string, error) {
	v, err := w.tx.c.Do(ctx, "DUMP", key).Text()
	if errors.Is(err, client.ErrNil) {
		return "<none>", nil
	}
	return v, err
}

func (w *fakeWatched) Do(ctx context.Context, args ...any) client.Result {
	if name, ok := args[0].([]byte); ok && string(name) == "WATCH" {
		keys := make([]string, 0, len(args)-1)
		for _, a := range args[1:] {
			keys = append(keys, string(a.([]byte)))
		}
		if err := w.snapshot(ctx, keys); err != nil {
			return w.tx.c.Do(ctx, "DUMP", keys[0]) // the failure, as a reply
		}
	}
	return w.tx.c.Do(ctx, args...)
}

func (w *fakeWatched) Exec(ctx context.Context, cmds [][]any) ([]client.Result, error) {
	for k, before := range w.snap {
		now, err := w.dump(ctx, k)
		if err != nil {
			return nil, err
		}
		if now != before {
			return nil, errTxFailed
		}
	}
	return w.tx.Exec(ctx, cmds)
}

// fakeSub stands in for the client's subscriptions (slotrouter issue 13):
// a go-redis PubSub per subscription on the same real cluster: on one node
// for channels and patterns (the cluster broadcasts PUBLISH to every node),
// through a ClusterClient for shard channels.
type fakeSub struct {
	node *redis.Client
	rc   *redis.ClusterClient
}

func (f fakeSub) Subscribe(ctx context.Context, kind subKind, names ...string) (subscription, error) {
	s := &fakeSubscription{kind: kind}
	switch kind {
	case subPattern:
		s.ps = f.node.PSubscribe(ctx, names...)
	case subShard:
		s.ps = f.rc.SSubscribe(ctx, names...)
	default:
		s.ps = f.node.Subscribe(ctx, names...)
	}
	// Wait for the confirmations: once SUBSCRIBE answers, a PUBLISH that
	// follows it is delivered.
	for range names {
		if _, err := s.ps.Receive(ctx); err != nil {
			s.ps.Close()
			return nil, err
		}
	}
	return s, nil
}

type fakeSubscription struct {
	kind subKind
	ps   *redis.PubSub
}

func (s *fakeSubscription) Add(ctx context.Context, names ...string) error {
	switch s.kind {
	case subPattern:
		return s.ps.PSubscribe(ctx, names...)
	case subShard:
		return s.ps.SSubscribe(ctx, names...)
	}
	return s.ps.Subscribe(ctx, names...)
}

func (s *fakeSubscription) Remove(ctx context.Context, names ...string) error {
	switch s.kind {
	case subPattern:
		return s.ps.PUnsubscribe(ctx, names...)
	case subShard:
		return s.ps.SUnsubscribe(ctx, names...)
	}
	return s.ps.Unsubscribe(ctx, names...)
}

func (s *fakeSubscription) Receive(ctx context.Context) (message, error) {
	m, err := s.ps.ReceiveMessage(ctx)
	if err != nil {
		return message{}, err
	}
	return message{Channel: m.Channel, Pattern: m.Pattern, Payload: m.Payload}, nil
}

func (s *fakeSubscription) Close() error { return s.ps.Close() }
