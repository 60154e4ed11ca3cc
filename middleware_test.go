package courier_test

import (
	"context"
	"errors"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/courierbus/courier"
)

// recorder makes middleware that logs its name on both paths.
type recorder struct {
	mu  sync.Mutex
	log []string
}

func (r *recorder) add(s string) {
	r.mu.Lock()
	r.log = append(r.log, s)
	r.mu.Unlock()
}

func (r *recorder) take() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := r.log
	r.log = nil
	return out
}

func (r *recorder) mw(name string) courier.Middleware {
	return courier.Middleware{
		Name: name,
		Handle: func(next courier.HandlerFunc) courier.HandlerFunc {
			return func(ctx context.Context, env courier.Envelope) error {
				r.add("handle:" + name)
				return next(ctx, env)
			}
		},
		Send: func(next courier.SendFunc) courier.SendFunc {
			return func(ctx context.Context, env courier.Envelope) error {
				r.add("send:" + name)
				return next(ctx, env)
			}
		},
	}
}

func TestMiddlewareOrder(t *testing.T) {
	b := newBus(t)
	var r recorder
	b.Use(r.mw("bus1"), r.mw("bus2"))
	q := mustQueue[Order](t, b, "orders", courier.WithMiddleware(r.mw("queue")))
	done := make(chan struct{}, 1)
	require.NoError(t, q.Consume(func(context.Context, *courier.Message[Order]) error {
		r.add("handler")
		done <- struct{}{}
		return nil
	}, courier.WithMiddleware(r.mw("consumer"))))
	require.NoError(t, q.Send(ctxT(t), Order{}))
	recv(t, done)
	assert.Equal(t, []string{
		"send:bus1", "send:bus2", "send:queue",
		"handle:bus1", "handle:bus2", "handle:queue", "handle:consumer", "handler",
	}, r.take())

	topic, err := courier.NewTopic[Payment](b, "payments", courier.WithMiddleware(r.mw("topic")))
	require.NoError(t, err)
	require.NoError(t, topic.Subscribe("s", func(context.Context, *courier.Message[Payment]) error {
		r.add("handler")
		done <- struct{}{}
		return nil
	}, courier.WithMiddleware(r.mw("sub"))))
	require.NoError(t, topic.Publish(ctxT(t), Payment{}))
	recv(t, done)
	assert.Equal(t, []string{
		"send:bus1", "send:bus2", "send:topic",
		"handle:bus1", "handle:bus2", "handle:topic", "handle:sub", "handler",
	}, r.take())

	// Use applies to existing queues from their next message on.
	b.Use(r.mw("late"))
	require.NoError(t, q.Send(ctxT(t), Order{}))
	recv(t, done)
	assert.Equal(t, []string{
		"send:bus1", "send:bus2", "send:late", "send:queue",
		"handle:bus1", "handle:bus2", "handle:late", "handle:queue", "handle:consumer", "handler",
	}, r.take())
}

func TestSendMiddlewareCanRefuseAndTag(t *testing.T) {
	b := newBus(t)
	refused := errors.New("refused")
	b.Use(courier.Middleware{Send: func(next courier.SendFunc) courier.SendFunc {
		return func(ctx context.Context, env courier.Envelope) error {
			if env.Payload().(Order).ID == "no" {
				return refused
			}
			env.Meta().SetHeader("tagged", "yes")
			return next(ctx, env)
		}
	}})
	q := mustQueue[Order](t, b, "orders")
	got := make(chan string, 1)
	require.NoError(t, q.Consume(func(_ context.Context, m *courier.Message[Order]) error {
		got <- m.Header("tagged")
		return nil
	}))
	assert.ErrorIs(t, q.Send(ctxT(t), Order{ID: "no"}), refused)
	require.NoError(t, q.Send(ctxT(t), Order{ID: "yes"}))
	assert.Equal(t, "yes", recv(t, got))
	require.NoError(t, b.Shutdown(ctxT(t)))
	assert.EqualValues(t, 1, q.Stats().Sent)
}

func TestPanickingMiddlewareIsContained(t *testing.T) {
	sink, hook := newDeadSink()
	b := newBus(t, hook)
	b.Use(courier.Middleware{Handle: func(courier.HandlerFunc) courier.HandlerFunc {
		return func(context.Context, courier.Envelope) error { panic("middleware bug") }
	}})
	q := mustQueue[Order](t, b, "orders", noRetry())
	require.NoError(t, q.Consume(func(context.Context, *courier.Message[Order]) error { return nil }))
	require.NoError(t, q.Send(ctxT(t), Order{}))
	d := sink.next(t)
	var pe *courier.PanicError
	assert.ErrorAs(t, d.Err, &pe)
}
