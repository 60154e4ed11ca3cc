package benchmarks

import (
	"context"
	"log/slog"
	"testing"

	"github.com/courierbus/courier"
)

func newBus(b *testing.B, mws []courier.Middleware) *courier.Bus {
	bus := courier.New(courier.WithLogger(slog.New(slog.DiscardHandler)))
	bus.Use(mws...)
	return bus
}

func closeBus(b *testing.B, bus *courier.Bus) {
	if err := bus.Shutdown(context.Background()); err != nil {
		b.Fatal(err)
	}
}

// courierQueue sends to one queue with one worker (subs must be 1), through
// the chain's middleware.
func courierQueue(chain func() profile) setup {
	workers := courierWorkers(1, chain)
	return func(b *testing.B, subs int, c *counter) pubsub {
		if subs != 1 {
			b.Fatal("courierQueue serves one consumer")
		}
		return workers(b, subs, c)
	}
}

// courierTopic publishes to one topic with subs subscriptions of one worker
// each.
func courierTopic(chain func() profile) setup {
	return func(b *testing.B, subs int, c *counter) pubsub {
		p := chain()
		bus := newBus(b, p.mws)
		t, err := courier.NewTopic[Payload](bus, "bench", courier.Capacity(capacity))
		if err != nil {
			b.Fatal(err)
		}
		for i := range subs {
			if err := t.Subscribe(string(rune('a'+i)), func(context.Context, *courier.Message[Payload]) error {
				c.add()
				return nil
			}); err != nil {
				b.Fatal(err)
			}
		}
		ctx := context.Background()
		keys := p.keys(b.N)
		return pubsub{
			send: func(i int) {
				var err error
				if keys.ok() {
					err = t.Publish(ctx, Payload{Seq: int64(i)}, courier.WithIdempotencyKey(keys.at(i)))
				} else {
					err = t.Publish(ctx, Payload{Seq: int64(i)})
				}
				if err != nil {
					b.Fatal(err)
				}
			},
			stop: func() { closeBus(b, bus) },
		}
	}
}
