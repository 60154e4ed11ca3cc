package benchmarks

import (
	"context"
	"encoding/binary"
	"fmt"
	"testing"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/ThreeDotsLabs/watermill/pubsub/gochannel"
)

// encode is the work a []byte bus makes a typed message cost: Watermill
// carries bytes, so the producer encodes the 64-byte body.
func encode(p Payload) []byte {
	buf := make([]byte, 64)
	binary.LittleEndian.PutUint64(buf, uint64(p.Seq))
	return buf
}

// watermillChannel uses Watermill's GoChannel pub/sub directly: one
// Subscribe channel per subscriber, each message acked.
func watermillChannel(b *testing.B, subs int, c *counter) pubsub {
	ps := gochannel.NewGoChannel(gochannel.Config{OutputChannelBuffer: capacity}, watermill.NopLogger{})
	ctx, cancel := context.WithCancel(context.Background())
	exited := make(chan struct{}, subs)
	for range subs {
		msgs, err := ps.Subscribe(ctx, "bench")
		if err != nil {
			b.Fatal(err)
		}
		go func() {
			for m := range msgs {
				c.add()
				m.Ack()
			}
			exited <- struct{}{}
		}()
	}
	return pubsub{
		send: func(i int) {
			if err := ps.Publish("bench", message.NewMessage(watermill.NewUUID(), encode(Payload{Seq: int64(i)}))); err != nil {
				b.Fatal(err)
			}
		},
		stop: func() {
			cancel()
			_ = ps.Close()
			for range subs {
				<-exited
			}
		},
	}
}

// watermillRouter runs GoChannel under Watermill's router, the way Watermill
// applications consume: one handler per subscriber.
func watermillRouter(b *testing.B, subs int, c *counter) pubsub {
	ps := gochannel.NewGoChannel(gochannel.Config{OutputChannelBuffer: capacity}, watermill.NopLogger{})
	r, err := message.NewRouter(message.RouterConfig{}, watermill.NopLogger{})
	if err != nil {
		b.Fatal(err)
	}
	for i := range subs {
		r.AddConsumerHandler(fmt.Sprint("h", i), "bench", ps, func(*message.Message) error {
			c.add()
			return nil
		})
	}
	ctx, cancel := context.WithCancel(context.Background())
	ran := make(chan error, 1)
	go func() { ran <- r.Run(ctx) }()
	<-r.Running()
	return pubsub{
		send: func(i int) {
			if err := ps.Publish("bench", message.NewMessage(watermill.NewUUID(), encode(Payload{Seq: int64(i)}))); err != nil {
				b.Fatal(err)
			}
		},
		stop: func() {
			cancel()
			if err := <-ran; err != nil {
				b.Error(err)
			}
			_ = ps.Close()
		},
	}
}
