package couriertest_test

import (
	"context"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/courierbus/courier"
	"github.com/courierbus/courier/couriertest"
)

// consumeAll declares a queue with opts whose handler always succeeds.
func consumeAll(t testing.TB, h *couriertest.Harness, name string, opts ...courier.Option) *courier.Queue[Order] {
	t.Helper()
	q, err := courier.NewQueue[Order](h.Bus, name, opts...)
	require.NoError(t, err)
	require.NoError(t, q.Consume(func(context.Context, *courier.Message[Order]) error { return nil }, courier.Workers(2)))
	return q
}

func fastRetry(n int) courier.Option {
	return courier.WithRetry(courier.RetryPolicy{MaxAttempts: n, InitialInterval: time.Second})
}

func TestFailFirst(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := couriertest.New(t)
		q := consumeAll(t, h, "orders", fastRetry(3), courier.WithMiddleware(couriertest.FailFirst(2)))
		require.NoError(t, q.Send(t.Context(), Order{ID: "a"}))
		m := couriertest.RequireConsumed[Order](t, h, nil)
		assert.Equal(t, 3, m.Attempt)
		failures := couriertest.Failed[Order](h)
		require.Len(t, failures, 2)
		assert.ErrorIs(t, failures[0].Err, couriertest.ErrInjected)
	})
}

func TestFailWhenWithBody(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := couriertest.New(t)
		q := consumeAll(t, h, "orders", fastRetry(2),
			courier.WithMiddleware(couriertest.FailWhen(couriertest.Body(func(o Order) bool { return o.ID == "bad" }))))
		require.NoError(t, q.Send(t.Context(), Order{ID: "good"}))
		require.NoError(t, q.Send(t.Context(), Order{ID: "bad"}))
		couriertest.RequireConsumed(t, h, func(o Order) bool { return o.ID == "good" })
		couriertest.RequireNotConsumed(t, h, func(o Order) bool { return o.ID == "bad" })
		d := couriertest.RequireDeadLettered(t, h, func(o Order) bool { return o.ID == "bad" })
		assert.Equal(t, 2, d.Attempts)
		assert.ErrorIs(t, d.Err, couriertest.ErrInjected)
	})
}

func TestPanicWhen(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := couriertest.New(t)
		q := consumeAll(t, h, "orders", fastRetry(2),
			courier.WithMiddleware(couriertest.PanicWhen(func(env courier.Envelope) bool { return env.Meta().Attempt == 1 })))
		require.NoError(t, q.Send(t.Context(), Order{ID: "a"}))
		m := couriertest.RequireConsumed[Order](t, h, nil)
		assert.Equal(t, 2, m.Attempt)
		failures := couriertest.Failed[Order](h)
		require.Len(t, failures, 1)
		var pe *courier.PanicError
		require.ErrorAs(t, failures[0].Err, &pe)
		assert.Equal(t, "couriertest: injected panic", pe.Value)
	})
}

func TestLatency(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := couriertest.New(t)
		var at time.Time
		q, err := courier.NewQueue[Order](h.Bus, "orders", courier.WithMiddleware(couriertest.Latency(3*time.Second)))
		require.NoError(t, err)
		require.NoError(t, q.Consume(func(context.Context, *courier.Message[Order]) error {
			at = time.Now()
			return nil
		}))
		start := time.Now()
		require.NoError(t, q.Send(t.Context(), Order{ID: "a"}))
		h.Settle()
		assert.Equal(t, 3*time.Second, at.Sub(start))
	})
}

func TestLatencyGivesUpWhenTheContextEnds(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := couriertest.New(t)
		q := consumeAll(t, h, "orders", courier.WithMiddleware(couriertest.Latency(time.Hour)))
		require.NoError(t, q.Send(t.Context(), Order{ID: "a"}, courier.WithTTL(time.Minute)))
		d := couriertest.RequireDeadLettered[Order](t, h, nil)
		assert.Equal(t, courier.ReasonExpired, d.Reason)
	})
}

func TestDeliverTwice(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := couriertest.New(t)
		q, err := courier.NewQueue[Order](h.Bus, "orders", courier.WithMiddleware(couriertest.DeliverTwice()))
		require.NoError(t, err)
		var mu sync.Mutex
		seen := map[string]int{}
		require.NoError(t, q.Consume(func(_ context.Context, m *courier.Message[Order]) error {
			mu.Lock()
			defer mu.Unlock()
			seen[m.ID]++
			return nil
		}, courier.Workers(2)))
		require.NoError(t, q.Send(t.Context(), Order{ID: "a"}, courier.WithIdempotencyKey("k-a")))
		both := couriertest.RequireConsumedN[Order](t, h, 2, nil)
		assert.Equal(t, both[0].ID, both[1].ID)
		assert.Equal(t, "k-a", both[1].IdempotencyKey)
		assert.Equal(t, map[string]int{both[0].ID: 2}, seen)
	})
}

func TestNilPredicatesPanicWhenWired(t *testing.T) {
	assert.PanicsWithValue(t, "couriertest: FailWhen needs a predicate, not nil", func() { couriertest.FailWhen(nil) })
	assert.PanicsWithValue(t, "couriertest: PanicWhen needs a predicate, not nil", func() { couriertest.PanicWhen(nil) })
	assert.PanicsWithValue(t, "couriertest: Body needs a predicate, not nil", func() { couriertest.Body[Order](nil) })
}

func TestDeliverTwiceKeepsTrySend(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := couriertest.New(t, couriertest.AllowDeadLetters())
		q, err := courier.NewQueue[Order](h.Bus, "tiny", courier.Capacity(1), courier.WithMiddleware(couriertest.DeliverTwice()))
		require.NoError(t, err)
		// The copy finds the queue full: a TrySend must not wait for room.
		require.ErrorIs(t, q.TrySend(t.Context(), Order{ID: "a"}), courier.ErrFull)
		require.NoError(t, q.Consume(func(context.Context, *courier.Message[Order]) error { return nil }))
		couriertest.RequireConsumedN[Order](t, h, 1, nil)
	})
}
