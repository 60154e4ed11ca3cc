package middleware

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/courierbus/courier"
)

// ErrTimeout is matched, with [errors.Is], by the error of a delivery attempt
// that failed after the deadline set by [Timeout] passed. The same error also
// wraps the handler's own error.
var ErrTimeout = errors.New("middleware: handler timed out")

// Timeout returns a middleware, named "timeout", that gives each delivery
// attempt at most d: the rest of the chain runs with a context whose deadline
// is d from the start of the attempt, and whose [context.Cause] is
// [ErrTimeout] once that deadline passes.
//
// When the attempt returns an error after that deadline passed, Timeout
// returns an error that wraps both ErrTimeout and the handler's error, so
// errors.Is matches ErrTimeout as well as, typically,
// context.DeadlineExceeded. An earlier deadline that the context already had,
// such as the message's time to live, is not reported as ErrTimeout: Timeout
// did not cut that attempt short. An attempt that returns nil after the
// deadline still counts as a success: the handler did its work, and failing
// it would only make the message be handled again.
//
// Timeout does not stop a handler: it cancels the handler's context and then
// waits, like every middleware, for the handler to return. A handler that
// ignores its context keeps its worker busy past d.
//
// A d of zero or less disables the timeout: the middleware passes every call
// through unchanged. It has no send hook.
func Timeout(d time.Duration) courier.Middleware {
	if d <= 0 {
		return courier.Middleware{
			Name:   "timeout",
			Handle: func(next courier.HandlerFunc) courier.HandlerFunc { return next },
		}
	}
	return courier.Middleware{
		Name: "timeout",
		Handle: func(next courier.HandlerFunc) courier.HandlerFunc {
			return func(ctx context.Context, env courier.Envelope) error {
				tctx, cancel := context.WithTimeoutCause(ctx, d, ErrTimeout)
				defer cancel()
				err := next(tctx, env)
				// The cause is ErrTimeout only when this middleware's own
				// deadline ended tctx, not the parent's deadline or
				// cancellation.
				if err != nil && errors.Is(tctx.Err(), context.DeadlineExceeded) && context.Cause(tctx) == ErrTimeout {
					return fmt.Errorf("%w after %v: %w", ErrTimeout, d, err)
				}
				return err
			}
		},
	}
}
