package courier_test

import (
	"context"
	"errors"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/courierbus/courier"
)

func TestStatsGaugesAndCounters(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := newBus(t)
		q := mustQueue[Order](t, b, "orders", courier.WithRetry(courier.RetryPolicy{InitialInterval: time.Minute, MaxAttempts: 2, Jitter: -1}))
		release := make(chan struct{})
		require.NoError(t, q.Consume(func(_ context.Context, m *courier.Message[Order]) error {
			switch m.Body.ID {
			case "block":
				<-release
			case "fail":
				return errors.New("fail")
			}
			return nil
		}))
		require.NoError(t, q.Send(t.Context(), Order{ID: "fail"}))
		synctest.Wait() // failed once, waiting a minute
		require.NoError(t, q.Send(t.Context(), Order{ID: "block"}))
		synctest.Wait()
		require.NoError(t, q.Send(t.Context(), Order{ID: "queued"}))
		require.NoError(t, q.Send(t.Context(), Order{ID: "later"}, courier.WithDelay(time.Hour)))

		s := q.Stats()
		assert.Equal(t, 1, s.Depth)
		assert.Equal(t, 1, s.InFlight)
		assert.Equal(t, 2, s.Scheduled)
		assert.EqualValues(t, 4, s.Sent)
		assert.EqualValues(t, 1, s.FailedAttempts)
		assert.EqualValues(t, 1, s.Retried)

		close(release)
		require.NoError(t, b.Shutdown(t.Context()))
		s = q.Stats()
		assert.EqualValues(t, 3, s.Handled)
		assert.EqualValues(t, 2, s.FailedAttempts)
		assert.EqualValues(t, 1, s.DeadLettered)
		assert.Equal(t, 1, s.DeadLetters)
		assert.Zero(t, s.Depth+s.InFlight+s.Scheduled)

		bs := b.Stats()
		assert.Equal(t, s, bs.Queues["orders"])
		assert.Equal(t, s, bs.Total)
	})
}

func TestBusStatsSumsTopics(t *testing.T) {
	b := newBus(t)
	topic, err := courier.NewTopic[Payment](b, "payments")
	require.NoError(t, err)
	for _, name := range []string{"a", "b", "c"} {
		require.NoError(t, topic.Subscribe(name, func(context.Context, *courier.Message[Payment]) error { return nil }))
	}
	for range 10 {
		require.NoError(t, topic.Publish(ctxT(t), Payment{}))
	}
	require.NoError(t, b.Shutdown(ctxT(t)))
	bs := b.Stats()
	assert.EqualValues(t, 30, bs.Total.Handled)
	assert.EqualValues(t, 10, bs.Topics["payments"].Published)
	assert.Len(t, bs.Topics["payments"].Subscriptions, 3)
}
