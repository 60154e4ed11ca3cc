package benchmarks

import (
	"context"
	"fmt"
	"sync"
	"testing"

	"github.com/courierbus/courier"
)

// BenchmarkP2P: one producer, one consumer, point to point.
func BenchmarkP2P(b *testing.B) {
	for _, c := range []struct {
		name string
		s    setup
	}{
		{"channel", channelSetup},
		{"channel-message", messageChannelSetup},
		{"courier", courierQueue(noChain)},
		{"courier-default", courierQueue(defaultChain)},
		{"courier-full", courierQueue(fullChain)},
		{"watermill-gochannel", watermillChannel},
		{"watermill-router", watermillRouter},
		{"eventbus", eventBusSetup},
		{"kelindar-event", kelindarSetup},
	} {
		b.Run(c.name, func(b *testing.B) { runOneProducer(b, 1, c.s) })
	}
}

// BenchmarkFanout4: one producer, four subscribers, each gets every message.
// The baseline feeds four channels in turn.
func BenchmarkFanout4(b *testing.B) {
	for _, c := range []struct {
		name string
		s    setup
	}{
		{"channel", channelSetup},
		{"courier", courierTopic(noChain)},
		{"courier-default", courierTopic(defaultChain)},
		{"courier-full", courierTopic(fullChain)},
		{"watermill-gochannel", watermillChannel},
		{"watermill-router", watermillRouter},
		{"eventbus", eventBusSetup},
		{"kelindar-event", kelindarSetup},
	} {
		b.Run(c.name, func(b *testing.B) { runOneProducer(b, 4, c.s) })
	}
}

// BenchmarkProducers4: four producers, one queue, four competing workers
// (Watermill, EventBus and kelindar/event have no competing consumers: one
// subscriber takes everything).
func BenchmarkProducers4(b *testing.B) {
	for _, c := range []struct {
		name string
		s    setup
	}{
		{"channel", channelWorkers(4)},
		{"courier", courierWorkers(4, noChain)},
		{"courier-full", courierWorkers(4, fullChain)},
		{"watermill-gochannel", watermillChannel},
		{"watermill-router", watermillRouter},
		{"eventbus", eventBusSetup},
		{"kelindar-event", kelindarSetup},
	} {
		b.Run(c.name, func(b *testing.B) { runProducers(b, 4, c.s) })
	}
}

// runProducers splits b.N messages among n producer goroutines.
func runProducers(b *testing.B, n int, s setup) {
	c := newCounter(b.N)
	ps := s(b, 1, c)
	defer ps.stop()
	b.ReportAllocs()
	b.ResetTimer()
	var wg sync.WaitGroup
	for p := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := p; i < b.N; i += n {
				ps.send(i)
			}
		}()
	}
	wg.Wait()
	c.wait(b)
	b.StopTimer()
	reportRate(b, b.N)
}

// channelWorkers is the baseline of competing consumers: one channel read by
// n goroutines.
func channelWorkers(n int) setup {
	return func(b *testing.B, _ int, c *counter) pubsub {
		ch := make(chan Payload, capacity)
		var wg sync.WaitGroup
		for range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for range ch {
					c.add()
				}
			}()
		}
		return pubsub{
			send: func(i int) { ch <- Payload{Seq: int64(i)} },
			stop: func() { close(ch); wg.Wait() },
		}
	}
}

// courierWorkers is one queue with n workers.
func courierWorkers(n int, chain func() profile) setup {
	return func(b *testing.B, _ int, c *counter) pubsub {
		p := chain()
		bus := newBus(b, p.mws)
		q, err := courier.NewQueue[Payload](bus, "bench", courier.Capacity(capacity))
		if err != nil {
			b.Fatal(err)
		}
		if err := q.Consume(func(context.Context, *courier.Message[Payload]) error {
			c.add()
			return nil
		}, courier.Workers(n)); err != nil {
			b.Fatal(err)
		}
		ctx := context.Background()
		keys := p.keys(b.N)
		return pubsub{
			send: func(i int) {
				var err error
				if keys.ok() {
					err = q.Send(ctx, Payload{Seq: int64(i)}, courier.WithIdempotencyKey(keys.at(i)))
				} else {
					err = q.Send(ctx, Payload{Seq: int64(i)})
				}
				if err != nil {
					b.Error(err)
				}
			},
			stop: func() { closeBus(b, bus) },
		}
	}
}

// BenchmarkKeyed64: one producer, 64 ordering keys, 8 workers; every key's
// messages must arrive in order. The baseline hashes each key to one of 8
// channels, each read by one goroutine.
func BenchmarkKeyed64(b *testing.B) {
	const keys, workers = 64, 8
	names := make([]string, keys)
	for i := range names {
		names[i] = fmt.Sprint("key-", i)
	}
	b.Run("channel", func(b *testing.B) {
		order := newOrderCheck(keys)
		runOneProducer(b, 1, func(b *testing.B, _ int, c *counter) pubsub {
			chans := make([]chan Payload, workers)
			var wg sync.WaitGroup
			for w := range chans {
				ch := make(chan Payload, capacity/workers)
				chans[w] = ch
				wg.Add(1)
				go func() {
					defer wg.Done()
					for p := range ch {
						order.see(int(p.Seq%keys), p.Seq)
						c.add()
					}
				}()
			}
			return pubsub{
				send: func(i int) { chans[(i%keys)%workers] <- Payload{Seq: int64(i)} },
				stop: func() {
					for _, ch := range chans {
						close(ch)
					}
					wg.Wait()
				},
			}
		})
		order.check(b)
	})
	b.Run("courier", func(b *testing.B) {
		order := newOrderCheck(keys)
		runOneProducer(b, 1, func(b *testing.B, _ int, c *counter) pubsub {
			bus := newBus(b, nil)
			q, err := courier.NewQueue[Payload](bus, "bench", courier.Capacity(capacity))
			if err != nil {
				b.Fatal(err)
			}
			if err := q.Consume(func(_ context.Context, m *courier.Message[Payload]) error {
				order.see(int(m.Body.Seq%keys), m.Body.Seq)
				c.add()
				return nil
			}, courier.Workers(workers)); err != nil {
				b.Fatal(err)
			}
			ctx := context.Background()
			return pubsub{
				send: func(i int) {
					if err := q.Send(ctx, Payload{Seq: int64(i)}, courier.WithKey(names[i%keys])); err != nil {
						b.Fatal(err)
					}
				},
				stop: func() { closeBus(b, bus) },
			}
		})
		order.check(b)
	})
}

// orderCheck records, per key, whether a message ever arrived after a later
// one of its key.
type orderCheck struct {
	mu       sync.Mutex
	last     []int64
	disorder int
}

func newOrderCheck(keys int) *orderCheck {
	o := &orderCheck{last: make([]int64, keys)}
	for i := range o.last {
		o.last[i] = -1
	}
	return o
}

func (o *orderCheck) see(key int, seq int64) {
	o.mu.Lock()
	if seq <= o.last[key] {
		o.disorder++
	}
	o.last[key] = seq
	o.mu.Unlock()
}

func (o *orderCheck) check(b *testing.B) {
	if o.disorder > 0 {
		b.Fatalf("%d messages arrived out of their key's order", o.disorder)
	}
}
