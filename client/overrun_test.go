package client

import "time"

// overrunCap is how much later than its ctx deadline any call may return,
// raw: nothing subtracted. The client itself leaves at the deadline (the
// read deadline is the ctx's, or cancelPoll ahead); what remains is the
// runtime waking the goroutine on a loaded 2-core machine under -race,
// which measures in milliseconds, so 50 ms is a bound no client bug (a
// hidden wait, a retry past the deadline) can hide under.
const overrunCap = 50 * time.Millisecond
