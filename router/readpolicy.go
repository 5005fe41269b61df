package router

import (
	"math/rand/v2"
	"sync/atomic"
	"time"

	"github.com/slotrouter/slotrouter/slots"
)

// ReadPolicy chooses the node for read-only commands. Writes always go to
// the master.
type ReadPolicy uint8

const (
	// MasterOnly sends reads to the master (the default): no stale reads.
	MasterOnly ReadPolicy = iota
	// PreferReplica reads from a healthy replica, and from the master when
	// the shard has none.
	PreferReplica
	// ReplicaOnly reads only from replicas; with none healthy, reads fail
	// with ErrNoReplica rather than load the master.
	ReplicaOnly
	// Nearest reads from the node (master or replica) with the lowest
	// measured latency, choosing at random among those within
	// Options.LatencyTolerance of the best so noise does not pin one node.
	Nearest
	// Random spreads reads over the master and its replicas.
	Random
)

func (p ReadPolicy) String() string {
	switch p {
	case PreferReplica:
		return "prefer-replica"
	case ReplicaOnly:
		return "replica-only"
	case Nearest:
		return "nearest"
	case Random:
		return "random"
	}
	return "master-only"
}

func (r *Router) healthyReplicas(rt route, buf []string) []string {
	for _, a := range rt.replicas {
		if !r.IsSuspect(a) {
			buf = append(buf, a)
		}
	}
	return buf
}

func (r *Router) pickRead(rt route, slot slots.Slot) (string, error) {
	var arr [8]string
	reps := r.healthyReplicas(rt, arr[:0])
	switch r.opts.ReadPolicy {
	case PreferReplica:
		if len(reps) > 0 {
			return reps[rand.IntN(len(reps))], nil
		}
	case ReplicaOnly:
		if len(reps) == 0 {
			return "", &SlotError{Slot: slot, Err: ErrNoReplica}
		}
		return reps[rand.IntN(len(reps))], nil
	case Random:
		if rt.master != "" {
			reps = append(reps, rt.master)
		}
		if len(reps) > 0 {
			return reps[rand.IntN(len(reps))], nil
		}
	case Nearest:
		if rt.master != "" {
			reps = append(reps, rt.master)
		}
		if a := r.nearest(reps); a != "" {
			return a, nil
		}
	}
	if rt.master == "" {
		return "", &SlotError{Slot: slot, Err: ErrNoOwner}
	}
	return rt.master, nil
}

// ewma is a latency estimate in nanoseconds, updated lock-free.
type ewma struct{ ns atomic.Int64 }

// ObserveLatency feeds a round-trip measurement for addr (the client sends
// periodic PINGs); Nearest uses it.
func (r *Router) ObserveLatency(addr string, d time.Duration) {
	v, _ := r.latency.LoadOrStore(addr, new(ewma))
	e := v.(*ewma)
	for {
		old := e.ns.Load()
		n := int64(d)
		if old != 0 {
			n = old + (int64(d)-old)/4
		}
		if e.ns.CompareAndSwap(old, n) {
			return
		}
	}
}

// Latency is the current estimate for addr (0 when unmeasured).
func (r *Router) Latency(addr string) time.Duration {
	if v, ok := r.latency.Load(addr); ok {
		return time.Duration(v.(*ewma).ns.Load())
	}
	return 0
}

func (r *Router) nearest(cands []string) string {
	if len(cands) == 0 {
		return ""
	}
	best := time.Duration(-1)
	for _, a := range cands {
		l := r.Latency(a)
		if l > 0 && (best < 0 || l < best) {
			best = l
		}
	}
	if best < 0 {
		return cands[rand.IntN(len(cands))]
	}
	var arr [8]string
	band := arr[:0]
	for _, a := range cands {
		if l := r.Latency(a); l > 0 && l <= best+r.opts.LatencyTolerance {
			band = append(band, a)
		}
	}
	return band[rand.IntN(len(band))]
}
