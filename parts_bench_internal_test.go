package courier

import (
	"context"
	"testing"

	"github.com/courierbus/courier/internal/clock"
)

// The parts of a send that come before any queueing, measured alone: the
// floor under BenchmarkQueue. See README, Performance.

type partsBody struct{ A, B, C, D, E, F, G, H int64 } // 64 bytes, as in benchmarks/

var (
	sinkMessage *Message[partsBody]
	sinkID      string
)

// BenchmarkMessageAlloc allocates a message and nothing else.
func BenchmarkMessageAlloc(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		sinkMessage = &Message[partsBody]{}
	}
}

// BenchmarkMessageID makes an ID and its text for a given time.
func BenchmarkMessageID(b *testing.B) {
	now := clock.Now()
	var buf [36]byte
	b.ReportAllocs()
	for b.Loop() {
		hi, lo := newUUIDv7(now)
		sinkID = formatID(hi, lo, &buf)
	}
}

// BenchmarkNewMessage is all of the above and the clock: what a send does
// before it reaches the queue.
func BenchmarkNewMessage(b *testing.B) {
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		sinkMessage, _ = newMessage(ctx, "orders", partsBody{}, false, nil)
	}
}
