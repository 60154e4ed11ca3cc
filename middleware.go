package courier

import "context"

// HandlerFunc is the non-generic form of a handler that middleware wraps: it
// handles one delivery attempt of env and reports its outcome. A nil error
// acknowledges the message; any other error fails the attempt.
type HandlerFunc func(ctx context.Context, env Envelope) error

// SendFunc is the non-generic form of a send that middleware wraps. The
// envelope already has its ID and correlation IDs; returning an error refuses
// the message, and Send returns that error to its caller.
type SendFunc func(ctx context.Context, env Envelope) error

// Middleware wraps the handling path, the send path, or both, of the queues
// and subscriptions it is registered for. One value can hook both paths, so a
// tracing or idempotency middleware registers once. Either field may be nil.
//
// Order: middleware registered first runs outermost. On the handling path the
// chain is bus ([Bus.Use]), then queue or topic ([WithMiddleware] on NewQueue
// or NewTopic), then subscription (on Subscribe), then consumer (on Consume),
// then the handler. On the send path it is bus, then queue or topic, then the
// enqueue.
//
// Middleware runs on the goroutine of the worker (Handle) or of the sender
// (Send); it must be safe for concurrent use.
type Middleware struct {
	// Name identifies the middleware in logs and errors. Optional.
	Name string
	// Handle wraps every delivery attempt.
	Handle func(next HandlerFunc) HandlerFunc
	// Send wraps every Send, TrySend, Publish and TryPublish. Replays from a
	// dead-letter queue do not pass through it: they are not new sends. Read
	// and change the envelope before calling next: once next returns nil, a
	// worker may already be handling the message, and for a publish the
	// envelope is the copy of the first subscription.
	Send func(next SendFunc) SendFunc
}

func chainHandle(h HandlerFunc, layers ...[]Middleware) HandlerFunc {
	for i := len(layers) - 1; i >= 0; i-- {
		mws := layers[i]
		for j := len(mws) - 1; j >= 0; j-- {
			if mws[j].Handle != nil {
				h = mws[j].Handle(h)
			}
		}
	}
	return h
}

func chainSend(s SendFunc, layers ...[]Middleware) SendFunc {
	for i := len(layers) - 1; i >= 0; i-- {
		mws := layers[i]
		for j := len(mws) - 1; j >= 0; j-- {
			if mws[j].Send != nil {
				s = mws[j].Send(s)
			}
		}
	}
	return s
}
