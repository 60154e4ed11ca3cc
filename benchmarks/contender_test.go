package benchmarks

import (
	"sync/atomic"
	"testing"
)

// Payload is the 64-byte message body of every workload.
type Payload struct {
	Seq                 int64
	B, C, D, E, F, G, H int64
}

// capacity is the buffer of every queue and channel.
const capacity = 1024

// counter counts deliveries and closes done when the expected number has
// arrived, so a benchmark waits for every message before it stops the clock.
type counter struct {
	want atomic.Int64
	got  atomic.Int64
	done chan struct{}
}

func newCounter(want int) *counter {
	c := &counter{done: make(chan struct{})}
	c.want.Store(int64(want))
	return c
}

// add records one delivery.
func (c *counter) add() {
	if c.got.Add(1) == c.want.Load() {
		close(c.done)
	}
}

// wait waits for every message, then checks that no more arrived.
func (c *counter) wait(b *testing.B) {
	b.Helper()
	if c.want.Load() == 0 {
		return
	}
	<-c.done
	if got, want := c.got.Load(), c.want.Load(); got != want {
		b.Fatalf("%d deliveries, want %d", got, want)
	}
}

// pubsub is one contender on one workload: send hands message i to the
// system under test, whose handlers call c.add once per delivery; stop
// releases everything.
type pubsub struct {
	send func(i int)
	stop func()
}

// setup builds a contender for a workload: subs subscribers (1 for a queue),
// each delivery counted in c.
type setup func(b *testing.B, subs int, c *counter) pubsub

// runOneProducer runs a workload with one producer: the benchmark loop.
func runOneProducer(b *testing.B, subs int, s setup) {
	c := newCounter(b.N * subs)
	ps := s(b, subs, c)
	defer ps.stop()
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		ps.send(i)
	}
	c.wait(b)
	b.StopTimer()
	reportRate(b, b.N)
}

// reportRate adds messages per second to the benchmark's output.
func reportRate(b *testing.B, n int) {
	if e := b.Elapsed(); e > 0 {
		b.ReportMetric(float64(n)/e.Seconds(), "msgs/s")
	}
}
