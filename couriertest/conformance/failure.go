package conformance

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/courierbus/courier"
	"github.com/courierbus/courier/couriertest"
)

var errFlaky = errors.New("conformance: flaky")

// A failed attempt is retried after the policy's backoff until it succeeds.
func testRetries(t *testing.T, h *couriertest.Harness) {
	q := queue(t, h, "items", fast(5))
	var mu sync.Mutex
	var at []time.Time
	require.NoError(t, q.Consume(func(_ context.Context, m *courier.Message[Item]) error {
		mu.Lock()
		at = append(at, time.Now())
		mu.Unlock()
		if m.Attempt < 3 {
			return errFlaky
		}
		return nil
	}))
	require.NoError(t, q.Send(ctx(t), Item{N: 1}))
	m := couriertest.RequireConsumed[Item](t, h, nil)
	assert.Equal(t, 3, m.Attempt)
	mu.Lock()
	defer mu.Unlock()
	require.Len(t, at, 3)
	assert.GreaterOrEqual(t, at[1].Sub(at[0]), 5*time.Millisecond, "first backoff")
	assert.GreaterOrEqual(t, at[2].Sub(at[1]), 10*time.Millisecond, "second backoff doubles")
	s := q.Stats()
	assert.EqualValues(t, 1, s.Handled)
	assert.EqualValues(t, 2, s.FailedAttempts)
	assert.EqualValues(t, 2, s.Retried)
	assert.Zero(t, s.DeadLettered)
}

// A message that fails every attempt ends in the dead-letter queue with its
// reason, error, attempts and body.
func testDeadLetterAfterMaxAttempts(t *testing.T, h *couriertest.Harness) {
	q := queue(t, h, "items", fast(3))
	var attempts atomic.Int32
	require.NoError(t, q.Consume(func(context.Context, *courier.Message[Item]) error {
		attempts.Add(1)
		return errFlaky
	}))
	require.NoError(t, q.Send(ctx(t), Item{N: 7, Text: "poison"}, courier.WithHeader("tenant", "acme")))
	sent := couriertest.RequireSent[Item](t, h, nil)
	d := couriertest.RequireDeadLettered[Item](t, h, nil)
	assert.EqualValues(t, 3, attempts.Load())
	assert.Equal(t, courier.ReasonMaxAttempts, d.Reason)
	assert.ErrorIs(t, d.Err, errFlaky)
	assert.Equal(t, 3, d.Attempts)
	assert.Equal(t, sent.ID, d.ID)
	assert.Equal(t, "acme", d.Header("tenant"))
	assert.Equal(t, "items", d.Destination)
	assert.False(t, d.FirstAttemptAt.After(d.LastAttemptAt))
	assert.NotEmpty(t, d.Description())

	list := q.DeadLetters().List()
	require.Len(t, list, 1)
	assert.Equal(t, Item{N: 7, Text: "poison"}, list[0].Body)
	assert.Equal(t, 1, q.DeadLetters().Count())
	s := q.Stats()
	assert.EqualValues(t, 1, s.DeadLettered)
	assert.Equal(t, 1, s.DeadLetters)
}

// A permanent error dead-letters the message without retries.
func testPermanentError(t *testing.T, h *couriertest.Harness) {
	q := queue(t, h, "items", fast(5))
	require.NoError(t, q.Consume(func(context.Context, *courier.Message[Item]) error {
		return courier.Permanent(errFlaky)
	}))
	require.NoError(t, q.Send(ctx(t), Item{N: 1}))
	d := couriertest.RequireDeadLettered[Item](t, h, nil)
	assert.Equal(t, courier.ReasonPermanent, d.Reason)
	assert.Equal(t, 1, d.Attempts)
	assert.ErrorIs(t, d.Err, errFlaky)
}

// A handler that panics fails its attempt; the worker lives on.
func testPanic(t *testing.T, h *couriertest.Harness) {
	q := queue(t, h, "items", fast(1))
	require.NoError(t, q.Consume(func(_ context.Context, m *courier.Message[Item]) error {
		if m.Body.N == 1 {
			panic("conformance: boom")
		}
		return nil
	}))
	require.NoError(t, q.Send(ctx(t), Item{N: 1}))
	require.NoError(t, q.Send(ctx(t), Item{N: 2}))
	d := couriertest.RequireDeadLettered(t, h, func(it Item) bool { return it.N == 1 })
	var pe *courier.PanicError
	require.ErrorAs(t, d.Err, &pe)
	assert.Equal(t, "conformance: boom", pe.Value)
	couriertest.RequireConsumed(t, h, func(it Item) bool { return it.N == 2 })
}

// Replaying a dead letter delivers the same message again, attempts counted
// from one, and empties the dead-letter queue.
func testReplay(t *testing.T, h *couriertest.Harness) {
	q := queue(t, h, "items", fast(2))
	var fixed atomic.Bool
	require.NoError(t, q.Consume(func(context.Context, *courier.Message[Item]) error {
		if !fixed.Load() {
			return errFlaky
		}
		return nil
	}))
	require.NoError(t, q.Send(ctx(t), Item{N: 1}, courier.WithKey("k")))
	d := couriertest.RequireDeadLettered[Item](t, h, nil)
	fixed.Store(true)
	n, err := q.DeadLetters().Replay(ctx(t))
	require.NoError(t, err)
	assert.Equal(t, 1, n)
	m := couriertest.RequireConsumed[Item](t, h, nil)
	assert.Equal(t, d.ID, m.ID)
	assert.Equal(t, d.CorrelationID, m.CorrelationID)
	assert.Equal(t, "k", m.Key)
	assert.Equal(t, 1, m.Attempt)
	assert.Zero(t, q.DeadLetters().Count())
	assert.EqualValues(t, 1, q.Stats().Replayed)
}
