package courier_test

import (
	"context"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/courierbus/courier"
)

func TestFullQueueBlocksSendUntilRoomOrContextEnd(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := newBus(t)
		q := mustQueue[Order](t, b, "orders", courier.Capacity(2))
		require.NoError(t, q.Send(t.Context(), Order{Seq: 1}))
		require.NoError(t, q.Send(t.Context(), Order{Seq: 2}))

		ctx, cancel := context.WithTimeout(t.Context(), time.Second)
		defer cancel()
		start := time.Now()
		assert.ErrorIs(t, q.Send(ctx, Order{Seq: 3}), context.DeadlineExceeded)
		assert.Equal(t, time.Second, time.Since(start), "Send waited for room until its context ended")

		assert.ErrorIs(t, q.TrySend(t.Context(), Order{Seq: 3}), courier.ErrFull)

		sent := make(chan error, 1)
		go func() { sent <- q.Send(t.Context(), Order{Seq: 3}) }()
		synctest.Wait()
		select {
		case <-sent:
			t.Fatal("Send returned while the queue was full")
		default:
		}
		var got []int
		require.NoError(t, q.Consume(func(_ context.Context, m *courier.Message[Order]) error {
			got = append(got, m.Body.Seq)
			return nil
		}))
		require.NoError(t, <-sent, "a blocked Send proceeds once a slot frees")
		require.NoError(t, b.Shutdown(t.Context()))
		assert.Equal(t, []int{1, 2, 3}, got)
	})
}

func TestBlockedSendFailsWhenBusCloses(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := newBus(t)
		q := mustQueue[Order](t, b, "orders", courier.Capacity(1))
		require.NoError(t, q.Send(t.Context(), Order{}))
		sent := make(chan error, 1)
		go func() { sent <- q.Send(t.Context(), Order{}) }()
		synctest.Wait()
		err := b.Close()
		assert.ErrorIs(t, <-sent, courier.ErrClosed)
		var se *courier.ShutdownError
		require.ErrorAs(t, err, &se)
		assert.Equal(t, 1, se.DeadLettered, "the buffered message, not the refused one")
	})
}

func TestDropNewestDeadLettersTheNewMessage(t *testing.T) {
	b := newBus(t)
	q := mustQueue[Order](t, b, "orders", courier.Capacity(2), courier.WithOverflow(courier.DropNewest))
	for i := range 2 {
		require.NoError(t, q.Send(ctxT(t), Order{Seq: i}))
	}
	err := q.Send(ctxT(t), Order{Seq: 2})
	assert.ErrorIs(t, err, courier.ErrOverflow)
	assert.ErrorIs(t, q.TrySend(ctxT(t), Order{Seq: 3}), courier.ErrOverflow)
	list := q.DeadLetters().List()
	require.Len(t, list, 2)
	assert.Equal(t, courier.ReasonOverflow, list[0].Reason)
	assert.Equal(t, 2, list[0].Body.Seq)
	assert.Equal(t, 3, list[1].Body.Seq)
	s := q.Stats()
	assert.EqualValues(t, 2, s.Dropped)
	assert.Equal(t, 2, s.Depth)
}

func TestDropOldestEvictsTheOldestReady(t *testing.T) {
	b := newBus(t)
	q := mustQueue[Order](t, b, "orders", courier.Capacity(3), courier.WithOverflow(courier.DropOldest))
	for i := range 5 {
		require.NoError(t, q.Send(ctxT(t), Order{Seq: i}))
	}
	var dropped []int
	for _, d := range q.DeadLetters().List() {
		assert.Equal(t, courier.ReasonOverflow, d.Reason)
		dropped = append(dropped, d.Body.Seq)
	}
	assert.Equal(t, []int{0, 1}, dropped)
	var got []int
	require.NoError(t, q.Consume(func(_ context.Context, m *courier.Message[Order]) error {
		got = append(got, m.Body.Seq)
		return nil
	}))
	require.NoError(t, b.Shutdown(ctxT(t)))
	assert.Equal(t, []int{2, 3, 4}, got)
	assert.EqualValues(t, 2, q.Stats().Dropped)
}

func TestDropOldestWithNothingReadyDropsNewest(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := newBus(t)
		q := mustQueue[Order](t, b, "orders", courier.Capacity(1), courier.WithOverflow(courier.DropOldest))
		require.NoError(t, q.Send(t.Context(), Order{Seq: 0}, courier.WithDelay(time.Hour)))
		assert.ErrorIs(t, q.Send(t.Context(), Order{Seq: 1}), courier.ErrOverflow)
		require.Len(t, q.DeadLetters().List(), 1)
		assert.Equal(t, 1, q.DeadLetters().List()[0].Body.Seq)
		assert.Equal(t, 1, q.Stats().Scheduled)
	})
}

func TestRetriesNeverWaitForRoom(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := newBus(t)
		q := mustQueue[Order](t, b, "orders", courier.Capacity(1),
			courier.WithRetry(courier.RetryPolicy{MaxAttempts: 3, InitialInterval: time.Second}))
		attempts := 0
		require.NoError(t, q.Consume(func(_ context.Context, m *courier.Message[Order]) error {
			attempts++
			if m.Attempt < 3 {
				return assert.AnError
			}
			return nil
		}))
		require.NoError(t, q.Send(t.Context(), Order{}))
		// The retrying message keeps its slot: the queue stays full meanwhile.
		synctest.Wait()
		assert.ErrorIs(t, q.TrySend(t.Context(), Order{}), courier.ErrFull)
		require.NoError(t, b.Shutdown(t.Context()))
		assert.Equal(t, 3, attempts)
	})
}
