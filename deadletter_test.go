package courier_test

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/courierbus/courier"
)

// poisonQueue makes a queue whose handler fails permanently on orders whose
// ID starts with "bad" until fixed is set, and reports handled orders on the
// returned channel.
func poisonQueue(t *testing.T, b *courier.Bus, fixed *atomic.Bool, opts ...courier.Option) (*courier.Queue[Order], chan *courier.Message[Order]) {
	t.Helper()
	q := mustQueue[Order](t, b, "orders", opts...)
	handled := make(chan *courier.Message[Order], 100)
	require.NoError(t, q.Consume(func(_ context.Context, m *courier.Message[Order]) error {
		if !fixed.Load() && len(m.Body.ID) >= 3 && m.Body.ID[:3] == "bad" {
			return courier.Permanent(errors.New("cannot parse " + m.Body.ID))
		}
		cp := *m
		handled <- &cp
		return nil
	}))
	return q, handled
}

func TestDeadLetterQueueListAndReplay(t *testing.T) {
	sink, hook := newDeadSink()
	b := newBus(t, hook)
	var fixed atomic.Bool
	q, handled := poisonQueue(t, b, &fixed)
	ctx := ctxT(t)
	require.NoError(t, q.Send(ctx, Order{ID: "bad-1"}, courier.WithKey("k"), courier.WithHeader("h", "1")))
	require.NoError(t, q.Send(ctx, Order{ID: "bad-2"}))
	first, second := sink.next(t), sink.next(t)

	dlq := q.DeadLetters()
	require.Equal(t, 2, dlq.Count())
	list := dlq.List()
	require.Len(t, list, 2)
	assert.Equal(t, "bad-1", list[0].Body.ID, "oldest first")
	assert.Equal(t, first.ID, list[0].ID)
	assert.Equal(t, courier.ReasonPermanent, list[0].Reason)
	assert.Equal(t, "k", list[0].Key)
	assert.Equal(t, "1", list[0].Headers["h"])
	assert.Equal(t, "orders", list[0].Destination)
	assert.EqualError(t, list[0].Err, "cannot parse bad-1")
	assert.Equal(t, second.ID, list[1].ID)

	fixed.Store(true)
	n, err := dlq.ReplayIf(ctx, func(d courier.DeadLetter[Order]) bool { return d.Body.ID == "bad-2" })
	require.NoError(t, err)
	assert.Equal(t, 1, n)
	m := recv(t, handled)
	assert.Equal(t, "bad-2", m.Body.ID)
	assert.Equal(t, second.ID, m.ID, "a replay is the same message")
	assert.Equal(t, second.CorrelationID, m.CorrelationID)
	assert.Equal(t, 1, m.Attempt, "attempts start over")
	assert.Equal(t, 1, dlq.Count())

	n, err = dlq.Replay(ctx)
	require.NoError(t, err)
	assert.Equal(t, 1, n)
	m = recv(t, handled)
	assert.Equal(t, "bad-1", m.Body.ID)
	assert.Equal(t, "1", m.Header("h"))
	assert.Equal(t, 0, dlq.Count())
	require.NoError(t, b.Shutdown(ctx))
	s := q.Stats()
	assert.EqualValues(t, 2, s.Replayed)
	assert.EqualValues(t, 2, s.Handled)
	assert.EqualValues(t, 2, s.DeadLettered)
}

func TestDeadLetterQueuePurge(t *testing.T) {
	sink, hook := newDeadSink()
	b := newBus(t, hook)
	var fixed atomic.Bool
	q, _ := poisonQueue(t, b, &fixed)
	for _, id := range []string{"bad-a", "bad-b", "bad-c"} {
		require.NoError(t, q.Send(ctxT(t), Order{ID: id}))
		sink.next(t)
	}
	n := q.DeadLetters().PurgeIf(func(d courier.DeadLetter[Order]) bool { return d.Body.ID == "bad-b" })
	assert.Equal(t, 1, n)
	ids := []string{}
	for _, d := range q.DeadLetters().List() {
		ids = append(ids, d.Body.ID)
	}
	assert.Equal(t, []string{"bad-a", "bad-c"}, ids)
	assert.Equal(t, 2, q.DeadLetters().Purge())
	assert.Equal(t, 0, q.DeadLetters().Count())
}

func TestDeadLetterQueueIsBounded(t *testing.T) {
	sink, hook := newDeadSink()
	b := newBus(t, hook)
	var fixed atomic.Bool
	q, _ := poisonQueue(t, b, &fixed, courier.DeadLetterCapacity(2))
	for _, id := range []string{"bad-1", "bad-2", "bad-3"} {
		require.NoError(t, q.Send(ctxT(t), Order{ID: id}))
		sink.next(t) // the hook is told of every one, the evicted included
	}
	list := q.DeadLetters().List()
	require.Len(t, list, 2)
	assert.Equal(t, "bad-2", list[0].Body.ID, "the oldest is evicted")
	assert.Equal(t, "bad-3", list[1].Body.ID)
	s := q.Stats()
	assert.EqualValues(t, 1, s.DeadLettersEvicted)
	assert.EqualValues(t, 3, s.DeadLettered)
	assert.Equal(t, 2, s.DeadLetters)
}

func TestReplayBlockedByFullQueueKeepsTheRest(t *testing.T) {
	sink, hook := newDeadSink()
	b := newBus(t, hook)
	q := mustQueue[Order](t, b, "orders", courier.Capacity(1))
	release := make(chan struct{})
	require.NoError(t, q.Consume(func(_ context.Context, m *courier.Message[Order]) error {
		if m.Body.ID == "bad" {
			return courier.Permanent(errors.New("bad"))
		}
		<-release
		return nil
	}))
	for range 3 {
		require.NoError(t, q.Send(ctxT(t), Order{ID: "bad"}))
		sink.next(t)
	}
	require.NoError(t, q.Send(ctxT(t), Order{ID: "blocker"})) // fills the only slot
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	n, err := q.DeadLetters().Replay(ctx)
	assert.ErrorIs(t, err, context.DeadlineExceeded)
	assert.Equal(t, 0, n)
	assert.Equal(t, 3, q.DeadLetters().Count(), "nothing lost when a replay is cut short")
	close(release)
}

func TestDeadLetterHookPanicIsContained(t *testing.T) {
	got := make(chan struct{}, 1)
	b := newBus(t, courier.WithDeadLetterHook(func(courier.DeadLetterInfo) {
		got <- struct{}{}
		panic("hook bug")
	}))
	q := mustQueue[Order](t, b, "orders", noRetry())
	require.NoError(t, q.Consume(func(context.Context, *courier.Message[Order]) error { return errors.New("x") }))
	require.NoError(t, q.Send(ctxT(t), Order{}))
	require.NoError(t, q.Send(ctxT(t), Order{}))
	recv(t, got)
	recv(t, got) // the worker survived the first panic
	assert.Equal(t, 2, q.DeadLetters().Count())
}
