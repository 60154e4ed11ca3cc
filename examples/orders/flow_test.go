package main

import (
	"io"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/courierbus/courier"
	"github.com/courierbus/courier/couriertest"
)

// The order flow, tested with couriertest: the poison order backs off for
// minutes before it is dead-lettered, in virtual time, while a good order
// reaches all three subscriptions of payments.completed.
func TestOrderFlow(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := couriertest.New(t)
		payments, err := courier.NewTopic[PaymentCompleted](h.Bus, "payments.completed")
		require.NoError(t, err)
		shop := newShop(&console{w: io.Discard}, payments)
		for _, sub := range subscribers {
			require.NoError(t, payments.Subscribe(sub.name, shop.subscriber(sub.name, sub.does)))
		}
		orders, err := courier.NewQueue[Order](h.Bus, "orders", courier.Workers(4),
			courier.WithRetry(courier.RetryPolicy{MaxAttempts: 8, InitialInterval: time.Second, MaxInterval: time.Minute, Jitter: -1}))
		require.NoError(t, err)
		require.NoError(t, orders.Consume(shop.handleOrder))

		start := time.Now()
		require.NoError(t, orders.Send(t.Context(), Order{ID: "O-1", Customer: "alice", Amount: 4200}))
		require.NoError(t, orders.Send(t.Context(), Order{ID: "O-2", Customer: "carol", Amount: 0}))

		poison := couriertest.RequireDeadLettered(t, h, func(o Order) bool { return o.ID == "O-2" })
		assert.Equal(t, courier.ReasonMaxAttempts, poison.Reason)
		assert.Equal(t, 8, poison.Attempts)
		assert.ErrorIs(t, poison.Err, errZeroAmount)
		assert.Equal(t, (1+2+4+8+16+32+60)*time.Second, time.Since(start), "backoff capped at a minute")

		paid := couriertest.RequireConsumedN(t, h, 3, func(p PaymentCompleted) bool { return p.OrderID == "O-1" })
		order := couriertest.RequireConsumed(t, h, func(o Order) bool { return o.ID == "O-1" })
		for _, p := range paid {
			assert.Equal(t, order.CorrelationID, p.CorrelationID)
			assert.Equal(t, order.ID, p.CausationID)
		}
		couriertest.RequireNotConsumed(t, h, func(p PaymentCompleted) bool { return p.OrderID == "O-2" })
	})
}
