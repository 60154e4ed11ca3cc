package benchmarks

import (
	"testing"
	"time"

	"github.com/courierbus/courier"
)

// channelSetup is the baseline: one buffered channel and one goroutine per
// subscriber, fed in turn by the producer.
func channelSetup(b *testing.B, subs int, c *counter) pubsub {
	chans := make([]chan Payload, subs)
	exited := make(chan struct{}, subs)
	for i := range chans {
		ch := make(chan Payload, capacity)
		chans[i] = ch
		go func() {
			for range ch {
				c.add()
			}
			exited <- struct{}{}
		}()
	}
	return pubsub{
		send: func(i int) {
			for _, ch := range chans {
				ch <- Payload{Seq: int64(i)}
			}
		},
		stop: func() {
			for _, ch := range chans {
				close(ch)
			}
			for range chans {
				<-exited
			}
		},
	}
}

// messageChannelSetup is the floor of any Courier-like design, run next to
// the baseline. It repeats channelSetup's plumbing rather than sharing it
// through a value-making callback, so that the baseline stays a plain channel
// send with no indirect call: one buffered channel per subscriber carrying a freshly
// allocated *courier.Message stamped with the clock, as Courier must make
// one per send (an ID and the engine's bookkeeping come on top).
func messageChannelSetup(b *testing.B, subs int, c *counter) pubsub {
	chans := make([]chan *courier.Message[Payload], subs)
	exited := make(chan struct{}, subs)
	for i := range chans {
		ch := make(chan *courier.Message[Payload], capacity)
		chans[i] = ch
		go func() {
			for range ch {
				c.add()
			}
			exited <- struct{}{}
		}()
	}
	return pubsub{
		send: func(i int) {
			for _, ch := range chans {
				m := &courier.Message[Payload]{Body: Payload{Seq: int64(i)}}
				m.SentAt = time.Now()
				ch <- m
			}
		},
		stop: func() {
			for _, ch := range chans {
				close(ch)
			}
			for range chans {
				<-exited
			}
		},
	}
}
