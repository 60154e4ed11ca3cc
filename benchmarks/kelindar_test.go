package benchmarks

import (
	"testing"

	"github.com/kelindar/event"
)

// Type implements event.Event for kelindar/event.
func (Payload) Type() uint32 { return 1 }

// kelindarSetup uses kelindar/event: a dispatcher with one subscriber per
// consumer, each with its own queue and goroutine.
func kelindarSetup(_ *testing.B, subs int, c *counter) pubsub {
	d := event.NewDispatcher()
	cancels := make([]func(), subs)
	for i := range cancels {
		cancels[i] = event.Subscribe(d, func(Payload) { c.add() })
	}
	return pubsub{
		send: func(i int) { event.Publish(d, Payload{Seq: int64(i)}) },
		stop: func() {
			for _, cancel := range cancels {
				cancel()
			}
			_ = d.Close()
		},
	}
}
