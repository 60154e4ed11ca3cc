package courier_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/courierbus/courier"
)

func mustOperations(t testing.TB, rq *courier.RequestQueue[Quote, Price], retention time.Duration) *courier.Operations[Quote, Price] {
	t.Helper()
	ops, err := courier.NewOperations(rq, courier.OperationOptions{Retention: retention})
	require.NoError(t, err)
	return ops
}

func mustStatus(t testing.TB, ops *courier.Operations[Quote, Price], id string) courier.Operation[Price] {
	t.Helper()
	op, err := ops.Status(id)
	require.NoError(t, err)
	return op
}

func TestOperationSucceedsThroughEveryState(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx := context.Background()
		b := newBus(t)
		rq := mustRequestQueue(t, b, "quotes")
		ops := mustOperations(t, rq, time.Hour)

		submitted := time.Now()
		id, err := ops.Submit(ctx, Quote{Items: 2}, courier.WithIdempotencyKey("quote-2"))
		require.NoError(t, err)
		op := mustStatus(t, ops, id)
		require.Equal(t, courier.OperationPending, op.State, "nobody serves yet")
		require.Equal(t, id, op.ID)
		require.Equal(t, "quote-2", op.IdempotencyKey)
		require.Equal(t, submitted, op.SubmittedAt)
		require.True(t, op.StartedAt.IsZero())
		require.False(t, op.State.Done())

		time.Sleep(time.Second)
		gate := make(chan struct{})
		require.NoError(t, rq.Serve(func(ctx context.Context, m *courier.Message[Quote]) (Price, error) {
			<-gate
			return price(ctx, m)
		}))
		synctest.Wait()
		op = mustStatus(t, ops, id)
		require.Equal(t, courier.OperationRunning, op.State)
		require.Equal(t, 1, op.Attempts)
		require.Equal(t, submitted.Add(time.Second), op.StartedAt)

		time.Sleep(time.Second)
		close(gate)
		p, err := ops.Wait(ctx, id)
		require.NoError(t, err)
		require.Equal(t, Price{Cents: 200}, p)
		op = mustStatus(t, ops, id)
		require.Equal(t, courier.OperationSucceeded, op.State)
		require.True(t, op.State.Done())
		require.Equal(t, Price{Cents: 200}, op.Result)
		require.NoError(t, op.Err)
		require.Equal(t, submitted.Add(2*time.Second), op.CompletedAt)
	})
}

func TestOperationFailsAfterItsRetries(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx := context.Background()
		b := newBus(t)
		rq := mustRequestQueue(t, b, "quotes", courier.WithRetry(courier.RetryPolicy{
			MaxAttempts: 2, InitialInterval: time.Minute, Jitter: -1,
		}))
		ops := mustOperations(t, rq, time.Hour)
		errNoStock := errors.New("no stock")
		require.NoError(t, rq.Serve(func(context.Context, *courier.Message[Quote]) (Price, error) {
			return Price{}, errNoStock
		}))
		id, err := ops.Submit(ctx, Quote{Items: 1})
		require.NoError(t, err)
		synctest.Wait()
		op := mustStatus(t, ops, id)
		require.Equal(t, courier.OperationRunning, op.State, "running while it waits for its retry")
		require.Equal(t, 1, op.Attempts)

		_, err = ops.Wait(ctx, id)
		require.ErrorIs(t, err, errNoStock)
		op = mustStatus(t, ops, id)
		require.Equal(t, courier.OperationFailed, op.State)
		require.Equal(t, 2, op.Attempts)
		require.ErrorIs(t, op.Err, errNoStock)
		var re *courier.RequestError
		require.ErrorAs(t, op.Err, &re)
		require.Equal(t, id, re.RequestID)
		require.Equal(t, courier.ReasonMaxAttempts, re.Reason)
		require.Equal(t, op.StartedAt.Add(time.Minute), op.CompletedAt)
	})
}

func TestOperationFailsWhenTheBusStops(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := newBus(t)
		rq := mustRequestQueue(t, b, "quotes")
		ops := mustOperations(t, rq, time.Hour)
		id, err := ops.Submit(context.Background(), Quote{Items: 1})
		require.NoError(t, err)
		require.ErrorIs(t, b.Close(), courier.ErrShutdownIncomplete)
		op := mustStatus(t, ops, id)
		require.Equal(t, courier.OperationFailed, op.State)
		require.Zero(t, op.Attempts)
		require.ErrorIs(t, op.Err, courier.ErrClosed)

		_, err = ops.Submit(context.Background(), Quote{Items: 1})
		require.ErrorIs(t, err, courier.ErrClosed)
	})
}

func TestOperationIsForgottenAfterItsRetention(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx := context.Background()
		b := newBus(t)
		rq := mustRequestQueue(t, b, "quotes")
		ops := mustOperations(t, rq, time.Hour)
		require.NoError(t, rq.Serve(price))
		id, err := ops.Submit(ctx, Quote{Items: 1}, courier.WithIdempotencyKey("k"))
		require.NoError(t, err)
		_, err = ops.Wait(ctx, id)
		require.NoError(t, err)

		time.Sleep(time.Hour - time.Nanosecond)
		require.Equal(t, courier.OperationSucceeded, mustStatus(t, ops, id).State)
		again, err := ops.Submit(ctx, Quote{Items: 1}, courier.WithIdempotencyKey("k"))
		require.NoError(t, err)
		require.Equal(t, id, again, "still retained: the key names the same operation")

		time.Sleep(time.Nanosecond)
		_, err = ops.Status(id)
		require.ErrorIs(t, err, courier.ErrUnknownOperation)
		_, err = ops.Wait(ctx, id)
		require.ErrorIs(t, err, courier.ErrUnknownOperation)
		fresh, err := ops.Submit(ctx, Quote{Items: 1}, courier.WithIdempotencyKey("k"))
		require.NoError(t, err)
		require.NotEqual(t, id, fresh, "a forgotten key starts a new operation")
		_, err = ops.Wait(ctx, fresh)
		require.NoError(t, err)
		require.EqualValues(t, 2, rq.Stats().Handled)
	})
}

func TestOperationResubmissionReturnsTheExistingOperation(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx := context.Background()
		b := newBus(t)
		// The key comes from the body here.
		rq := mustRequestQueue(t, b, "quotes", courier.IdempotencyKey(func(q Quote) string {
			return "items-" + string(rune('0'+q.Items))
		}))
		ops := mustOperations(t, rq, time.Hour)
		gate := make(chan struct{})
		require.NoError(t, rq.Serve(func(ctx context.Context, m *courier.Message[Quote]) (Price, error) {
			<-gate
			return price(ctx, m)
		}))

		const submitters = 10
		ids := make([]string, submitters)
		var wg sync.WaitGroup
		for i := range submitters {
			wg.Go(func() {
				id, err := ops.Submit(ctx, Quote{Items: 3})
				assert.NoError(t, err)
				ids[i] = id
			})
		}
		wg.Wait()
		for _, id := range ids {
			require.Equal(t, ids[0], id)
		}
		other, err := ops.Submit(ctx, Quote{Items: 4})
		require.NoError(t, err)
		require.NotEqual(t, ids[0], other)
		explicit, err := ops.Submit(ctx, Quote{Items: 3}, courier.WithIdempotencyKey("explicit"))
		require.NoError(t, err)
		require.NotEqual(t, ids[0], explicit, "an explicit key overrides the derived one")

		close(gate)
		require.NoError(t, b.WaitIdle(ctx))
		require.EqualValues(t, 3, rq.Stats().Handled, "one request per key")
		again, err := ops.Submit(ctx, Quote{Items: 3})
		require.NoError(t, err)
		require.Equal(t, ids[0], again, "a completed operation is returned too")
		require.EqualValues(t, 3, rq.Stats().Sent)
	})
}

func TestOperationSubmitThatFailsLeavesNoOperation(t *testing.T) {
	ctx := context.Background()
	b := newBus(t)
	rq := mustRequestQueue(t, b, "quotes", courier.Capacity(1)) // nobody serves: it stays full
	ops := mustOperations(t, rq, time.Hour)
	_, err := ops.Submit(ctx, Quote{Items: 1}, courier.WithIdempotencyKey("a"))
	require.NoError(t, err)
	full, cancel := context.WithCancel(ctx)
	cancel()
	_, err = ops.Submit(full, Quote{Items: 2}, courier.WithIdempotencyKey("b"))
	require.ErrorIs(t, err, context.Canceled)
	require.Equal(t, 1, rq.Stats().Waiting)
	require.NoError(t, rq.Serve(price))
	require.NoError(t, b.WaitIdle(ctx))
	id, err := ops.Submit(ctx, Quote{Items: 2}, courier.WithIdempotencyKey("b"))
	require.NoError(t, err, "the key of the refused submit is free")
	p, err := ops.Wait(ctx, id)
	require.NoError(t, err)
	require.Equal(t, Price{Cents: 200}, p)
}

func TestOperationWaitHonoursItsContext(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := newBus(t)
		rq := mustRequestQueue(t, b, "quotes")
		ops := mustOperations(t, rq, 0)
		id, err := ops.Submit(context.Background(), Quote{Items: 1})
		require.NoError(t, err)
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		_, err = ops.Wait(ctx, id)
		require.ErrorIs(t, err, context.DeadlineExceeded)
		require.Equal(t, courier.OperationPending, mustStatus(t, ops, id).State)
	})
}

func TestOperationsBadInput(t *testing.T) {
	_, err := courier.NewOperations[Quote, Price](nil, courier.OperationOptions{})
	require.ErrorIs(t, err, courier.ErrInvalidOption)
	b := newBus(t)
	rq := mustRequestQueue(t, b, "quotes")
	_, err = courier.NewOperations(rq, courier.OperationOptions{Retention: -time.Second})
	require.ErrorIs(t, err, courier.ErrInvalidOption)
	ops := mustOperations(t, rq, 0)
	_, err = ops.Status("nope")
	require.ErrorIs(t, err, courier.ErrUnknownOperation)
	_, err = ops.Wait(ctxT(t), "nope")
	require.ErrorIs(t, err, courier.ErrUnknownOperation)
	_, err = ops.Submit(ctxT(t), Quote{}, courier.WithDelay(-time.Second))
	require.ErrorIs(t, err, courier.ErrInvalidOption)

	for s, want := range map[courier.OperationState]string{
		courier.OperationPending: "pending", courier.OperationRunning: "running",
		courier.OperationSucceeded: "succeeded", courier.OperationFailed: "failed", 0: "OperationState(0)",
	} {
		require.Equal(t, want, s.String())
	}
}
