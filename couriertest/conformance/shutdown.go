package conformance

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/courierbus/courier"
	"github.com/courierbus/courier/couriertest"
)

// Shutdown handles every message accepted before it, then refuses new ones.
func testShutdownDrains(t *testing.T, h *couriertest.Harness) {
	const n = 100
	q := queue(t, h, "items")
	var handled atomic.Int32
	require.NoError(t, q.Consume(func(context.Context, *courier.Message[Item]) error {
		handled.Add(1)
		return nil
	}, courier.Workers(2)))
	for i := range n {
		require.NoError(t, q.Send(ctx(t), Item{N: i}, courier.WithDelay(time.Duration(i%3)*time.Millisecond)))
	}
	require.NoError(t, h.Bus.Shutdown(ctx(t)))
	assert.EqualValues(t, n, handled.Load())
	assert.ErrorIs(t, q.Send(ctx(t), Item{}), courier.ErrClosed)
	_, err := courier.NewQueue[Item](h.Bus, "later")
	assert.ErrorIs(t, err, courier.ErrClosed)
	assert.ErrorIs(t, q.Consume(func(context.Context, *courier.Message[Item]) error { return nil }), courier.ErrClosed)
}

// A shutdown cut short dead-letters what it could not deliver (in memory) or
// leaves it in the broker (over a durable transport), counts it, and loses
// nothing: every accepted message is handled, dead-lettered or left.
func testShutdownAccounting(t *testing.T, h *couriertest.Harness) {
	const n = 10
	h.ExpectDeadLetters(func(d courier.DeadLetterInfo) bool { return d.Reason == courier.ReasonShutdown })
	q := queue(t, h, "items")
	started := make(chan struct{}, n)
	var handled atomic.Int32
	require.NoError(t, q.Consume(func(ctx context.Context, m *courier.Message[Item]) error {
		started <- struct{}{}
		if m.Body.N == 0 {
			<-ctx.Done() // holds the only worker until the bus stops
			return ctx.Err()
		}
		handled.Add(1)
		return nil
	}))
	for i := range n {
		require.NoError(t, q.Send(ctx(t), Item{N: i}))
	}
	<-started
	short, cancel := context.WithTimeout(ctx(t), 20*time.Millisecond)
	defer cancel()
	err := h.Bus.Shutdown(short)
	var se *courier.ShutdownError
	require.True(t, errors.As(err, &se), "Shutdown returned %v", err)
	assert.ErrorIs(t, err, courier.ErrShutdownIncomplete)
	assert.ErrorIs(t, err, context.DeadlineExceeded)
	dead := q.DeadLetters().List()
	assert.Equal(t, se.DeadLettered, len(dead))
	// In memory nothing is left; a durable transport keeps what the stop
	// did not handle for the next consumer, and the broker counts it.
	s := q.Stats()
	left := s.Depth + s.InFlight + s.Scheduled
	assert.Equal(t, n, int(handled.Load())+len(dead)+left, "handled + dead-lettered + left in the broker = sent")
	for _, d := range dead {
		assert.Equal(t, courier.ReasonShutdown, d.Reason)
	}
	assert.Zero(t, se.Abandoned, "the handler returned when its context was cancelled")
}
