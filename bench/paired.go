package main

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"time"
)

// Paired comparison of two clients' calls. In the large-reply table every
// client makes its call n of a cell in the same round as the others' call
// n (in a shuffled order), so the ratio of two clients' n-th times compares
// them under the same conditions of this shared machine; the median of those ratios, with a bootstrap
// interval, says which is faster and by how much the machine lets us tell.
//
// What the machine lets us tell is measured, not assumed: a second
// slotrouter client, the same code on its own connections, takes its turn
// beside the others (the A/A control). Its ratio to the first would be
// exactly 1 on a quiet machine; how far its interval reaches from 1 is this
// run's resolution, and no finer difference between clients can be claimed.

// pairCap is the most resolution that may excuse a deficit: a run noisier
// than this cannot call a client level with a faster one, whatever its
// control says.
const pairCap = 0.02

// ratioCI is a median ratio with its 95% bootstrap interval.
type ratioCI struct {
	med, lo, hi float64
	n           int
}

func (c ratioCI) String() string {
	if c.n == 0 {
		return "-"
	}
	return fmt.Sprintf("%.3f [%.3f, %.3f]", c.med, c.lo, c.hi)
}

// pairedRatio is the median of other[i]/base[i] over the calls both made
// (above 1: base was faster), with a percentile bootstrap interval from a
// fixed seed, so a run's figures can be recomputed.
func pairedRatio(base, other []time.Duration) ratioCI {
	n := min(len(base), len(other))
	if n == 0 {
		return ratioCI{}
	}
	rs := make([]float64, n)
	for i := range n {
		rs[i] = float64(other[i]) / float64(base[i])
	}
	const resamples = 2000
	rng := rand.New(rand.NewPCG(1, 2))
	meds := make([]float64, resamples)
	sample := make([]float64, n)
	for k := range meds {
		for i := range sample {
			sample[i] = rs[rng.IntN(n)]
		}
		slices.Sort(sample)
		meds[k] = sample[n/2]
	}
	slices.Sort(meds)
	return ratioCI{med: median(rs), lo: meds[resamples*25/1000], hi: meds[resamples*975/1000-1], n: n}
}

// resolution is how far the A/A control's interval reaches from 1, capped
// at pairCap; capped reports that the cap applied.
func resolution(control ratioCI) (res float64, capped bool) {
	res = max(1-control.lo, control.hi-1, 0)
	if res > pairCap {
		return pairCap, true
	}
	return res, false
}

// verdict says whether base is at least as fast as a peer, given the ratio
// peer time / base time and the run's resolution: "ahead" (median ratio
// at least 1), "level" (behind by no more than the resolution), or
// "behind" with the deficit.
func verdict(peer ratioCI, res float64) string {
	switch {
	case peer.n == 0:
		return "-"
	case peer.med >= 1:
		return "ahead"
	case 1-peer.med <= res:
		return fmt.Sprintf("level (%.1f%% ≤ %.1f%%)", 100*(1-peer.med), 100*res)
	}
	return fmt.Sprintf("behind by %.1f%%", 100*(1-peer.med))
}
