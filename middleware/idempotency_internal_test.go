package middleware

import (
	"context"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/require"
)

// TestWaitingDeliveryLooksAgainAfterRegistering: a delivery that found its
// key held by a delivery of the same Idempotency, which then ended before
// the first one registered as waiting, finds the key done on its second look
// instead of waiting for a wake-up that already happened.
func TestWaitingDeliveryLooksAgainAfterRegistering(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		idem, err := NewIdempotency(NewMemoryStore(MemoryStoreOptions{}), IdempotencyOptions{})
		require.NoError(t, err)
		key := Key{Scope: "handled/jobs", ID: "k"}
		held, err, gaveUp := idem.reserveWaiting(ctx, key)
		require.NoError(t, err)
		require.NoError(t, gaveUp)
		require.Equal(t, Reserved, held.Status)

		testHookBeforeRegister = func() {
			testHookBeforeRegister = nil
			require.NoError(t, idem.commit(ctx, key, held))
			idem.wake(key) // nobody has registered yet
		}
		defer func() { testHookBeforeRegister = nil }()
		r, err, gaveUp := idem.reserveWaiting(ctx, key)
		require.NoError(t, err)
		require.NoError(t, gaveUp, "waited for a wake-up that had happened")
		require.Equal(t, Done, r.Status)
		require.Zero(t, idem.nwaiting.Load())
		require.Empty(t, idem.waiting)
	})
}
