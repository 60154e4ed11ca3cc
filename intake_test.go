package courier_test

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/courierbus/courier"
)

// A send to an open queue with room takes a fast path that does not wait for
// the workers' lock. These tests cover what that path must not lose.

// TestIdleWorkerWakesForEverySend sends one message at a time and waits for
// it, so that the worker goes idle before every send: a send that slipped
// past the worker's last look would leave it asleep, and the test would hang
// until its deadline.
func TestIdleWorkerWakesForEverySend(t *testing.T) {
	b := newBus(t)
	q := mustQueue[Order](t, b, "orders")
	handled := make(chan struct{})
	require.NoError(t, q.Consume(func(context.Context, *courier.Message[Order]) error {
		handled <- struct{}{}
		return nil
	}))
	ctx := ctxT(t)
	for i := range 20_000 {
		require.NoError(t, q.Send(ctx, Order{}))
		select {
		case <-handled:
		case <-ctx.Done():
			t.Fatalf("message %d was never handled: the worker missed its wake-up", i)
		}
	}
}

// TestIdleSubscribersWakeForEveryPublish is the same for the copies of a
// publish.
func TestIdleSubscribersWakeForEveryPublish(t *testing.T) {
	b := newBus(t)
	topic, err := courier.NewTopic[Payment](b, "payments")
	require.NoError(t, err)
	handled := make(chan struct{})
	for _, name := range []string{"ledger", "mailer"} {
		require.NoError(t, topic.Subscribe(name, func(context.Context, *courier.Message[Payment]) error {
			handled <- struct{}{}
			return nil
		}))
	}
	ctx := ctxT(t)
	for i := range 10_000 {
		require.NoError(t, topic.Publish(ctx, Payment{}))
		for range 2 {
			select {
			case <-handled:
			case <-ctx.Done():
				t.Fatalf("a copy of message %d was never handled: a worker missed its wake-up", i)
			}
		}
	}
}

// TestOutsideSendsAreRefusedWhileDraining: once Shutdown has begun, a send
// from outside the bus's handlers fails with ErrClosed even though the queue
// has room.
func TestOutsideSendsAreRefusedWhileDraining(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := newBus(t)
		q := mustQueue[Order](t, b, "orders")
		topic, err := courier.NewTopic[Payment](b, "payments")
		require.NoError(t, err)
		require.NoError(t, topic.Subscribe("ledger", func(context.Context, *courier.Message[Payment]) error { return nil }))
		release := make(chan struct{})
		require.NoError(t, q.Consume(func(context.Context, *courier.Message[Order]) error {
			<-release
			return nil
		}))
		require.NoError(t, q.Send(t.Context(), Order{}))
		done := make(chan error, 1)
		go func() { done <- b.Shutdown(t.Context()) }()
		synctest.Wait() // Shutdown waits for the handler: the bus is draining
		assert.ErrorIs(t, q.Send(t.Context(), Order{}), courier.ErrClosed)
		assert.ErrorIs(t, q.TrySend(t.Context(), Order{}), courier.ErrClosed)
		assert.ErrorIs(t, topic.Publish(t.Context(), Payment{}), courier.ErrClosed)
		close(release)
		require.NoError(t, <-done)
		assert.Equal(t, uint64(1), q.Stats().Handled)
		assert.Zero(t, topic.Stats().Subscriptions["ledger"].Sent, "no copy of the refused publish")
	})
}

// TestCapacityHoldsAcrossBothPaths: delayed sends take the locked path,
// others the fast one; racing on a small queue, together they never take
// more slots than it has.
func TestCapacityHoldsAcrossBothPaths(t *testing.T) {
	const capacity, senders, rounds = 4, 8, 200
	for range rounds {
		b := newBus(t)
		q := mustQueue[Order](t, b, "orders", courier.Capacity(capacity))
		var accepted atomic.Int32
		var wg sync.WaitGroup
		for i := range senders {
			wg.Go(func() {
				var opts []courier.SendOption
				if i%2 == 0 {
					opts = append(opts, courier.WithDelay(time.Hour))
				}
				for range 20 {
					switch err := q.TrySend(t.Context(), Order{}, opts...); {
					case err == nil:
						accepted.Add(1)
					case !errors.Is(err, courier.ErrFull):
						t.Errorf("TrySend: %v", err)
					}
				}
			})
		}
		wg.Wait()
		st := q.Stats()
		require.EqualValues(t, capacity, accepted.Load(), "sends accepted")
		require.Equal(t, capacity, st.Depth+st.Scheduled, "messages held")
		_ = b.Close() // it reports the held messages it dead-letters
	}
}

// A worker gives the slots of handled messages back in batches. A send that
// finds the queue full must still see every slot already freed: here the
// worker has handled one message of a full queue and is busy with the next,
// with two more ready behind it.
func TestFreedSlotIsFreeWhileTheWorkerIsBusy(t *testing.T) {
	for _, dest := range []string{"queue", "topic"} {
		t.Run(dest, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				b := newBus(t)
				started := make(chan int, 10)
				gate := make(chan struct{})
				h := func(_ context.Context, m *courier.Message[Order]) error {
					started <- m.Body.Seq
					<-gate
					return nil
				}
				var try func(Order) error
				var q *courier.Queue[Order]
				var tp *courier.Topic[Order]
				if dest == "queue" {
					q = mustQueue[Order](t, b, "orders", courier.Capacity(4))
					require.NoError(t, q.Consume(h))
					try = func(o Order) error { return q.TrySend(t.Context(), o) }
				} else {
					var err error
					tp, err = courier.NewTopic[Order](b, "orders")
					require.NoError(t, err)
					require.NoError(t, tp.Subscribe("audit", h, courier.Capacity(4)))
					try = func(o Order) error { return tp.TryPublish(t.Context(), o) }
				}
				for i := 1; i <= 4; i++ {
					require.NoError(t, try(Order{Seq: i}))
				}
				assert.Equal(t, 1, <-started)
				require.ErrorIs(t, try(Order{Seq: 5}), courier.ErrFull)
				gate <- struct{}{} // message 1 is handled; 2 starts
				assert.Equal(t, 2, <-started)
				require.NoError(t, try(Order{Seq: 5}), "message 1's slot is free")
				require.ErrorIs(t, try(Order{Seq: 6}), courier.ErrFull)

				// A sender that waits for room is woken by the next slot
				// that frees, though the worker still has more to do.
				sent := make(chan error, 1)
				go func() {
					if dest == "queue" {
						sent <- q.Send(t.Context(), Order{Seq: 6})
					} else {
						sent <- tp.Publish(t.Context(), Order{Seq: 6})
					}
				}()
				synctest.Wait()
				gate <- struct{}{} // message 2 is handled; 3 starts
				assert.Equal(t, 3, <-started)
				synctest.Wait()
				select {
				case err := <-sent:
					require.NoError(t, err)
				default:
					t.Fatal("a waiting sender was not woken by the freed slot")
				}
				close(gate)
				require.NoError(t, b.Shutdown(t.Context()))
			})
		})
	}
}
