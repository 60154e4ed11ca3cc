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

func TestWaitIdleWaitsForRetriesInVirtualTime(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := newBus(t)
		q := mustQueue[Order](t, b, "orders", courier.WithRetry(courier.RetryPolicy{
			MaxAttempts: 6, InitialInterval: time.Minute, MaxInterval: time.Hour, Jitter: -1,
		}))
		var attempts atomic.Int32
		require.NoError(t, q.Consume(func(context.Context, *courier.Message[Order]) error {
			if attempts.Add(1) < 6 {
				return errors.New("not yet")
			}
			return nil
		}))
		start := time.Now()
		require.NoError(t, q.Send(t.Context(), Order{ID: "o-1"}))
		require.NoError(t, b.WaitIdle(t.Context()))
		assert.EqualValues(t, 6, attempts.Load(), "WaitIdle returned before the last retry")
		assert.Equal(t, (1+2+4+8+16)*time.Minute, time.Since(start), "virtual time covers the backoff")
		assert.EqualValues(t, 1, q.Stats().Handled)
	})
}

func TestWaitIdleWaitsForMultiHopFlow(t *testing.T) {
	b := newBus(t)
	first := mustQueue[Order](t, b, "first")
	second := mustQueue[Order](t, b, "second")
	var handled atomic.Int32
	require.NoError(t, first.Consume(func(ctx context.Context, m *courier.Message[Order]) error {
		return second.Send(ctx, m.Body)
	}, courier.Workers(2)))
	require.NoError(t, second.Consume(func(context.Context, *courier.Message[Order]) error {
		handled.Add(1)
		return nil
	}))
	for i := range 100 {
		require.NoError(t, first.Send(ctxT(t), Order{Seq: i}))
	}
	require.NoError(t, b.WaitIdle(ctxT(t)))
	assert.EqualValues(t, 100, handled.Load())
}

func TestWaitIdleIgnoresQueuesWithoutConsumer(t *testing.T) {
	b := newBus(t)
	q := mustQueue[Order](t, b, "orphan")
	require.NoError(t, q.Send(ctxT(t), Order{}))
	require.NoError(t, b.WaitIdle(ctxT(t)))
	assert.Equal(t, 1, q.Stats().Depth)
}

func TestWaitIdleReportsWhatIsPendingOnDeadline(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := newBus(t)
		q := mustQueue[Order](t, b, "orders")
		release := make(chan struct{})
		require.NoError(t, q.Consume(func(context.Context, *courier.Message[Order]) error {
			<-release
			return nil
		}))
		require.NoError(t, q.Send(t.Context(), Order{}))
		require.NoError(t, q.Send(t.Context(), Order{}, courier.WithDelay(time.Hour)))
		synctest.Wait() // the worker is in the handler
		// Not looked at by the busy worker yet, but ready all the same.
		require.NoError(t, q.Send(t.Context(), Order{}))
		require.NoError(t, q.Send(t.Context(), Order{}))
		ctx, cancel := context.WithTimeout(t.Context(), time.Second)
		defer cancel()
		err := b.WaitIdle(ctx)
		require.ErrorIs(t, err, context.DeadlineExceeded)
		assert.Contains(t, err.Error(), `queue "orders": 2 ready, 1 in flight, 1 scheduled`)
		close(release)
		require.NoError(t, b.WaitIdle(t.Context()))
	})
}

func TestWaitIdleWakesEveryWaiter(t *testing.T) {
	b := newBus(t)
	q := mustQueue[Order](t, b, "orders")
	release := make(chan struct{})
	require.NoError(t, q.Consume(func(context.Context, *courier.Message[Order]) error {
		<-release
		return nil
	}))
	require.NoError(t, q.Send(ctxT(t), Order{}))
	errs := make(chan error, 3)
	for range 3 {
		go func() { errs <- b.WaitIdle(ctxT(t)) }()
	}
	close(release)
	for range 3 {
		require.NoError(t, recv(t, errs))
	}
}

func TestRetryHookSeesEveryRetryAndNotTheDeadLetter(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var retries []courier.RetryInfo
		var dead []courier.DeadLetterInfo
		var second int
		b := newBus(t,
			courier.WithRetryHook(func(r courier.RetryInfo) { retries = append(retries, r) }),
			courier.WithDeadLetterHook(func(d courier.DeadLetterInfo) { dead = append(dead, d) }),
			courier.WithDeadLetterHook(func(courier.DeadLetterInfo) { second++ }),
			courier.WithRetryHook(func(courier.RetryInfo) { panic("a broken hook") }),
		)
		q := mustQueue[Order](t, b, "orders", courier.WithRetry(courier.RetryPolicy{
			MaxAttempts: 3, InitialInterval: time.Second, Jitter: -1,
		}))
		boom := errors.New("boom")
		require.NoError(t, q.Consume(func(context.Context, *courier.Message[Order]) error { return boom }))
		require.NoError(t, q.Send(t.Context(), Order{ID: "o-1"}, courier.WithHeader("h", "v")))
		require.NoError(t, b.WaitIdle(t.Context()))
		require.Len(t, retries, 2)
		assert.Equal(t, 1, retries[0].Attempt)
		assert.Equal(t, time.Second, retries[0].Delay)
		assert.Equal(t, 2, retries[1].Attempt)
		assert.Equal(t, 2*time.Second, retries[1].Delay)
		assert.ErrorIs(t, retries[1].Err, boom)
		assert.Equal(t, "v", retries[1].Header("h"))
		assert.Equal(t, "orders", retries[0].Destination)
		require.Len(t, dead, 1, "every dead-letter hook runs")
		assert.Equal(t, 1, second)
		assert.Equal(t, courier.ReasonMaxAttempts, dead[0].Reason)
	})
}

func TestWillRetryAgreesWithTheEngine(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		type verdict struct {
			attempt int
			retry   bool
		}
		var got []verdict
		probe := courier.Middleware{Handle: func(next courier.HandlerFunc) courier.HandlerFunc {
			return func(ctx context.Context, env courier.Envelope) error {
				err := next(ctx, env)
				got = append(got, verdict{env.Meta().Attempt, courier.WillRetry(ctx, err)})
				return err
			}
		}}
		b := newBus(t)
		q := mustQueue[Order](t, b, "orders", courier.WithMiddleware(probe),
			courier.WithRetry(courier.RetryPolicy{MaxAttempts: 3, InitialInterval: time.Second}))
		require.NoError(t, q.Consume(func(_ context.Context, m *courier.Message[Order]) error {
			switch {
			case m.Body.ID == "ok":
				return nil
			case m.Body.ID == "permanent":
				return courier.Permanent(errors.New("bad"))
			}
			return errors.New("transient")
		}))
		for _, id := range []string{"ok", "permanent", "transient"} {
			require.NoError(t, q.Send(t.Context(), Order{ID: id}))
			require.NoError(t, b.WaitIdle(t.Context()))
		}
		assert.Equal(t, []verdict{{1, false}, {1, false}, {1, true}, {2, true}, {3, false}}, got)
		assert.False(t, courier.WillRetry(t.Context(), errors.New("not a handler")))
	})
}

func TestFailureOutcomeGivesTheReason(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		type outcome struct {
			retry  bool
			reason courier.Reason
		}
		var got []outcome
		probe := courier.Middleware{Handle: func(next courier.HandlerFunc) courier.HandlerFunc {
			return func(ctx context.Context, env courier.Envelope) error {
				err := next(ctx, env)
				retry, reason := courier.FailureOutcome(ctx, err)
				got = append(got, outcome{retry, reason})
				return err
			}
		}}
		b := newBus(t)
		q := mustQueue[Order](t, b, "orders", courier.WithMiddleware(probe),
			courier.WithRetry(courier.RetryPolicy{MaxAttempts: 2, InitialInterval: time.Hour, Jitter: -1}))
		require.NoError(t, q.Consume(func(_ context.Context, m *courier.Message[Order]) error {
			switch m.Body.ID {
			case "ok":
				return nil
			case "permanent":
				return courier.Permanent(errors.New("bad"))
			}
			return errors.New("transient")
		}))
		require.NoError(t, q.Send(t.Context(), Order{ID: "ok"}))
		require.NoError(t, q.Send(t.Context(), Order{ID: "permanent"}))
		require.NoError(t, q.Send(t.Context(), Order{ID: "transient"}))
		require.NoError(t, q.Send(t.Context(), Order{ID: "short-lived"}, courier.WithTTL(time.Minute)))
		require.NoError(t, b.WaitIdle(t.Context()))
		assert.Equal(t, []outcome{
			{false, ""}, {false, courier.ReasonPermanent}, {true, ""}, {false, courier.ReasonExpired},
			{false, courier.ReasonMaxAttempts},
		}, got)
		retry, reason := courier.FailureOutcome(t.Context(), errors.New("not a handler"))
		assert.False(t, retry)
		assert.Empty(t, reason)
	})
}

func TestWillRetryIsFalseWhenTheRetryWouldComeAfterExpiry(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		verdicts := make(chan bool, 1)
		probe := courier.Middleware{Handle: func(next courier.HandlerFunc) courier.HandlerFunc {
			return func(ctx context.Context, env courier.Envelope) error {
				err := next(ctx, env)
				verdicts <- courier.WillRetry(ctx, err)
				return err
			}
		}}
		b := newBus(t)
		q := mustQueue[Order](t, b, "orders", courier.WithMiddleware(probe),
			courier.WithRetry(courier.RetryPolicy{InitialInterval: time.Hour, Jitter: -1}))
		require.NoError(t, q.Consume(func(context.Context, *courier.Message[Order]) error { return errors.New("x") }))
		require.NoError(t, q.Send(t.Context(), Order{}, courier.WithTTL(time.Minute)))
		assert.False(t, <-verdicts)
		require.NoError(t, b.WaitIdle(t.Context()))
		dl := q.DeadLetters().List()
		require.Len(t, dl, 1)
		assert.Equal(t, courier.ReasonExpired, dl[0].Reason)
	})
}

func TestWaitIdleWaitsForHooks(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		release := make(chan struct{})
		var hooked atomic.Int32
		b := newBus(t,
			courier.WithRetryHook(func(courier.RetryInfo) { <-release; hooked.Add(1) }),
			courier.WithDeadLetterHook(func(courier.DeadLetterInfo) { <-release; hooked.Add(1) }))
		q := mustQueue[Order](t, b, "orders", courier.WithRetry(courier.RetryPolicy{MaxAttempts: 2, InitialInterval: time.Millisecond}))
		require.NoError(t, q.Consume(func(context.Context, *courier.Message[Order]) error { return errors.New("x") }))
		require.NoError(t, q.Send(t.Context(), Order{}))
		idle := make(chan error, 1)
		go func() { idle <- b.WaitIdle(t.Context()) }()
		for range 2 {
			synctest.Wait()
			select {
			case <-idle:
				t.Fatal("WaitIdle returned while a hook was running")
			default:
			}
			release <- struct{}{}
		}
		require.NoError(t, <-idle)
		assert.EqualValues(t, 2, hooked.Load())
	})
}
