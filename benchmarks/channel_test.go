package benchmarks

import "testing"

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
