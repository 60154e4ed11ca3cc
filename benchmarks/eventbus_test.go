package benchmarks

import (
	"testing"

	evbus "github.com/asaskevich/EventBus"
)

// eventBusSetup uses asaskevich/EventBus with asynchronous, transactional
// (one at a time per subscriber) handlers: its closest mode to a queue.
func eventBusSetup(b *testing.B, subs int, c *counter) pubsub {
	bus := evbus.New()
	for range subs {
		if err := bus.SubscribeAsync("bench", func(Payload) { c.add() }, true); err != nil {
			b.Fatal(err)
		}
	}
	return pubsub{
		send: func(i int) { bus.Publish("bench", Payload{Seq: int64(i)}) },
		stop: bus.WaitAsync,
	}
}
