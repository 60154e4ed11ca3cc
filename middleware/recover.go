package middleware

import (
	"context"

	"github.com/courierbus/courier"
)

// Recover returns a middleware, named "recover", that turns a panic in the
// rest of the handling chain into an error: the deferred recovery returns
// [courier.NewPanicError] of the panic value, with the stack at the panic.
// Middleware registered before Recover (outside it) therefore sees an
// ordinary error, and the attempt fails and is retried or dead-lettered like
// any other failure.
//
// The bus recovers panics even without Recover, so a panic never kills a
// worker; Recover is for the middleware outside it, which would otherwise see
// the panic unwind through them. Register it first to cover the whole chain.
// It has no send hook.
func Recover() courier.Middleware {
	return courier.Middleware{
		Name: "recover",
		Handle: func(next courier.HandlerFunc) courier.HandlerFunc {
			return func(ctx context.Context, env courier.Envelope) (err error) {
				defer func() {
					if r := recover(); r != nil {
						err = courier.NewPanicError(r)
					}
				}()
				return next(ctx, env)
			}
		},
	}
}
