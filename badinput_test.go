package courier_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/courierbus/courier"
)

func TestDeclarationErrors(t *testing.T) {
	b := newBus(t)
	_, err := courier.NewQueue[Order](nil, "q")
	assert.ErrorIs(t, err, courier.ErrNilBus)
	_, err = courier.NewTopic[Order](nil, "t")
	assert.ErrorIs(t, err, courier.ErrNilBus)
	_, err = courier.NewQueue[Order](b, "")
	assert.ErrorIs(t, err, courier.ErrEmptyName)
	_, err = courier.NewTopic[Order](b, "")
	assert.ErrorIs(t, err, courier.ErrEmptyName)

	q1 := mustQueue[Order](t, b, "orders")
	q2, err := courier.NewQueue[Order](b, "orders")
	require.NoError(t, err, "same name and type: the same queue")
	require.NoError(t, q2.Send(ctxT(t), Order{}))
	assert.Equal(t, 1, q1.Stats().Depth)

	_, err = courier.NewQueue[Payment](b, "orders")
	assert.ErrorIs(t, err, courier.ErrTypeMismatch)
	assert.ErrorContains(t, err, "Order")
	_, err = courier.NewTopic[Order](b, "orders")
	assert.ErrorIs(t, err, courier.ErrTypeMismatch)
	_, err = courier.NewQueue[Order](b, "orders", courier.Workers(2))
	assert.ErrorIs(t, err, courier.ErrInvalidOption, "options on an existing queue")

	_, err = courier.NewTopic[Payment](b, "payments")
	require.NoError(t, err)
	_, err = courier.NewQueue[Payment](b, "payments")
	assert.ErrorIs(t, err, courier.ErrTypeMismatch)
	_, err = courier.NewTopic[Order](b, "payments")
	assert.ErrorIs(t, err, courier.ErrTypeMismatch)
}

func TestInvalidOptions(t *testing.T) {
	b := newBus(t)
	for name, opt := range map[string]courier.Option{
		"workers":         courier.Workers(0),
		"capacity":        courier.Capacity(0),
		"dlq":             courier.DeadLetterCapacity(-1),
		"overflow":        courier.WithOverflow(courier.Overflow(9)),
		"attempts":        courier.WithRetry(courier.RetryPolicy{MaxAttempts: -1}),
		"interval":        courier.WithRetry(courier.RetryPolicy{InitialInterval: -time.Second}),
		"max below init":  courier.WithRetry(courier.RetryPolicy{InitialInterval: time.Minute, MaxInterval: time.Second}),
		"multiplier":      courier.WithRetry(courier.RetryPolicy{Multiplier: 0.5}),
		"jitter":          courier.WithRetry(courier.RetryPolicy{Jitter: 2}),
		"filter on queue": courier.WithFilter(func(*courier.Message[Order]) bool { return true }),
		"nil option":      nil,
	} {
		_, err := courier.NewQueue[Order](b, "q-"+name, opt)
		assert.ErrorIs(t, err, courier.ErrInvalidOption, name)
	}

	q := mustQueue[Order](t, b, "orders")
	h := func(context.Context, *courier.Message[Order]) error { return nil }
	for name, opt := range map[string]courier.Option{
		"capacity on consume": courier.Capacity(5),
		"retry on consume":    courier.WithRetry(courier.RetryPolicy{}),
		"overflow on consume": courier.WithOverflow(courier.DropNewest),
		"dlq on consume":      courier.DeadLetterCapacity(5),
	} {
		assert.ErrorIs(t, q.Consume(h, opt), courier.ErrInvalidOption, name)
	}

	topic, err := courier.NewTopic[Payment](b, "payments")
	require.NoError(t, err)
	ph := func(context.Context, *courier.Message[Payment]) error { return nil }
	err = topic.Subscribe("s", ph, courier.WithFilter(func(*courier.Message[Order]) bool { return true }))
	assert.ErrorIs(t, err, courier.ErrInvalidOption, "filter of another type")
	err = topic.Subscribe("s", ph, courier.WithFilter[Payment](nil))
	assert.ErrorIs(t, err, courier.ErrInvalidOption)

	bad := courier.New(courier.WithDefaultRetry(courier.RetryPolicy{MaxAttempts: -3}))
	defer bad.Close()
	_, err = courier.NewQueue[Order](bad, "q")
	assert.ErrorIs(t, err, courier.ErrInvalidOption)
	_, err = courier.NewTopic[Order](bad, "t")
	assert.ErrorIs(t, err, courier.ErrInvalidOption)
}

func TestHandlerAndSubscriptionErrors(t *testing.T) {
	b := newBus(t)
	q := mustQueue[Order](t, b, "orders")
	assert.ErrorIs(t, q.Consume(nil), courier.ErrNilHandler)
	topic, err := courier.NewTopic[Payment](b, "payments")
	require.NoError(t, err)
	ph := func(context.Context, *courier.Message[Payment]) error { return nil }
	assert.ErrorIs(t, topic.Subscribe("s", nil), courier.ErrNilHandler)
	assert.ErrorIs(t, topic.Subscribe("", ph), courier.ErrEmptyName)
	require.NoError(t, topic.Subscribe("s", ph))
	assert.ErrorIs(t, topic.Subscribe("s", ph), courier.ErrDuplicateSubscription)
	_, err = topic.Subscription("nope")
	assert.ErrorIs(t, err, courier.ErrUnknownSubscription)
}

func TestInvalidSendOptions(t *testing.T) {
	b := newBus(t)
	q := mustQueue[Order](t, b, "orders")
	ctx := ctxT(t)
	assert.ErrorIs(t, q.Send(ctx, Order{}, courier.WithDelay(-time.Second)), courier.ErrInvalidOption)
	assert.ErrorIs(t, q.Send(ctx, Order{}, courier.WithTTL(0)), courier.ErrInvalidOption)
	assert.ErrorIs(t, q.Send(ctx, Order{}, courier.WithHeader("", "v")), courier.ErrInvalidOption)
	assert.ErrorIs(t, q.Send(ctx, Order{}, courier.SendOption{}), courier.ErrInvalidOption)
	//lint:ignore SA1012 a nil context is the bad input under test
	assert.ErrorIs(t, q.Send(nil, Order{}), courier.ErrInvalidOption) //nolint:staticcheck
	assert.Equal(t, 0, q.Stats().Depth, "refused sends leave nothing behind")
}

func TestOverflowString(t *testing.T) {
	assert.Equal(t, "block", courier.Block.String())
	assert.Equal(t, "drop-newest", courier.DropNewest.String())
	assert.Equal(t, "drop-oldest", courier.DropOldest.String())
	assert.Equal(t, "Overflow(7)", courier.Overflow(7).String())
}
