package natsjs_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/courierbus/courier"
	"github.com/courierbus/courier/transport/natsjs"
)

type quote struct {
	SKU string
	Qty int
}

type price struct{ Cents int }

// A request sent on one bus is served by another (two processes sharing a
// server), and the reply, or the failure, comes back through the broker.
func TestRequestReplyAcrossBuses(t *testing.T) {
	e := start(t, natsjs.EmbeddedOptions{Dir: t.TempDir()})
	defer e.Shutdown()
	server, closeServer := openBus(t, e, courier.WithName("pricing-1"))
	defer closeServer()
	client, closeClient := openBus(t, e, courier.WithName("shop-1"))
	defer closeClient()

	retry := courier.WithRetry(courier.RetryPolicy{MaxAttempts: 2, InitialInterval: time.Millisecond})
	served, err := courier.NewRequestQueue[quote, price](server, "prices", retry)
	require.NoError(t, err)
	require.NoError(t, served.Serve(func(_ context.Context, m *courier.Message[quote]) (price, error) {
		if m.Body.Qty <= 0 {
			return price{}, courier.Permanent(errors.New("quantity must be positive"))
		}
		return price{Cents: 250 * m.Body.Qty}, nil
	}, courier.Workers(2)))

	rq, err := courier.NewRequestQueue[quote, price](client, "prices", retry)
	require.NoError(t, err)
	got, err := rq.Request(ctx(t), quote{SKU: "tea", Qty: 3})
	require.NoError(t, err)
	assert.Equal(t, price{Cents: 750}, got)

	_, err = rq.Request(ctx(t), quote{SKU: "tea", Qty: 0})
	var re *courier.RequestError
	require.ErrorAs(t, err, &re)
	assert.Equal(t, courier.ReasonPermanent, re.Reason)
	assert.Equal(t, 1, re.Attempts)
	assert.Contains(t, re.Err.Error(), "quantity must be positive")

	// A caller that gives up leaves nothing waiting.
	short, cancel := context.WithTimeout(ctx(t), time.Nanosecond)
	defer cancel()
	_, err = rq.Request(short, quote{SKU: "tea", Qty: 1})
	assert.ErrorIs(t, err, context.DeadlineExceeded)
	require.NoError(t, client.WaitIdle(ctx(t)))
	require.NoError(t, server.WaitIdle(ctx(t)))
	assert.Zero(t, rq.Stats().Waiting)

	for _, b := range []*courier.Bus{client, server} {
		require.NoError(t, b.Shutdown(ctx(t)))
	}
}

// Asynchronous request-reply works over the broker too.
func TestOperationsOverTheBroker(t *testing.T) {
	f := newFixture(t, natsjs.Options{})
	rq, err := courier.NewRequestQueue[quote, price](f.bus, "prices")
	require.NoError(t, err)
	require.NoError(t, rq.Serve(func(_ context.Context, m *courier.Message[quote]) (price, error) {
		return price{Cents: m.Body.Qty}, nil
	}))
	ops, err := courier.NewOperations(rq, courier.OperationOptions{})
	require.NoError(t, err)
	id, err := ops.Submit(ctx(t), quote{SKU: "tea", Qty: 42})
	require.NoError(t, err)
	got, err := ops.Wait(ctx(t), id)
	require.NoError(t, err)
	assert.Equal(t, price{Cents: 42}, got)
	op, err := ops.Status(id)
	require.NoError(t, err)
	assert.Equal(t, courier.OperationSucceeded, op.State)
	require.NoError(t, f.bus.Shutdown(ctx(t)))
}

// A request that middleware acknowledges without running the handler gets
// ErrNoReply through the broker instead of waiting for ever.
func TestRequestAcknowledgedWithoutAReply(t *testing.T) {
	f := newFixture(t, natsjs.Options{})
	skip := courier.Middleware{Handle: func(courier.HandlerFunc) courier.HandlerFunc {
		return func(context.Context, courier.Envelope) error { return nil }
	}}
	rq, err := courier.NewRequestQueue[quote, price](f.bus, "prices", courier.WithMiddleware(skip))
	require.NoError(t, err)
	require.NoError(t, rq.Serve(func(context.Context, *courier.Message[quote]) (price, error) {
		t.Error("the handler ran")
		return price{}, nil
	}))
	_, err = rq.Request(ctx(t), quote{SKU: "tea", Qty: 1})
	assert.ErrorIs(t, err, courier.ErrNoReply)
	require.NoError(t, f.bus.Shutdown(ctx(t)))
}
