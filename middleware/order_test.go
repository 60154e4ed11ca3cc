package middleware_test

import (
	"context"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/courierbus/courier"
)

// recorder records the order in which middleware is entered and left.
type recorder struct {
	mu    sync.Mutex
	calls []string
}

func (r *recorder) add(s string) {
	r.mu.Lock()
	r.calls = append(r.calls, s)
	r.mu.Unlock()
}

func (r *recorder) snapshot() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.calls...)
}

// mw returns a middleware named name that records both paths.
func (r *recorder) mw(name string) courier.Middleware {
	return courier.Middleware{
		Name: name,
		Handle: func(next courier.HandlerFunc) courier.HandlerFunc {
			return func(ctx context.Context, env courier.Envelope) error {
				r.add("handle>" + name)
				defer r.add("handle<" + name)
				return next(ctx, env)
			}
		},
		Send: func(next courier.SendFunc) courier.SendFunc {
			return func(ctx context.Context, env courier.Envelope) error {
				r.add("send>" + name)
				return next(ctx, env)
			}
		},
	}
}

func TestMiddlewareOrder(t *testing.T) {
	bus := newBus(t)
	rec := &recorder{}
	bus.Use(rec.mw("A"), rec.mw("B"))
	q := newQueue[string](t, bus, "jobs", courier.WithMiddleware(rec.mw("C")))
	require.NoError(t, q.Consume(func(context.Context, *courier.Message[string]) error {
		rec.add("handler")
		return nil
	}, courier.WithMiddleware(rec.mw("D"))))
	require.NoError(t, q.Send(context.Background(), "x"))
	shutdown(t, bus)

	require.Equal(t, []string{
		// Send path: bus, then queue; consumer middleware has no say.
		"send>A", "send>B", "send>C",
		// Handling path: bus (in Use order), queue, consumer, handler.
		"handle>A", "handle>B", "handle>C", "handle>D",
		"handler",
		"handle<D", "handle<C", "handle<B", "handle<A",
	}, rec.snapshot())
}
