package courier_test

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/courierbus/courier"
)

func TestShutdownDeliversWhatIsBuffered(t *testing.T) {
	b := newBus(t)
	q := mustQueue[Order](t, b, "orders", courier.Workers(3))
	var handled atomic.Int32
	require.NoError(t, q.Consume(func(context.Context, *courier.Message[Order]) error {
		handled.Add(1)
		return nil
	}))
	for range 300 {
		require.NoError(t, q.Send(ctxT(t), Order{}))
	}
	require.NoError(t, b.Shutdown(ctxT(t)))
	assert.EqualValues(t, 300, handled.Load())
	assert.ErrorIs(t, q.Send(ctxT(t), Order{}), courier.ErrClosed)
	assert.ErrorIs(t, q.TrySend(ctxT(t), Order{}), courier.ErrClosed)
}

func TestShutdownWaitsForRetriesAndDelays(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := newBus(t)
		q := mustQueue[Order](t, b, "orders", courier.WithRetry(courier.RetryPolicy{InitialInterval: 10 * time.Second, Jitter: -1}))
		var handled atomic.Int32
		require.NoError(t, q.Consume(func(_ context.Context, m *courier.Message[Order]) error {
			if m.Body.ID == "flaky" && m.Attempt == 1 {
				return errors.New("once")
			}
			handled.Add(1)
			return nil
		}))
		require.NoError(t, q.Send(t.Context(), Order{ID: "flaky"}))
		require.NoError(t, q.Send(t.Context(), Order{ID: "later"}, courier.WithDelay(time.Minute)))
		start := time.Now()
		require.NoError(t, b.Shutdown(t.Context()))
		assert.Equal(t, time.Minute, time.Since(start))
		assert.EqualValues(t, 2, handled.Load())
	})
}

func TestShutdownLetsHandlersPassWorkOn(t *testing.T) {
	b := newBus(t)
	orders := mustQueue[Order](t, b, "orders", courier.Workers(2))
	payments, err := courier.NewTopic[Payment](b, "payments")
	require.NoError(t, err)
	var paid atomic.Int32
	require.NoError(t, payments.Subscribe("accounting", func(context.Context, *courier.Message[Payment]) error {
		paid.Add(1)
		return nil
	}))
	require.NoError(t, orders.Consume(func(ctx context.Context, m *courier.Message[Order]) error {
		return payments.Publish(ctx, Payment{OrderID: m.Body.ID})
	}))
	for range 200 {
		require.NoError(t, orders.Send(ctxT(t), Order{ID: "o"}))
	}
	require.NoError(t, b.Shutdown(ctxT(t)))
	assert.EqualValues(t, 200, paid.Load(), "sends from handlers are admitted while draining")
	assert.ErrorIs(t, payments.Publish(ctxT(t), Payment{}), courier.ErrClosed)
}

// TestShutdownDeadlineUnderLoad stops a loaded bus whose deadline expires:
// the count Shutdown returns equals the dead letters with reason shutdown, and
// every message is handled or dead-lettered.
func TestShutdownDeadlineUnderLoad(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		sink, hook := newDeadSink()
		b := newBus(t, hook)
		q := mustQueue[Order](t, b, "orders", courier.Workers(4), courier.Capacity(1000),
			courier.WithRetry(courier.RetryPolicy{InitialInterval: time.Second}))
		var handled atomic.Int32
		require.NoError(t, q.Consume(func(ctx context.Context, m *courier.Message[Order]) error {
			select {
			case <-time.After(100 * time.Millisecond):
			case <-ctx.Done():
				return ctx.Err()
			}
			if m.Body.Seq%7 == 0 {
				return errors.New("flaky")
			}
			handled.Add(1)
			return nil
		}))
		const total = 500
		for i := range total {
			require.NoError(t, q.Send(t.Context(), Order{Seq: i}, courier.WithKey([]string{"", "a", "b"}[i%3])))
		}
		ctx, cancel := context.WithTimeout(t.Context(), 2*time.Second)
		defer cancel()
		err := b.Shutdown(ctx)
		var se *courier.ShutdownError
		require.ErrorAs(t, err, &se)
		assert.ErrorIs(t, err, courier.ErrShutdownIncomplete)
		assert.ErrorIs(t, err, context.DeadlineExceeded)
		assert.Zero(t, se.Abandoned)

		shutdownDead := 0
		for len(sink) > 0 {
			d := <-sink
			require.Equal(t, courier.ReasonShutdown, d.Reason)
			shutdownDead++
		}
		assert.Equal(t, se.DeadLettered, shutdownDead)
		assert.Equal(t, se.DeadLettered, q.DeadLetters().Count())
		assert.EqualValues(t, total, int(handled.Load())+shutdownDead, "every message handled or dead-lettered")
		s := q.Stats()
		assert.Zero(t, s.Depth+s.InFlight+s.Scheduled)
	})
}

func TestCloseAbandonsHandlerThatIgnoresCancellation(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		sink, hook := newDeadSink()
		b := newBus(t, hook, courier.WithStopGrace(5*time.Second))
		q := mustQueue[Order](t, b, "orders")
		release := make(chan struct{})
		started := make(chan struct{})
		require.NoError(t, q.Consume(func(context.Context, *courier.Message[Order]) error {
			close(started)
			<-release // ignores its context
			return nil
		}))
		require.NoError(t, q.Send(t.Context(), Order{}))
		<-started
		start := time.Now()
		err := b.Close()
		assert.Equal(t, 5*time.Second, time.Since(start), "Close waits the grace period, then abandons")
		var se *courier.ShutdownError
		require.ErrorAs(t, err, &se)
		assert.Equal(t, 1, se.DeadLettered)
		assert.Equal(t, 1, se.Abandoned)
		d := sink.next(t)
		assert.Equal(t, courier.ReasonShutdown, d.Reason)
		assert.ErrorIs(t, d.Err, courier.ErrAbandoned)

		close(release) // the late success must not count twice
		synctest.Wait()
		s := q.Stats()
		assert.EqualValues(t, 0, s.Handled)
		assert.EqualValues(t, 1, s.DeadLettered)
		assert.Equal(t, 0, s.InFlight)
	})
}

func TestCloseCancelsHandlerContexts(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		sink, hook := newDeadSink()
		b := newBus(t, hook)
		q := mustQueue[Order](t, b, "orders")
		started := make(chan struct{})
		require.NoError(t, q.Consume(func(ctx context.Context, _ *courier.Message[Order]) error {
			close(started)
			<-ctx.Done()
			return ctx.Err()
		}))
		require.NoError(t, q.Send(t.Context(), Order{}))
		require.NoError(t, q.Send(t.Context(), Order{}, courier.WithDelay(time.Hour)))
		<-started
		start := time.Now()
		err := b.Close()
		assert.Zero(t, time.Since(start), "a cooperative handler lets Close return at once")
		var se *courier.ShutdownError
		require.ErrorAs(t, err, &se)
		assert.Equal(t, 2, se.DeadLettered)
		assert.Zero(t, se.Abandoned)
		assert.NoError(t, se.Cause)
		for range 2 {
			d := sink.next(t)
			assert.Equal(t, courier.ReasonShutdown, d.Reason)
		}
	})
}

func TestShutdownAndCloseAreIdempotent(t *testing.T) {
	b := newBus(t)
	q := mustQueue[Order](t, b, "orders") // no consumer: its message cannot be delivered
	require.NoError(t, q.Send(ctxT(t), Order{}))
	err1 := b.Shutdown(ctxT(t))
	var se *courier.ShutdownError
	require.ErrorAs(t, err1, &se)
	assert.Equal(t, 1, se.DeadLettered, "a queue without consumers is dead-lettered, not waited for")
	assert.Equal(t, err1, b.Shutdown(ctxT(t)))
	assert.Equal(t, err1, b.Close())

	b2 := newBus(t)
	assert.NoError(t, b2.Close())
	assert.NoError(t, b2.Close())
	assert.NoError(t, b2.Shutdown(ctxT(t)))
}

func TestNothingStartsAfterShutdown(t *testing.T) {
	b := newBus(t)
	q := mustQueue[Order](t, b, "orders")
	topic, err := courier.NewTopic[Payment](b, "payments")
	require.NoError(t, err)
	require.NoError(t, b.Shutdown(ctxT(t)))
	h := func(context.Context, *courier.Message[Order]) error { return nil }
	assert.ErrorIs(t, q.Consume(h), courier.ErrClosed)
	assert.ErrorIs(t, topic.Subscribe("s", func(context.Context, *courier.Message[Payment]) error { return nil }), courier.ErrClosed)
	_, err = courier.NewQueue[Order](b, "other")
	assert.ErrorIs(t, err, courier.ErrClosed)
	_, err = courier.NewTopic[Order](b, "other")
	assert.ErrorIs(t, err, courier.ErrClosed)
	assert.ErrorIs(t, topic.Publish(ctxT(t), Payment{}), courier.ErrClosed)
	_, err = q.DeadLetters().Replay(ctxT(t))
	assert.ErrorIs(t, err, courier.ErrClosed)
}

func TestReplayAfterCloseLeavesAbandonedLettersAlone(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := newBus(t, courier.WithStopGrace(0))
		q := mustQueue[Order](t, b, "orders")
		release := make(chan struct{})
		started := make(chan struct{})
		require.NoError(t, q.Consume(func(_ context.Context, m *courier.Message[Order]) error {
			close(started)
			<-release
			_ = m.Attempt // the handler still owns its message
			return nil
		}))
		require.NoError(t, q.Send(t.Context(), Order{}))
		<-started
		require.Error(t, b.Close())
		n, err := q.DeadLetters().Replay(t.Context())
		assert.ErrorIs(t, err, courier.ErrClosed)
		assert.Zero(t, n)
		assert.Equal(t, 1, q.DeadLetters().Count())
		close(release)
		synctest.Wait()
	})
}

func TestConcurrentShutdownCalls(t *testing.T) {
	b := newBus(t)
	q := mustQueue[Order](t, b, "orders", courier.Workers(2))
	require.NoError(t, q.Consume(func(context.Context, *courier.Message[Order]) error { return nil }))
	for range 100 {
		require.NoError(t, q.Send(ctxT(t), Order{}))
	}
	errs := make(chan error, 3)
	go func() { errs <- b.Shutdown(ctxT(t)) }()
	go func() { errs <- b.Shutdown(ctxT(t)) }()
	go func() { errs <- b.Close() }()
	for range 3 {
		err := recv(t, errs)
		if err != nil {
			assert.ErrorIs(t, err, courier.ErrShutdownIncomplete)
		}
	}
	s := q.Stats()
	assert.EqualValues(t, 100, s.Handled+s.DeadLettered)
}
