package courier_test

import (
	"context"
	"testing"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/courierbus/courier"
)

func TestMessageIDsAreUniqueUUIDv7(t *testing.T) {
	b := newBus(t)
	q := mustQueue[Order](t, b, "orders", courier.Capacity(5000))
	ids := make(chan string, 5000)
	require.NoError(t, q.Consume(func(_ context.Context, m *courier.Message[Order]) error {
		ids <- m.ID
		return nil
	}, courier.Workers(4)))
	for range 5000 {
		require.NoError(t, q.Send(ctxT(t), Order{}))
	}
	require.NoError(t, b.Shutdown(ctxT(t)))
	close(ids)
	seen := map[string]bool{}
	for id := range ids {
		u, err := uuid.Parse(id)
		require.NoError(t, err)
		require.Equal(t, uuid.Version(7), u.Version())
		require.Equal(t, uuid.RFC4122, u.Variant())
		require.False(t, seen[id], "duplicate ID %s", id)
		seen[id] = true
	}
	assert.Len(t, seen, 5000)
}

func TestCorrelationFlowsThroughHandlers(t *testing.T) {
	b := newBus(t)
	orders := mustQueue[Order](t, b, "orders")
	payments, err := courier.NewTopic[Payment](b, "payments")
	require.NoError(t, err)
	type seen struct {
		id, corr, cause string
		fromCtx         string
		envID           string
	}
	orderSeen := make(chan seen, 1)
	paySeen := make(chan seen, 1)
	require.NoError(t, orders.Consume(func(ctx context.Context, m *courier.Message[Order]) error {
		env, ok := courier.MessageFromContext(ctx)
		require.True(t, ok)
		orderSeen <- seen{m.ID, m.CorrelationID, m.CausationID, courier.CorrelationIDFromContext(ctx), env.Meta().ID}
		return payments.Publish(ctx, Payment{OrderID: m.Body.ID})
	}))
	require.NoError(t, payments.Subscribe("accounting", func(ctx context.Context, m *courier.Message[Payment]) error {
		paySeen <- seen{m.ID, m.CorrelationID, m.CausationID, courier.CorrelationIDFromContext(ctx), ""}
		return nil
	}))

	// From outside any handler: the correlation ID is the message's own ID.
	require.NoError(t, orders.Send(ctxT(t), Order{ID: "o-1"}))
	o, p := recv(t, orderSeen), recv(t, paySeen)
	assert.Equal(t, o.id, o.corr)
	assert.Empty(t, o.cause)
	assert.Equal(t, o.corr, o.fromCtx)
	assert.Equal(t, o.id, o.envID)
	assert.Equal(t, o.corr, p.corr, "the payment inherits the order's correlation ID")
	assert.Equal(t, o.id, p.cause, "and names the order as its cause")
	assert.NotEqual(t, o.id, p.id)

	// With a correlation ID on the context.
	ctx := courier.WithCorrelationID(ctxT(t), "req-42")
	assert.Equal(t, "req-42", courier.CorrelationIDFromContext(ctx))
	require.NoError(t, orders.Send(ctx, Order{ID: "o-2"}))
	o, p = recv(t, orderSeen), recv(t, paySeen)
	assert.Equal(t, "req-42", o.corr)
	assert.Equal(t, "req-42", p.corr)
	assert.Empty(t, o.cause)
	assert.Equal(t, o.id, p.cause)

	_, ok := courier.MessageFromContext(context.Background())
	assert.False(t, ok)
	assert.Empty(t, courier.CorrelationIDFromContext(context.Background()))
	assert.Equal(t, context.Background(), courier.WithCorrelationID(context.Background(), ""))
	require.NoError(t, b.Shutdown(ctxT(t)))
}
