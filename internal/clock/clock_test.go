package clock

import (
	"testing"
	"testing/synctest"
	"time"
)

func TestNowFollowsTheClock(t *testing.T) {
	for range 1000 {
		before := time.Now()
		got := Now()
		after := time.Now()
		// The wall reading may differ from time.Now's by a clock step or
		// slew since the anchor; the monotonic reading may not.
		if got.Before(before) || got.After(after) {
			t.Fatalf("Now() = %v, not between %v and %v", got, before, after)
		}
		if d := got.Sub(before); d < 0 {
			t.Fatalf("Now() is %v before a reading taken earlier", -d)
		}
	}
}

func TestNowCarriesAMonotonicReading(t *testing.T) {
	got := Now()
	// Round strips the monotonic reading; a time that had none is unchanged.
	if got == got.Round(0) {
		t.Fatalf("Now() = %v has no monotonic reading", got)
	}
}

func TestNowTakesANewAnchorEverySecond(t *testing.T) {
	current.Store(&anchor{t: time.Now().Add(-2 * reanchor)})
	got := Now()
	if a := current.Load(); !a.t.Equal(got) {
		t.Fatalf("anchor %v, want the fresh reading %v", a.t, got)
	}
	if d := time.Since(got); d < 0 || d > reanchor {
		t.Fatalf("Now() after a stale anchor is %v from time.Now", d)
	}
}

func TestNowInABubbleIsTheBubblesTime(t *testing.T) {
	Now() // an anchor from outside the bubble
	synctest.Test(t, func(t *testing.T) {
		for range 3 {
			if got, want := Now(), time.Now(); !got.Equal(want) {
				t.Fatalf("Now() = %v in a bubble, want %v", got, want)
			}
			time.Sleep(700 * time.Millisecond)
		}
	})
	if d := time.Since(Now()); d < 0 || d > reanchor {
		t.Fatalf("after a bubble, Now() is %v from time.Now", d)
	}
}

func BenchmarkNow(b *testing.B) {
	for b.Loop() {
		Now()
	}
}

func BenchmarkTimeNow(b *testing.B) {
	for b.Loop() {
		time.Now()
	}
}
