package client

import (
	"sync"
	"testing"
	"time"
)

// stallProbe records when this process was not run on time: a goroutine
// sleeps 1 ms in a loop, and a wake-up more than 2 ms late is a stall from
// the moment it was due to the moment it ran (GC, the race detector, a busy
// machine giving the CPUs to other processes). A timing bound can then tell
// a late client from a starved test, measured apart from the code under
// test; every test caps what it lets the stalls excuse.
type stallProbe struct {
	once    sync.Once
	stop    chan struct{}
	done    chan struct{}
	mu      sync.Mutex
	stalls  []stall
	worst   time.Duration // the latest wake-up, stalled or not
	worstAt time.Time
}

type stall struct{ from, to time.Time }

// stallProbeLimit bounds a probe whose test forgot to finish it.
const stallProbeLimit = 10 * time.Minute

func startStallProbe(t testing.TB) *stallProbe {
	p := &stallProbe{stop: make(chan struct{}), done: make(chan struct{})}
	t.Cleanup(func() { p.finish() })
	go func() {
		defer close(p.done)
		for limit := time.Now().Add(stallProbeLimit); time.Now().Before(limit); {
			select {
			case <-p.stop:
				return
			default:
			}
			t0 := time.Now()
			time.Sleep(time.Millisecond)
			now := time.Now()
			late := now.Sub(t0) - time.Millisecond
			p.mu.Lock()
			if late > p.worst {
				p.worst, p.worstAt = late, t0
			}
			if late > 2*time.Millisecond {
				p.stalls = append(p.stalls, stall{t0.Add(time.Millisecond), now})
			}
			p.mu.Unlock()
		}
	}()
	return p
}

// finish stops the probe and returns the latest wake-up it saw and when.
func (p *stallProbe) finish() (time.Duration, time.Time) {
	p.once.Do(func() { close(p.stop) })
	<-p.done
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.worst, p.worstAt
}

// total is how long the process was stalled inside [from, to], counting
// only stalls at least atLeast long.
func (p *stallProbe) total(from, to time.Time, atLeast time.Duration) time.Duration {
	p.mu.Lock()
	defer p.mu.Unlock()
	var d time.Duration
	for _, s := range p.stalls {
		if s.to.Sub(s.from) < atLeast {
			continue
		}
		a, b := s.from, s.to
		if a.Before(from) {
			a = from
		}
		if b.After(to) {
			b = to
		}
		if b.After(a) {
			d += b.Sub(a)
		}
	}
	return d
}

// longest is the longest stall overlapping [from, to], whole.
func (p *stallProbe) longest(from, to time.Time) time.Duration {
	p.mu.Lock()
	defer p.mu.Unlock()
	var d time.Duration
	for _, s := range p.stalls {
		if s.to.After(from) && s.from.Before(to) {
			d = max(d, s.to.Sub(s.from))
		}
	}
	return d
}
