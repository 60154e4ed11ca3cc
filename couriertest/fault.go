package couriertest

import (
	"context"
	"errors"
	"time"

	"github.com/courierbus/courier"
)

// ErrInjected is the error the fault-injection middleware fails attempts
// with. It is transient: the retry policy retries it.
var ErrInjected = errors.New("couriertest: injected failure")

// Body adapts a predicate on a message body to the envelope predicates the
// fault-injection middleware take; it is false for messages of other types.
func Body[T any](match func(T) bool) func(courier.Envelope) bool {
	mustPredicate("Body", match == nil)
	return func(env courier.Envelope) bool {
		m, ok := env.(*courier.Message[T])
		return ok && match(m.Body)
	}
}

// mustPredicate panics, when the test wires its faults up, for a nil
// predicate, which would otherwise panic on every delivery.
func mustPredicate(name string, isNil bool) {
	if isNil {
		panic("couriertest: " + name + " needs a predicate, not nil")
	}
}

// FailFirst returns middleware that fails the first n delivery attempts of
// every message with [ErrInjected], without running the rest of the chain:
// with n = 2 each message is handled on its third attempt. Register it on a
// queue, topic, subscription or consumer ([courier.WithMiddleware]).
func FailFirst(n int) courier.Middleware {
	return FailWhen(func(env courier.Envelope) bool { return env.Meta().Attempt <= n })
}

// FailWhen returns middleware that fails, with [ErrInjected] and without
// running the rest of the chain, every delivery attempt for which fail
// returns true; a nil fail panics at once. fail sees the envelope, so it can
// look at the attempt, the headers or (with [Body]) the body.
func FailWhen(fail func(courier.Envelope) bool) courier.Middleware {
	mustPredicate("FailWhen", fail == nil)
	return courier.Middleware{
		Name: "couriertest.fail",
		Handle: func(next courier.HandlerFunc) courier.HandlerFunc {
			return func(ctx context.Context, env courier.Envelope) error {
				if fail(env) {
					return ErrInjected
				}
				return next(ctx, env)
			}
		},
	}
}

// PanicWhen returns middleware that panics, instead of running the rest of
// the chain, on every delivery attempt for which when returns true. The
// engine turns the panic into a failed attempt (a *courier.PanicError).
func PanicWhen(when func(courier.Envelope) bool) courier.Middleware {
	mustPredicate("PanicWhen", when == nil)
	return courier.Middleware{
		Name: "couriertest.panic",
		Handle: func(next courier.HandlerFunc) courier.HandlerFunc {
			return func(ctx context.Context, env courier.Envelope) error {
				if when(env) {
					panic("couriertest: injected panic")
				}
				return next(ctx, env)
			}
		},
	}
}

// Latency returns middleware that waits d before every delivery attempt (in
// virtual time inside a synctest bubble). An attempt whose context ends
// during the wait fails with the context's error.
func Latency(d time.Duration) courier.Middleware {
	return courier.Middleware{
		Name: "couriertest.latency",
		Handle: func(next courier.HandlerFunc) courier.HandlerFunc {
			return func(ctx context.Context, env courier.Envelope) error {
				t := time.NewTimer(d)
				defer t.Stop()
				select {
				case <-t.C:
					return next(ctx, env)
				case <-ctx.Done():
					return ctx.Err()
				}
			}
		},
	}
}

// DeliverTwice returns send middleware that sends every message twice, as a
// broker that redelivers would: the message, then a copy with the same ID,
// correlation and idempotency key ([courier.CloneEnvelope]). The copies may be
// handled concurrently by different workers. Register it inside any
// duplicate-detection middleware (on the queue or topic, with
// idempotency on the bus), or the copy is turned away as a duplicate.
func DeliverTwice() courier.Middleware {
	return courier.Middleware{
		Name: "couriertest.deliver-twice",
		Send: func(next courier.SendFunc) courier.SendFunc {
			return func(ctx context.Context, env courier.Envelope) error {
				dup := courier.CloneEnvelope(env) // before next: then env is the engine's
				if err := next(ctx, env); err != nil {
					return err
				}
				return next(ctx, dup)
			}
		},
	}
}
