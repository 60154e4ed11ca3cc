// Package middleware provides ready-made middleware for Courier buses:
// [Recover] turns handler panics into errors, [Timeout] bounds how long a
// handler may run, and [Logging] logs every handled message and every send
// with log/slog.
//
// Every factory returns the one [courier.Middleware] type, so any of them can
// be given to [courier.Bus.Use] for the whole bus, or to
// [courier.WithMiddleware] for one queue, topic, subscription or consumer.
// Each is safe for concurrent use and may be registered on several buses.
//
// Middleware registered first runs outermost. On the handling path the chain
// is the bus middleware (Bus.Use, in the order given), then the queue's or
// topic's, then the subscription's, then the consumer's, then the handler. On
// the send path it is the bus middleware, then the queue's or topic's.
//
// A typical setup:
//
//	bus := courier.New()
//	bus.Use(middleware.Recover(), middleware.Timeout(5*time.Second), middleware.Logging(nil))
//
// A middleware only sees what happens inside it. In the order above, Logging
// is innermost: it logs the handler's own error and times the handler alone,
// and a panic passes through it to Recover without being logged by it (the
// bus still logs the message when it is dead-lettered). Register Logging
// before Recover and Timeout to log panics and timeouts as the errors those
// two report.
package middleware
