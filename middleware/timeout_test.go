package middleware_test

import (
	"context"
	"errors"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/courierbus/courier"
	"github.com/courierbus/courier/middleware"
)

func TestTimeoutName(t *testing.T) {
	for _, d := range []time.Duration{-time.Second, 0, time.Second} {
		mw := middleware.Timeout(d)
		require.Equal(t, "timeout", mw.Name, "d=%v", d)
		require.NotNil(t, mw.Handle, "d=%v", d)
		require.Nil(t, mw.Send, "d=%v", d)
	}
}

func TestTimeoutExceeded(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const d = 5 * time.Second
		bus := newBus(t)
		bus.Use(middleware.Timeout(d))
		q := newQueue[string](t, bus, "jobs")

		var remaining, waited time.Duration
		var hasDeadline bool
		var cause error
		require.NoError(t, q.Consume(func(ctx context.Context, _ *courier.Message[string]) error {
			start := time.Now()
			var deadline time.Time
			deadline, hasDeadline = ctx.Deadline()
			remaining = deadline.Sub(start)
			<-ctx.Done()
			waited = time.Since(start)
			cause = context.Cause(ctx)
			return ctx.Err()
		}))
		require.NoError(t, q.Send(context.Background(), "slow"))
		shutdown(t, bus)

		require.True(t, hasDeadline)
		require.Equal(t, d, remaining, "the deadline is d after the attempt starts")
		require.Equal(t, d, waited)
		require.Equal(t, middleware.ErrTimeout, cause)

		dls := q.DeadLetters().List()
		require.Len(t, dls, 1)
		require.Equal(t, courier.ReasonMaxAttempts, dls[0].Reason)
		require.ErrorIs(t, dls[0].Err, middleware.ErrTimeout)
		require.ErrorIs(t, dls[0].Err, context.DeadlineExceeded)
		require.Equal(t, "middleware: handler timed out after 5s: context deadline exceeded", dls[0].Err.Error())
	})
}

func TestTimeoutWrapsHandlerError(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		errDB := errors.New("db unavailable")
		bus := newBus(t)
		bus.Use(middleware.Timeout(time.Second))
		q := newQueue[string](t, bus, "jobs")
		require.NoError(t, q.Consume(func(ctx context.Context, _ *courier.Message[string]) error {
			<-ctx.Done()
			return errDB // not the context's error, but still too late
		}))
		require.NoError(t, q.Send(context.Background(), "slow"))
		shutdown(t, bus)

		dls := q.DeadLetters().List()
		require.Len(t, dls, 1)
		require.ErrorIs(t, dls[0].Err, middleware.ErrTimeout)
		require.ErrorIs(t, dls[0].Err, errDB)
	})
}

func TestTimeoutErrorBeforeDeadline(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		errFail := errors.New("fail")
		bus := newBus(t)
		bus.Use(middleware.Timeout(time.Second))
		q := newQueue[string](t, bus, "jobs")
		require.NoError(t, q.Consume(func(context.Context, *courier.Message[string]) error {
			return errFail
		}))
		require.NoError(t, q.Send(context.Background(), "fast"))
		shutdown(t, bus)

		dls := q.DeadLetters().List()
		require.Len(t, dls, 1)
		require.Equal(t, errFail, dls[0].Err, "an error before the deadline is returned unchanged")
	})
}

func TestTimeoutSuccessAfterDeadline(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		bus := newBus(t)
		bus.Use(middleware.Timeout(time.Second))
		q := newQueue[string](t, bus, "jobs")
		require.NoError(t, q.Consume(func(ctx context.Context, _ *courier.Message[string]) error {
			<-ctx.Done()
			return nil // the work was done, late
		}))
		require.NoError(t, q.Send(context.Background(), "late"))
		shutdown(t, bus)

		require.EqualValues(t, 1, q.Stats().Handled)
		require.Empty(t, q.DeadLetters().List())
	})
}

// An earlier deadline that the handler's context already had (here the
// message's time to live) is not this middleware's timeout.
func TestTimeoutParentDeadlineIsNotTimeout(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		bus := newBus(t)
		bus.Use(middleware.Timeout(time.Minute))
		q := newQueue[string](t, bus, "jobs")
		var waited time.Duration
		require.NoError(t, q.Consume(func(ctx context.Context, _ *courier.Message[string]) error {
			start := time.Now()
			<-ctx.Done()
			waited = time.Since(start)
			return ctx.Err()
		}))
		require.NoError(t, q.Send(context.Background(), "ttl", courier.WithTTL(time.Second)))
		shutdown(t, bus)

		require.Equal(t, time.Second, waited)
		dls := q.DeadLetters().List()
		require.Len(t, dls, 1)
		require.ErrorIs(t, dls[0].Err, context.DeadlineExceeded)
		require.NotErrorIs(t, dls[0].Err, middleware.ErrTimeout)
	})
}

// A handler cancelled because the bus stops has not timed out.
func TestTimeoutCancelIsNotTimeout(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		bus := newBus(t)
		bus.Use(middleware.Timeout(time.Minute))
		q := newQueue[string](t, bus, "jobs")
		started := make(chan struct{})
		require.NoError(t, q.Consume(func(ctx context.Context, _ *courier.Message[string]) error {
			close(started)
			<-ctx.Done()
			return ctx.Err()
		}))
		require.NoError(t, q.Send(context.Background(), "stuck"))
		<-started
		_ = bus.Close() // Close cancels the handler's context

		dls := q.DeadLetters().List()
		require.Len(t, dls, 1)
		require.ErrorIs(t, dls[0].Err, context.Canceled)
		require.NotErrorIs(t, dls[0].Err, middleware.ErrTimeout)
	})
}

func TestTimeoutDisabled(t *testing.T) {
	for _, d := range []time.Duration{0, -time.Second} {
		t.Run(d.String(), func(t *testing.T) {
			errFail := errors.New("fail")
			bus := newBus(t)
			bus.Use(middleware.Timeout(d))
			q := newQueue[int](t, bus, "jobs")
			var hasDeadline bool
			require.NoError(t, q.Consume(func(ctx context.Context, _ *courier.Message[int]) error {
				_, hasDeadline = ctx.Deadline()
				return errFail
			}))
			require.NoError(t, q.Send(context.Background(), 1))
			shutdown(t, bus)

			require.False(t, hasDeadline, "Timeout(%v) must not set a deadline", d)
			dls := q.DeadLetters().List()
			require.Len(t, dls, 1)
			require.Equal(t, errFail, dls[0].Err)
		})
	}
}
