package courier_test

import (
	"context"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/courierbus/courier"
)

func TestIdempotencyKeyFromOptionAndFromBody(t *testing.T) {
	b := newBus(t)
	q := mustQueue[Order](t, b, "orders", courier.IdempotencyKey(func(o Order) string { return "order-" + o.ID }))
	var mu sync.Mutex
	keys := map[string]string{}
	require.NoError(t, q.Consume(func(_ context.Context, m *courier.Message[Order]) error {
		mu.Lock()
		defer mu.Unlock()
		keys[m.Body.ID] = m.IdempotencyKey
		return nil
	}))
	require.NoError(t, q.Send(ctxT(t), Order{ID: "a"}))
	require.NoError(t, q.Send(ctxT(t), Order{ID: "b"}, courier.WithIdempotencyKey("explicit")))
	require.NoError(t, b.WaitIdle(ctxT(t)))
	assert.Equal(t, map[string]string{"a": "order-a", "b": "explicit"}, keys)
}

func TestIdempotencyKeyOnTopicReachesEverySubscription(t *testing.T) {
	b := newBus(t)
	topic, err := courier.NewTopic[Order](b, "orders", courier.IdempotencyKey(func(o Order) string { return o.ID }))
	require.NoError(t, err)
	got := make(chan string, 2)
	h := func(_ context.Context, m *courier.Message[Order]) error { got <- m.IdempotencyKey; return nil }
	require.NoError(t, topic.Subscribe("a", h))
	require.NoError(t, topic.Subscribe("b", h))
	require.NoError(t, topic.Publish(ctxT(t), Order{ID: "o-7"}))
	assert.Equal(t, "o-7", recv(t, got))
	assert.Equal(t, "o-7", recv(t, got))
}

func TestIdempotencyKeyOptionIsChecked(t *testing.T) {
	b := newBus(t)
	_, err := courier.NewQueue[Order](b, "q1", courier.IdempotencyKey(func(s string) string { return s }))
	assert.ErrorIs(t, err, courier.ErrInvalidOption, "key function of another type")
	_, err = courier.NewQueue[Order](b, "q2", courier.IdempotencyKey[Order](nil))
	assert.ErrorIs(t, err, courier.ErrInvalidOption)
	q := mustQueue[Order](t, b, "q3")
	err = q.Consume(func(context.Context, *courier.Message[Order]) error { return nil },
		courier.IdempotencyKey(func(o Order) string { return o.ID }))
	assert.ErrorIs(t, err, courier.ErrInvalidOption, "not a consumer option")
}

func TestCloneEnvelopeSendsTheSameMessageAgain(t *testing.T) {
	twice := courier.Middleware{Send: func(next courier.SendFunc) courier.SendFunc {
		return func(ctx context.Context, env courier.Envelope) error {
			dup := courier.CloneEnvelope(env)
			if err := next(ctx, env); err != nil {
				return err
			}
			return next(ctx, dup)
		}
	}}
	b := newBus(t)
	q := mustQueue[Order](t, b, "orders", courier.WithMiddleware(twice))
	got := make(chan courier.Metadata, 2)
	require.NoError(t, q.Consume(func(_ context.Context, m *courier.Message[Order]) error {
		got <- m.Metadata
		return nil
	}))
	require.NoError(t, q.Send(ctxT(t), Order{ID: "o"}, courier.WithIdempotencyKey("k"), courier.WithHeader("h", "v")))
	a, c := recv(t, got), recv(t, got)
	assert.Equal(t, a.ID, c.ID)
	assert.Equal(t, "k", c.IdempotencyKey)
	assert.Equal(t, "v", c.Header("h"))
	assert.Equal(t, 1, c.Attempt)
	require.NoError(t, b.WaitIdle(ctxT(t)))
	assert.EqualValues(t, 2, q.Stats().Handled)
}
