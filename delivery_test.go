package courier_test

import (
	"context"
	"errors"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/courierbus/courier"
)

func TestSendConsumeDeliversBodyAndMetadata(t *testing.T) {
	b := newBus(t)
	q := mustQueue[Order](t, b, "orders")
	got := make(chan *courier.Message[Order], 1)
	require.NoError(t, q.Consume(func(_ context.Context, m *courier.Message[Order]) error {
		cp := *m
		got <- &cp
		return nil
	}))
	require.NoError(t, q.Send(ctxT(t), Order{ID: "o-1"}, courier.WithHeader("tenant", "acme")))
	m := recv(t, got)
	assert.Equal(t, "o-1", m.Body.ID)
	assert.Equal(t, "orders", m.Destination)
	assert.Empty(t, m.Subscription)
	assert.Equal(t, 1, m.Attempt)
	assert.Equal(t, "acme", m.Header("tenant"))
	assert.False(t, m.SentAt.IsZero())
	require.NoError(t, b.Shutdown(ctxT(t)))
	assert.EqualValues(t, 1, q.Stats().Handled)
	assert.EqualValues(t, 1, q.Stats().Sent)
}

func TestErrorIsRetriedUntilSuccess(t *testing.T) {
	b := newBus(t)
	q := mustQueue[Order](t, b, "orders", courier.WithRetry(courier.RetryPolicy{InitialInterval: time.Millisecond}))
	var attempts []int
	done := make(chan struct{})
	require.NoError(t, q.Consume(func(_ context.Context, m *courier.Message[Order]) error {
		attempts = append(attempts, m.Attempt) // one worker: no race
		if m.Attempt < 3 {
			return errors.New("transient")
		}
		close(done)
		return nil
	}))
	require.NoError(t, q.Send(ctxT(t), Order{ID: "o-1"}))
	recv(t, done)
	require.NoError(t, b.Shutdown(ctxT(t)))
	assert.Equal(t, []int{1, 2, 3}, attempts)
	s := q.Stats()
	assert.EqualValues(t, 1, s.Handled)
	assert.EqualValues(t, 2, s.FailedAttempts)
	assert.EqualValues(t, 2, s.Retried)
	assert.EqualValues(t, 0, s.DeadLettered)
}

func TestMaxAttemptsDeadLetters(t *testing.T) {
	sink, hook := newDeadSink()
	b := newBus(t, hook)
	q := mustQueue[Order](t, b, "orders", courier.WithRetry(courier.RetryPolicy{MaxAttempts: 3, InitialInterval: time.Millisecond}))
	var calls atomic.Int32
	require.NoError(t, q.Consume(func(context.Context, *courier.Message[Order]) error {
		calls.Add(1)
		return errors.New("still broken")
	}))
	require.NoError(t, q.Send(ctxT(t), Order{ID: "o-1"}, courier.WithHeader("k", "v")))
	d := sink.next(t)
	assert.Equal(t, courier.ReasonMaxAttempts, d.Reason)
	assert.Equal(t, 3, d.Attempts)
	assert.EqualError(t, d.Err, "still broken")
	assert.Equal(t, "v", d.Header("k"))
	assert.False(t, d.FirstAttemptAt.IsZero())
	assert.False(t, d.LastAttemptAt.Before(d.FirstAttemptAt))
	assert.EqualValues(t, 3, calls.Load())
	assert.Equal(t, Order{ID: "o-1"}, d.Payload())
	assert.Contains(t, d.Description(), "max_attempts")
}

func TestPermanentSkipsRetries(t *testing.T) {
	sink, hook := newDeadSink()
	b := newBus(t, hook)
	q := mustQueue[Order](t, b, "orders")
	cause := errors.New("invalid order")
	require.NoError(t, q.Consume(func(context.Context, *courier.Message[Order]) error {
		return courier.Permanent(cause)
	}))
	require.NoError(t, q.Send(ctxT(t), Order{}))
	d := sink.next(t)
	assert.Equal(t, courier.ReasonPermanent, d.Reason)
	assert.Equal(t, 1, d.Attempts)
	assert.ErrorIs(t, d.Err, cause)
	assert.True(t, courier.IsPermanent(d.Err))
	assert.Nil(t, courier.Permanent(nil))
}

func TestPanicBecomesPanicError(t *testing.T) {
	sink, hook := newDeadSink()
	b := newBus(t, hook)
	q := mustQueue[Order](t, b, "orders", courier.WithRetry(courier.RetryPolicy{MaxAttempts: 2, InitialInterval: time.Millisecond}))
	require.NoError(t, q.Consume(func(context.Context, *courier.Message[Order]) error { panic("kaboom") }))
	require.NoError(t, q.Send(ctxT(t), Order{}))
	d := sink.next(t)
	assert.Equal(t, courier.ReasonMaxAttempts, d.Reason)
	assert.Equal(t, 2, d.Attempts)
	var pe *courier.PanicError
	require.ErrorAs(t, d.Err, &pe)
	assert.Equal(t, "kaboom", pe.Value)
	assert.Contains(t, string(pe.Stack), "delivery_test.go")
	// The worker survived the panics and still serves the queue.
	assert.Equal(t, 2, int(q.Stats().FailedAttempts))
}

func TestPanicErrorUnwrapsErrorValue(t *testing.T) {
	cause := errors.New("cause")
	assert.ErrorIs(t, courier.NewPanicError(cause), cause)
	assert.NoError(t, courier.NewPanicError("text").Unwrap())
}

func TestRetryScheduleFollowsPolicy(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		sink, hook := newDeadSink()
		b := newBus(t, hook)
		q := mustQueue[Order](t, b, "orders", courier.WithRetry(courier.RetryPolicy{
			MaxAttempts: 6, InitialInterval: time.Second, MaxInterval: 5 * time.Second, Multiplier: 2, Jitter: -1,
		}))
		var times []time.Time
		require.NoError(t, q.Consume(func(context.Context, *courier.Message[Order]) error {
			times = append(times, time.Now())
			return errors.New("fail")
		}))
		require.NoError(t, q.Send(t.Context(), Order{}))
		d := sink.next(t)
		assert.Equal(t, courier.ReasonMaxAttempts, d.Reason)
		require.Len(t, times, 6)
		var gaps []time.Duration
		for i := 1; i < len(times); i++ {
			gaps = append(gaps, times[i].Sub(times[i-1]))
		}
		s := time.Second
		assert.Equal(t, []time.Duration{1 * s, 2 * s, 4 * s, 5 * s, 5 * s}, gaps)
		require.NoError(t, b.Shutdown(t.Context()))
	})
}

func TestRetryJitterStaysInBounds(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		sink, hook := newDeadSink()
		b := newBus(t, hook)
		q := mustQueue[Order](t, b, "orders", courier.WithRetry(courier.RetryPolicy{
			MaxAttempts: 2, InitialInterval: 10 * time.Second, Jitter: 0.5,
		}))
		var mu sync.Mutex
		first := map[string]time.Time{}
		var gaps []time.Duration
		require.NoError(t, q.Consume(func(_ context.Context, m *courier.Message[Order]) error {
			mu.Lock()
			defer mu.Unlock()
			if m.Attempt == 1 {
				first[m.ID] = time.Now()
			} else {
				gaps = append(gaps, time.Since(first[m.ID]))
			}
			return errors.New("fail")
		}), courier.Workers(4))
		for range 50 {
			require.NoError(t, q.Send(t.Context(), Order{}))
		}
		for range 50 {
			sink.next(t)
		}
		require.Len(t, gaps, 50)
		distinct := map[time.Duration]bool{}
		for _, g := range gaps {
			assert.GreaterOrEqual(t, g, 5*time.Second)
			assert.LessOrEqual(t, g, 15*time.Second)
			distinct[g] = true
		}
		assert.Greater(t, len(distinct), 10, "jitter should spread retries")
		require.NoError(t, b.Shutdown(t.Context()))
	})
}

func TestWaitingRetryHoldsNoWorkerNorGoroutine(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := newBus(t)
		q := mustQueue[Order](t, b, "orders", courier.Capacity(2000),
			courier.WithRetry(courier.RetryPolicy{MaxAttempts: 2, InitialInterval: time.Hour, Jitter: -1}))
		handled := make(chan int, 2000)
		require.NoError(t, q.Consume(func(_ context.Context, m *courier.Message[Order]) error {
			if m.Body.ID == "fail" && m.Attempt == 1 {
				return errors.New("later")
			}
			handled <- m.Body.Seq
			return nil
		})) // one worker
		synctest.Wait()
		before := runtime.NumGoroutine()
		for i := range 1000 {
			require.NoError(t, q.Send(t.Context(), Order{ID: "fail", Seq: i}))
		}
		synctest.Wait()
		assert.Equal(t, 1000, q.Stats().Scheduled)
		// NumGoroutine counts the whole process, where an earlier test's
		// goroutine may still be on its way out: allow a few, not 1000.
		assert.Less(t, runtime.NumGoroutine()-before, 10, "waiting retries must not cost goroutines")
		// The single worker is free for new work while 1000 retries wait.
		require.NoError(t, q.Send(t.Context(), Order{ID: "ok", Seq: -1}))
		assert.Equal(t, -1, recv(t, handled))
		require.NoError(t, b.Shutdown(t.Context())) // waits an hour of virtual time for the retries
		assert.EqualValues(t, 1001, q.Stats().Handled)
	})
}

func TestHandlerContextCarriesTTLDeadline(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := newBus(t)
		q := mustQueue[Order](t, b, "orders")
		deadline := make(chan time.Time, 1)
		require.NoError(t, q.Consume(func(ctx context.Context, m *courier.Message[Order]) error {
			dl, ok := ctx.Deadline()
			assert.True(t, ok)
			assert.Equal(t, m.ExpiresAt, dl)
			deadline <- dl
			return nil
		}))
		start := time.Now()
		require.NoError(t, q.Send(t.Context(), Order{}, courier.WithTTL(time.Minute)))
		assert.Equal(t, start.Add(time.Minute), recv(t, deadline))
		require.NoError(t, b.Shutdown(t.Context()))
	})
}

func TestTTLExpiresWaitingMessage(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		sink, hook := newDeadSink()
		b := newBus(t, hook)
		q := mustQueue[Order](t, b, "orders")
		release := make(chan struct{})
		var handled []string
		require.NoError(t, q.Consume(func(_ context.Context, m *courier.Message[Order]) error {
			if m.Body.ID == "blocker" {
				<-release
			}
			handled = append(handled, m.Body.ID)
			return nil
		}))
		require.NoError(t, q.Send(t.Context(), Order{ID: "blocker"}))
		require.NoError(t, q.Send(t.Context(), Order{ID: "short"}, courier.WithTTL(time.Second)))
		require.NoError(t, q.Send(t.Context(), Order{ID: "long"}, courier.WithTTL(time.Hour)))
		time.Sleep(2 * time.Second) // virtual time: let the short TTL run out
		close(release)
		d := sink.next(t)
		assert.Equal(t, courier.ReasonExpired, d.Reason)
		assert.ErrorIs(t, d.Err, courier.ErrExpired)
		assert.Equal(t, Order{ID: "short"}, d.Payload())
		assert.Equal(t, 0, d.Attempts)
		require.NoError(t, b.Shutdown(t.Context()))
		assert.Equal(t, []string{"blocker", "long"}, handled)
		assert.EqualValues(t, 1, q.Stats().Expired)
	})
}

func TestTTLExpiresDuringRetryWait(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		sink, hook := newDeadSink()
		b := newBus(t, hook)
		q := mustQueue[Order](t, b, "orders", courier.WithRetry(courier.RetryPolicy{InitialInterval: time.Hour, Jitter: -1}))
		require.NoError(t, q.Consume(func(context.Context, *courier.Message[Order]) error { return errors.New("fail") }))
		start := time.Now()
		require.NoError(t, q.Send(t.Context(), Order{}, courier.WithTTL(time.Minute)))
		d := sink.next(t)
		assert.Equal(t, courier.ReasonExpired, d.Reason)
		assert.Equal(t, 1, d.Attempts)
		assert.Equal(t, start.Add(time.Minute), d.DeadLetteredAt, "dead-lettered when the TTL ran out, not at the retry")
		require.NoError(t, b.Shutdown(t.Context()))
	})
}

func TestDelayedDelivery(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := newBus(t)
		q := mustQueue[Order](t, b, "orders")
		at := make(chan time.Time, 3)
		require.NoError(t, q.Consume(func(context.Context, *courier.Message[Order]) error {
			at <- time.Now()
			return nil
		}))
		start := time.Now()
		require.NoError(t, q.Send(t.Context(), Order{}, courier.WithDelay(time.Minute)))
		require.NoError(t, q.Send(t.Context(), Order{}, courier.WithDeliverAt(start.Add(30*time.Second))))
		require.NoError(t, q.Send(t.Context(), Order{}, courier.WithDeliverAt(start.Add(-time.Hour))))
		synctest.Wait()
		assert.Equal(t, 2, q.Stats().Scheduled)
		assert.Equal(t, start, recv(t, at))
		assert.Equal(t, start.Add(30*time.Second), recv(t, at))
		assert.Equal(t, start.Add(time.Minute), recv(t, at))
		require.NoError(t, b.Shutdown(t.Context()))
	})
}
