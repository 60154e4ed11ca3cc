package middleware_test

import (
	"context"
	"log/slog"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/courierbus/courier"
	"github.com/courierbus/courier/middleware"
)

// BenchmarkIdempotency measures one message, with a unique idempotency key,
// through send and handle on a queue with the middleware over a MemoryStore
// with the default options. Before timing, it sends enough messages to fill
// the store twice over, so that the store and its map are in steady state:
// every commit evicts a key.
// Compare with BenchmarkIdempotencyBaseline, the same without the middleware.
func BenchmarkIdempotency(b *testing.B) {
	benchIdempotency(b, true)
}

// BenchmarkIdempotencyBaseline is BenchmarkIdempotency without the middleware.
func BenchmarkIdempotencyBaseline(b *testing.B) {
	benchIdempotency(b, false)
}

func benchIdempotency(b *testing.B, withMiddleware bool) {
	ctx := context.Background()
	bus := courier.New(courier.WithLogger(slog.New(slog.DiscardHandler)))
	b.Cleanup(func() { _ = bus.Close() })
	var idem *middleware.Idempotency
	if withMiddleware {
		var err error
		idem, err = middleware.NewIdempotency(middleware.NewMemoryStore(middleware.MemoryStoreOptions{}), middleware.IdempotencyOptions{})
		if err != nil {
			b.Fatal(err)
		}
		bus.Use(idem.Middleware())
	}
	q, err := courier.NewQueue[int](bus, "orders")
	if err != nil {
		b.Fatal(err)
	}
	// Each message commits two keys, one sent and one handled.
	const warmup = middleware.DefaultMaxKeys
	keys := make([]string, warmup+b.N)
	for i := range keys {
		keys[i] = "order-" + strconv.Itoa(i)
	}
	var handled atomic.Int64
	var want atomic.Int64
	all := make(chan struct{}, 1)
	if err := q.Consume(func(context.Context, *courier.Message[int]) error {
		if handled.Add(1) == want.Load() {
			all <- struct{}{}
		}
		return nil
	}); err != nil {
		b.Fatal(err)
	}
	send := func(keys []string) {
		want.Add(int64(len(keys)))
		for i, k := range keys {
			if err := q.Send(ctx, i, courier.WithIdempotencyKey(k)); err != nil {
				b.Fatal(err)
			}
		}
		<-all
	}

	send(keys[:warmup])
	b.ReportAllocs()
	b.ResetTimer()
	send(keys[warmup:])
	b.StopTimer()
	if idem != nil {
		if st := idem.Stats(); st.Committed != uint64(len(keys)) || st.StoreErrors != 0 {
			b.Fatalf("stats %+v after %d messages", st, len(keys))
		}
	}
}

// BenchmarkMemoryStoreChurn is the store's work for one message of the full
// benchmark chain: a send and a delivery, each reserving and committing a
// key never seen before, in a store that is full, so that each commit also
// evicts.
func BenchmarkMemoryStoreChurn(b *testing.B) {
	s := middleware.NewMemoryStore(middleware.MemoryStoreOptions{})
	ctx := context.Background()
	const fill = 2 * middleware.DefaultMaxKeys
	keys := make([]string, fill+b.N)
	for i := range keys {
		keys[i] = "k" + strconv.Itoa(i)
	}
	step := func(id string) {
		for _, scope := range [...]string{"sent/orders", "handled/orders"} {
			k := middleware.Key{Scope: scope, ID: id}
			r, err := s.Reserve(ctx, k, time.Minute)
			if err != nil || r.Status != middleware.Reserved {
				b.Fatalf("Reserve(%v) = %v, %v", k, r, err)
			}
			if err := s.Commit(ctx, k, r.Token, time.Hour); err != nil {
				b.Fatal(err)
			}
		}
	}
	for _, id := range keys[:fill] {
		step(id)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for _, id := range keys[fill:] {
		step(id)
	}
}
