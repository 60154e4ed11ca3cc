package middleware_test

import (
	"context"
	"errors"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/courierbus/courier"
	"github.com/courierbus/courier/middleware"
)

// observer is a middleware that records what the chain inside it returned,
// and whether a panic unwound through it.
type observer struct {
	mu       sync.Mutex
	errs     []error
	panicked bool
}

func (o *observer) middleware() courier.Middleware {
	return courier.Middleware{
		Name: "observer",
		Handle: func(next courier.HandlerFunc) courier.HandlerFunc {
			return func(ctx context.Context, env courier.Envelope) error {
				finished := false
				defer func() {
					if !finished {
						o.mu.Lock()
						o.panicked = true
						o.mu.Unlock()
					}
				}()
				err := next(ctx, env)
				finished = true
				o.mu.Lock()
				o.errs = append(o.errs, err)
				o.mu.Unlock()
				return err
			}
		},
	}
}

func TestRecoverName(t *testing.T) {
	mw := middleware.Recover()
	require.Equal(t, "recover", mw.Name)
	require.NotNil(t, mw.Handle)
	require.Nil(t, mw.Send)
}

func TestRecoverTurnsPanicIntoError(t *testing.T) {
	bus := newBus(t)
	obs := &observer{}
	bus.Use(obs.middleware(), middleware.Recover())
	q := newQueue[string](t, bus, "jobs")
	require.NoError(t, q.Consume(func(ctx context.Context, m *courier.Message[string]) error {
		panic("boom: " + m.Body)
	}))
	require.NoError(t, q.Send(context.Background(), "42"))
	shutdown(t, bus)

	// The outer middleware saw an error, not a panic.
	require.False(t, obs.panicked, "a panic unwound through the middleware outside Recover")
	require.Len(t, obs.errs, 1)
	var seen *courier.PanicError
	require.ErrorAs(t, obs.errs[0], &seen)
	require.Equal(t, "boom: 42", seen.Value)

	// The message failed like after any error.
	dls := q.DeadLetters().List()
	require.Len(t, dls, 1)
	require.Equal(t, courier.ReasonMaxAttempts, dls[0].Reason)
	require.Equal(t, 1, dls[0].Attempts)
	var pe *courier.PanicError
	require.ErrorAs(t, dls[0].Err, &pe)
	require.Equal(t, "boom: 42", pe.Value)
	require.NotEmpty(t, pe.Stack)
	// The stack shows the panic site, and was taken by Recover rather than by
	// the bus's own recovery: NewPanicError's caller is in recover.go.
	require.Contains(t, string(pe.Stack), "TestRecoverTurnsPanicIntoError")
	require.Regexp(t, `courier\.NewPanicError\(.*\n\t.*\n.*\n\t.*/middleware/recover\.go:\d+`, string(pe.Stack))
}

func TestRecoverPanicWithError(t *testing.T) {
	errCause := errors.New("cause")
	bus := newBus(t)
	bus.Use(middleware.Recover())
	q := newQueue[int](t, bus, "jobs")
	require.NoError(t, q.Consume(func(context.Context, *courier.Message[int]) error {
		panic(errCause)
	}))
	require.NoError(t, q.Send(context.Background(), 1))
	shutdown(t, bus)

	dls := q.DeadLetters().List()
	require.Len(t, dls, 1)
	var pe *courier.PanicError
	require.ErrorAs(t, dls[0].Err, &pe)
	require.ErrorIs(t, dls[0].Err, errCause)
}

func TestRecoverPassesThroughWithoutPanic(t *testing.T) {
	errFail := errors.New("fail")
	bus := newBus(t)
	obs := &observer{}
	bus.Use(obs.middleware(), middleware.Recover())
	q := newQueue[int](t, bus, "jobs")
	require.NoError(t, q.Consume(func(_ context.Context, m *courier.Message[int]) error {
		if m.Body == 0 {
			return errFail
		}
		return nil
	}))
	require.NoError(t, q.Send(context.Background(), 0))
	require.NoError(t, q.Send(context.Background(), 1))
	shutdown(t, bus)

	require.Equal(t, []error{errFail, nil}, obs.errs)
	require.EqualValues(t, 1, q.Stats().Handled)
	dls := q.DeadLetters().List()
	require.Len(t, dls, 1)
	require.Equal(t, errFail, dls[0].Err)
}
