package sentinel

import (
	"context"
	"math/rand/v2"
	"strings"
	"time"
)

// watchLocked starts following events on one sentinel (s.mu held).
func (s *Source) watchLocked(addr string) {
	if s.o.Subscribe == nil || s.closed {
		return
	}
	if _, ok := s.watching[addr]; ok {
		return
	}
	ctx, cancel := context.WithCancel(s.ctx)
	s.watching[addr] = cancel
	s.wg.Add(1)
	go s.watch(ctx, addr)
}

// watch keeps a subscription to one sentinel alive until Close, re-subscribing with jittered
// exponential back-off (50 ms to 5 s) so that a dead sentinel costs little.
func (s *Source) watch(ctx context.Context, addr string) {
	defer s.wg.Done()
	const minBackoff, maxBackoff = 50 * time.Millisecond, 5 * time.Second
	backoff := minBackoff
	for ctx.Err() == nil {
		start := time.Now()
		err := s.o.Subscribe(ctx, addr, Channels, func(channel, payload string) {
			if s.relevant(channel, payload) {
				s.o.Logger.Info("sentinel: event", "sentinel", addr, "channel", channel, "payload", payload)
				s.signal()
			}
		})
		if ctx.Err() != nil {
			return
		}
		// A subscription that had been up may have lost events; reconciliation would catch
		// that, but a prompt re-check costs one Discover. A sentinel that keeps refusing
		// connections does not trigger Discovers.
		if lived := time.Since(start); lived > time.Second {
			s.signal()
			if lived > 10*time.Second {
				backoff = minBackoff
			}
		}
		s.o.Logger.Debug("sentinel: subscription ended", "sentinel", addr, "err", err, "retry_in", backoff)
		sleep := backoff/2 + rand.N(backoff/2+1)
		t := time.NewTimer(sleep)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		backoff = min(2*backoff, maxBackoff)
	}
}

// relevant reports whether an event concerns the monitored master. Payloads (see the notes):
//
//	+switch-master: <name> <old-ip> <old-port> <new-ip> <new-port>
//	master events:  master <name> <ip> <port> [...]
//	others:         <type> <inst-name> <ip> <port> @ <name> <master-ip> <master-port>
func (s *Source) relevant(channel, payload string) bool {
	f := strings.Fields(payload)
	if channel == "+switch-master" {
		return len(f) > 0 && f[0] == s.o.MasterName
	}
	if len(f) >= 2 && f[0] == "master" {
		return f[1] == s.o.MasterName
	}
	for i, w := range f {
		if w == "@" && i+1 < len(f) {
			return f[i+1] == s.o.MasterName
		}
	}
	return false
}

// reconcileLoop compares, every Reconcile, what a sentinel says with what Discover last
// returned, and signals Changed when they differ (a missed event, or a Discover that failed
// mid-failover and must be retried).
func (s *Source) reconcileLoop() {
	defer s.wg.Done()
	t := time.NewTicker(s.o.Reconcile)
	defer t.Stop()
	for {
		select {
		case <-s.ctx.Done():
			return
		case <-t.C:
		}
		s.mu.Lock()
		last := s.lastView
		s.mu.Unlock()
		for _, sent := range s.Sentinels() {
			master, replicas, _, err := s.query(s.ctx, sent)
			if err != nil {
				continue
			}
			v := view{master: master, replicas: replicas}
			if v.key() != last {
				s.o.Logger.Debug("sentinel: reconcile found a different view", "sentinel", sent,
					"view", v.key(), "last", last)
				s.signal()
			}
			break
		}
	}
}
