package otelcourier

import (
	"github.com/courierbus/courier"
)

// Middleware returns a middleware, named "otel", that traces and measures
// every send and every delivery attempt of the queues and subscriptions it
// is registered for, following the OpenTelemetry messaging semantic
// conventions (see the package documentation for the spans, attributes and
// metrics). Register it with [courier.Bus.Use] before other middleware, so
// that their work, and their logs, fall inside its spans.
//
// It is safe for concurrent use, and one value serves every queue and topic.
func Middleware(opts ...Option) courier.Middleware {
	c := newConfig(opts)
	mw := &middleware{
		cfg:     c,
		tracing: newTracing(c),
		metrics: newClientMetrics(c.meter()),
	}
	return courier.Middleware{Name: "otel", Handle: mw.handle, Send: mw.send}
}

type middleware struct {
	cfg     *config
	tracing tracing
	metrics clientMetrics
	dests   destCache
}
