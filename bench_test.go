package courier_test

import (
	"context"
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/courierbus/courier"
)

// payload64 is the 64-byte message body of every benchmark.
type payload64 struct {
	A, B, C, D, E, F, G, H int64
}

const benchCapacity = 1024

func benchBus(b *testing.B) *courier.Bus {
	bus := courier.New(courier.WithLogger(slog.New(slog.DiscardHandler)))
	b.Cleanup(func() { _ = bus.Close() })
	return bus
}

// BenchmarkChannel is the baseline: one producer hands 64-byte values to one
// consumer goroutine through a buffered channel of the same capacity.
func BenchmarkChannel(b *testing.B) {
	ch := make(chan payload64, benchCapacity)
	done := make(chan struct{})
	n := b.N
	go func() {
		for i := 0; i < n; i++ {
			<-ch
		}
		close(done)
	}()
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < n; i++ {
		ch <- payload64{A: int64(i)}
	}
	<-done
}

// BenchmarkQueue: one producer, one worker, a no-op handler, no middleware.
func BenchmarkQueue(b *testing.B) {
	bus := benchBus(b)
	q, err := courier.NewQueue[payload64](bus, "bench", courier.Capacity(benchCapacity))
	if err != nil {
		b.Fatal(err)
	}
	var count atomic.Int64
	done := make(chan struct{})
	n := int64(b.N)
	if err := q.Consume(func(context.Context, *courier.Message[payload64]) error {
		if count.Add(1) == n {
			close(done)
		}
		return nil
	}); err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if err := q.Send(ctx, payload64{A: int64(i)}); err != nil {
			b.Fatal(err)
		}
	}
	<-done
	b.StopTimer()
	if err := bus.Shutdown(ctx); err != nil {
		b.Fatal(err)
	}
}

// BenchmarkChannelFanout4 is the fan-out baseline: one producer feeds four
// buffered channels in turn, each drained by its own goroutine.
func BenchmarkChannelFanout4(b *testing.B) {
	var wg sync.WaitGroup
	chans := make([]chan payload64, 4)
	n := b.N
	for i := range chans {
		chans[i] = make(chan payload64, benchCapacity)
		wg.Add(1)
		go func(ch chan payload64) {
			defer wg.Done()
			for j := 0; j < n; j++ {
				<-ch
			}
		}(chans[i])
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < n; i++ {
		for _, ch := range chans {
			ch <- payload64{A: int64(i)}
		}
	}
	wg.Wait()
}

// BenchmarkTopicFanout4: one publisher, four subscriptions of one worker each.
func BenchmarkTopicFanout4(b *testing.B) {
	bus := benchBus(b)
	topic, err := courier.NewTopic[payload64](bus, "bench", courier.Capacity(benchCapacity))
	if err != nil {
		b.Fatal(err)
	}
	var wg sync.WaitGroup
	n := int64(b.N)
	for _, name := range []string{"a", "b", "c", "d"} {
		var count atomic.Int64
		wg.Add(1)
		if err := topic.Subscribe(name, func(context.Context, *courier.Message[payload64]) error {
			if count.Add(1) == n {
				wg.Done()
			}
			return nil
		}); err != nil {
			b.Fatal(err)
		}
	}
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if err := topic.Publish(ctx, payload64{A: int64(i)}); err != nil {
			b.Fatal(err)
		}
	}
	wg.Wait()
	b.StopTimer()
	if err := bus.Shutdown(ctx); err != nil {
		b.Fatal(err)
	}
}
