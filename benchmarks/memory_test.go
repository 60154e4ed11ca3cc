package benchmarks

import (
	"context"
	"runtime"
	"runtime/metrics"
	"sync/atomic"
	"testing"
	"time"

	"github.com/courierbus/courier"
)

// heapBytes reads the bytes of live and not yet swept heap objects.
func heapBytes() uint64 {
	s := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
	metrics.Read(s)
	return s[0].Value.Uint64()
}

// BenchmarkBurst sends b.N messages (run it with -benchtime=1000000x) as fast
// as one producer can into a queue of capacity 1,024 whose one consumer is
// slower than the producer. The producer is held back, so the heap must stay
// bounded: it reports the peak heap seen while the burst ran, and fails
// above 64 MiB (an unbounded queue of a million 64-byte messages would need
// several hundred).
func BenchmarkBurst(b *testing.B) {
	bus := newBus(b, nil)
	defer closeBus(b, bus)
	q, err := courier.NewQueue[Payload](bus, "burst", courier.Capacity(capacity))
	if err != nil {
		b.Fatal(err)
	}
	c := newCounter(b.N)
	var sink atomic.Int64
	if err := q.Consume(func(_ context.Context, m *courier.Message[Payload]) error {
		x := m.Body.Seq
		for range 200 { // slow: a little work per message
			x = x*6364136223846793005 + 1442695040888963407
		}
		sink.Add(x & 1)
		c.add()
		return nil
	}); err != nil {
		b.Fatal(err)
	}
	runtime.GC()
	base := heapBytes()
	var peak atomic.Uint64
	stopSampling := make(chan struct{})
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		t := time.NewTicker(time.Millisecond)
		defer t.Stop()
		for {
			if h := heapBytes(); h > peak.Load() {
				peak.Store(h)
			}
			select {
			case <-t.C:
			case <-stopSampling:
				return
			}
		}
	}()
	b.ReportAllocs()
	b.ResetTimer()
	ctx := context.Background()
	for i := 0; i < b.N; i++ {
		if err := q.Send(ctx, Payload{Seq: int64(i)}); err != nil {
			b.Fatal(err)
		}
	}
	c.wait(b)
	b.StopTimer()
	close(stopSampling)
	<-sampled
	grown := float64(peak.Load()-min(base, peak.Load())) / (1 << 20)
	b.ReportMetric(grown, "peak-heap-MiB")
	if grown > 64 {
		b.Fatalf("heap grew by %.0f MiB during the burst: the queue is not bounded", grown)
	}
}

// BenchmarkScheduled100k schedules 100,000 messages an hour ahead and
// reports what each costs in heap, and how many goroutines the bus gained:
// none, because one timer heap serves every delay.
func BenchmarkScheduled100k(b *testing.B) {
	const n = 100_000
	for range b.N {
		bus := newBus(b, nil)
		q, err := courier.NewQueue[Payload](bus, "later", courier.Capacity(n))
		if err != nil {
			b.Fatal(err)
		}
		if err := q.Consume(func(context.Context, *courier.Message[Payload]) error { return nil }); err != nil {
			b.Fatal(err)
		}
		runtime.GC()
		heap0, g0 := heapBytes(), runtime.NumGoroutine()
		ctx := context.Background()
		for i := range n {
			if err := q.Send(ctx, Payload{Seq: int64(i)}, courier.WithDelay(time.Hour)); err != nil {
				b.Fatal(err)
			}
		}
		runtime.GC()
		heap1, g1 := heapBytes(), runtime.NumGoroutine()
		if s := q.Stats().Scheduled; s != n {
			b.Fatalf("%d scheduled, want %d", s, n)
		}
		b.ReportMetric(float64(heap1-min(heap0, heap1))/n, "heap-B/msg")
		b.ReportMetric(float64(g1-g0), "goroutines")
		if g1 != g0 {
			b.Fatalf("scheduling %d messages added %d goroutines", n, g1-g0)
		}
		_ = bus.Close() // dead-letters the scheduled messages, as documented
	}
}
