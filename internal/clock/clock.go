// Package clock reads the time for the hot paths of Courier and its
// middleware at the cost of one clock reading instead of two.
//
// [time.Now] reads both the wall clock and the monotonic clock. On virtual
// machines each reading can cost 50–100 ns, more than the rest of a message's
// hand-over. [Now] reads only the monotonic clock and adds the elapsed time to
// a wall-clock anchor that it takes again at least once a second, so a step of
// the system clock shows within a second. Results carry a monotonic reading,
// like those of time.Now, so durations between them are exact.
//
// Inside a testing/synctest bubble, where time.Now has no monotonic reading,
// Now returns exactly what time.Now returns.
package clock

import (
	"sync/atomic"
	"time"
)

// reanchor bounds how long an anchor serves.
const reanchor = time.Second

type anchor struct{ t time.Time }

var current atomic.Pointer[anchor]

// Now returns the current time. It is safe for concurrent use and does not
// allocate, except when it takes a new anchor (at most about once a second
// outside synctest bubbles).
func Now() time.Time {
	if a := current.Load(); a != nil {
		// With a monotonic anchor, Since reads only the monotonic clock. In a
		// bubble (or with an anchor from one) it reads time.Now, and the sum
		// below is that reading.
		if d := time.Since(a.t); d >= 0 && d < reanchor {
			return a.t.Add(d)
		}
	}
	t := time.Now()
	current.Store(&anchor{t: t})
	return t
}
