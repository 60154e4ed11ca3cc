package middleware_test

import (
	"context"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/courierbus/courier"
	"github.com/courierbus/courier/middleware"
)

// A request whose key is already done is acknowledged without running the
// handler: its caller gets ErrNoReply at once, and an operation resubmitted
// after its retention fails with it, instead of waiting for ever.
func TestRequestWithDoneKeyGetsErrNoReply(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		bus := newBus(t)
		idem, err := middleware.NewIdempotency(middleware.NewMemoryStore(middleware.MemoryStoreOptions{}), middleware.IdempotencyOptions{})
		require.NoError(t, err)
		bus.Use(idem.Middleware())
		rq, err := courier.NewRequestQueue[int, int](bus, "double")
		require.NoError(t, err)
		runs := 0
		require.NoError(t, rq.Serve(func(_ context.Context, m *courier.Message[int]) (int, error) {
			runs++
			return 2 * m.Body, nil
		}))

		got, err := rq.Request(t.Context(), 21, courier.WithIdempotencyKey("k1"))
		require.NoError(t, err)
		require.Equal(t, 42, got)
		time.Sleep(3 * time.Minute) // past the send window: the resend is accepted, its key is done
		_, err = rq.Request(t.Context(), 21, courier.WithIdempotencyKey("k1"))
		require.ErrorIs(t, err, courier.ErrNoReply)
		require.Equal(t, 1, runs)
		require.Zero(t, rq.Stats().Waiting)

		ops, err := courier.NewOperations(rq, courier.OperationOptions{Retention: time.Minute})
		require.NoError(t, err)
		id, err := ops.Submit(t.Context(), 5, courier.WithIdempotencyKey("k2"))
		require.NoError(t, err)
		got, err = ops.Wait(t.Context(), id)
		require.NoError(t, err)
		require.Equal(t, 10, got)
		time.Sleep(3 * time.Minute) // the operation is forgotten; the key is still done
		id2, err := ops.Submit(t.Context(), 5, courier.WithIdempotencyKey("k2"))
		require.NoError(t, err)
		require.NotEqual(t, id, id2)
		_, err = ops.Wait(t.Context(), id2)
		require.ErrorIs(t, err, courier.ErrNoReply)
		op, err := ops.Status(id2)
		require.NoError(t, err)
		require.Equal(t, courier.OperationFailed, op.State)
		require.Equal(t, 2, runs)
		require.Zero(t, rq.Stats().Waiting)
	})
}
