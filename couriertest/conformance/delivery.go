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

// Every message sent is handled exactly once, with its body and metadata.
func testDelivery(t *testing.T, h *couriertest.Harness) {
	const n = 200
	q := queue(t, h, "items")
	var got tally[int]
	var ids tally[string]
	bad := make(chan string, n)
	require.NoError(t, q.Consume(func(_ context.Context, m *courier.Message[Item]) error {
		got.add(m.Body.N)
		ids.add(m.ID)
		switch {
		case m.Destination != "items" || m.Subscription != "":
			bad <- "destination " + m.Destination + "/" + m.Subscription
		case m.Attempt != 1:
			bad <- "attempt is not 1"
		case m.Header("tenant") != "acme":
			bad <- "header lost"
		case m.SentAt.IsZero() || m.ID == "" || m.CorrelationID != m.ID:
			bad <- "metadata incomplete"
		}
		return nil
	}, courier.Workers(4)))
	for i := range n {
		require.NoError(t, q.Send(ctx(t), Item{N: i}, courier.WithHeader("tenant", "acme")))
	}
	h.Settle()
	close(bad)
	for b := range bad {
		t.Error(b)
	}
	counts := got.snapshot()
	require.Len(t, counts, n)
	for i := range n {
		assert.Equal(t, 1, counts[i], "item %d", i)
	}
	assert.Len(t, ids.snapshot(), n, "message IDs are unique")
	s := q.Stats()
	assert.EqualValues(t, n, s.Sent)
	assert.EqualValues(t, n, s.Handled)
	assert.Zero(t, s.Depth+s.InFlight+s.Scheduled)
}

// Consumers of one queue compete: each message goes to one of them.
func testCompetingConsumers(t *testing.T, h *couriertest.Harness) {
	const n = 200
	q := queue(t, h, "items")
	var got tally[int]
	for range 2 {
		require.NoError(t, q.Consume(func(_ context.Context, m *courier.Message[Item]) error {
			got.add(m.Body.N)
			return nil
		}, courier.Workers(2)))
	}
	for i := range n {
		require.NoError(t, q.Send(ctx(t), Item{N: i}))
	}
	h.Settle()
	counts := got.snapshot()
	require.Len(t, counts, n)
	for i := range n {
		assert.Equal(t, 1, counts[i], "item %d handled once", i)
	}
}

// A message sent from a handler with its context inherits the correlation
// ID and names the handled message as its cause.
func testCorrelation(t *testing.T, h *couriertest.Harness) {
	first := queue(t, h, "first")
	second := queue(t, h, "second")
	require.NoError(t, first.Consume(func(ctx context.Context, m *courier.Message[Item]) error {
		return second.Send(ctx, m.Body)
	}))
	require.NoError(t, second.Consume(func(context.Context, *courier.Message[Item]) error { return nil }))
	require.NoError(t, first.Send(courier.WithCorrelationID(ctx(t), "flow-1"), Item{N: 1}))
	require.NoError(t, first.Send(ctx(t), Item{N: 2}))

	h.Settle()
	var one, two [2]*courier.Message[Item]
	for _, m := range couriertest.Consumed[Item](h) {
		i := 0
		if m.Destination == "second" {
			i = 1
		}
		if m.Body.N == 1 {
			one[i] = m
		} else {
			two[i] = m
		}
	}
	require.NotNil(t, one[0])
	require.NotNil(t, one[1])
	require.NotNil(t, two[0])
	require.NotNil(t, two[1])
	assert.Equal(t, "flow-1", one[0].CorrelationID)
	assert.Equal(t, "flow-1", one[1].CorrelationID)
	assert.Empty(t, one[0].CausationID)
	assert.Equal(t, one[0].ID, one[1].CausationID)
	assert.NotEqual(t, one[0].ID, one[1].ID)
	assert.Equal(t, two[0].ID, two[0].CorrelationID, "without one, the correlation ID is the first message's ID")
	assert.Equal(t, two[0].ID, two[1].CorrelationID)
}

// A delayed message is not handled before it is due.
func testDelayedDelivery(t *testing.T, h *couriertest.Harness) {
	q := queue(t, h, "items")
	handledAt := make(chan time.Time, 1)
	require.NoError(t, q.Consume(func(context.Context, *courier.Message[Item]) error {
		handledAt <- time.Now()
		return nil
	}))
	const delay = 30 * time.Millisecond
	require.NoError(t, q.Send(ctx(t), Item{N: 1}, courier.WithDelay(delay)))
	sent := couriertest.Sent[Item](h)
	require.Len(t, sent, 1)
	assert.Equal(t, sent[0].SentAt.Add(delay), sent[0].DeliverAt)
	h.Settle()
	at := <-handledAt
	assert.False(t, at.Before(sent[0].DeliverAt), "handled %v before it was due", sent[0].DeliverAt.Sub(at))
}

// A message whose time to live runs out before it is handled is
// dead-lettered as expired.
func testTimeToLive(t *testing.T, h *couriertest.Harness) {
	q := queue(t, h, "items")
	var handled atomic.Int32
	require.NoError(t, q.Consume(func(context.Context, *courier.Message[Item]) error {
		handled.Add(1)
		return nil
	}))
	require.NoError(t, q.Send(ctx(t), Item{N: 1}, courier.WithDelay(30*time.Millisecond), courier.WithTTL(10*time.Millisecond)))
	require.NoError(t, q.Send(ctx(t), Item{N: 2}, courier.WithTTL(time.Minute)))
	d := couriertest.RequireDeadLettered(t, h, func(it Item) bool { return it.N == 1 })
	assert.Equal(t, courier.ReasonExpired, d.Reason)
	assert.ErrorIs(t, d.Err, courier.ErrExpired)
	assert.EqualValues(t, 1, handled.Load())
	assert.EqualValues(t, 1, q.Stats().Expired)
}

// A full queue makes TrySend fail with ErrFull, and Send wait for room.
func testBackPressure(t *testing.T, h *couriertest.Harness) {
	q := queue(t, h, "items", courier.Capacity(2))
	require.NoError(t, q.TrySend(ctx(t), Item{N: 1}))
	require.NoError(t, q.TrySend(ctx(t), Item{N: 2}))
	require.ErrorIs(t, q.TrySend(ctx(t), Item{N: 3}), courier.ErrFull)
	short, cancel := context.WithTimeout(ctx(t), 20*time.Millisecond)
	defer cancel()
	require.ErrorIs(t, q.Send(short, Item{N: 3}), context.DeadlineExceeded)

	sent := make(chan error, 1)
	go func() { sent <- q.Send(ctx(t), Item{N: 4}) }() // waits for room
	require.NoError(t, q.Consume(func(context.Context, *courier.Message[Item]) error { return nil }))
	require.NoError(t, <-sent)
	couriertest.RequireConsumedN[Item](t, h, 3, nil)
}

// Bad arguments get their sentinel errors.
func testBadInput(t *testing.T, h *couriertest.Harness) {
	q := queue(t, h, "items")
	assert.ErrorIs(t, q.Consume(nil), courier.ErrNilHandler)
	_, err := courier.NewQueue[Item](h.Bus, "")
	assert.ErrorIs(t, err, courier.ErrEmptyName)
	_, err = courier.NewQueue[string](h.Bus, "items")
	assert.ErrorIs(t, err, courier.ErrTypeMismatch)
	_, err = courier.NewTopic[Item](h.Bus, "items")
	assert.ErrorIs(t, err, courier.ErrTypeMismatch)
	tp := topic(t, h, "events")
	ok := func(context.Context, *courier.Message[Item]) error { return nil }
	require.NoError(t, tp.Subscribe("a", ok))
	assert.ErrorIs(t, tp.Subscribe("a", ok), courier.ErrDuplicateSubscription)
	assert.ErrorIs(t, tp.Subscribe("", ok), courier.ErrEmptyName)
	assert.ErrorIs(t, tp.Subscribe("b", nil), courier.ErrNilHandler)
	_, err = tp.Subscription("nope")
	assert.ErrorIs(t, err, courier.ErrUnknownSubscription)
	assert.ErrorIs(t, q.Send(ctx(t), Item{}, courier.WithTTL(-time.Second)), courier.ErrInvalidOption)
	assert.True(t, errors.Is(q.Send(ctx(t), Item{}, courier.WithDelay(-time.Second)), courier.ErrInvalidOption))
}
