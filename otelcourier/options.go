package otelcourier

import (
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
)

// Option configures [Middleware], [BusOptions] and [ObserveBus]. The zero
// configuration uses the global providers and propagator of package otel.
type Option func(*config)

type config struct {
	tp     trace.TracerProvider          // nil: the global one, followed as it changes
	mp     metric.MeterProvider          // nil: the global one, followed as it changes
	prop   propagation.TextMapPropagator // nil: the global one, else W3C Trace Context
	parent bool
}

func newConfig(opts []Option) *config {
	c := &config{}
	for _, o := range opts {
		if o != nil {
			o(c)
		}
	}
	return c
}

// WithTracerProvider makes the middleware start its spans with tp instead of
// the global provider (otel.GetTracerProvider). A nil tp keeps the default.
// A [go.opentelemetry.io/otel/trace/noop.TracerProvider] turns the spans off
// at no cost; the creation context of the caller is still propagated.
func WithTracerProvider(tp trace.TracerProvider) Option {
	return func(c *config) { c.tp = tp }
}

// WithMeterProvider makes the instruments come from mp instead of the global
// provider (otel.GetMeterProvider). A nil mp keeps the default.
func WithMeterProvider(mp metric.MeterProvider) Option {
	return func(c *config) { c.mp = mp }
}

// WithPropagator sets how the creation context is written to and read from
// message headers. A nil p keeps the default: the global propagator
// (otel.GetTextMapPropagator) when one has been set, and W3C Trace Context
// (the traceparent and tracestate headers) as long as none has, so that
// traces cross the asynchronous hop even in a program that never configured
// propagation. The default is looked up for every message, so a global
// propagator set after the middleware was built is used from then on.
func WithPropagator(p propagation.TextMapPropagator) Option {
	return func(c *config) { c.prop = p }
}

// WithParentProcessSpan makes each process span a child of the send span of
// its message, instead of the root of a trace of its own that links to it.
//
// By default, as the messaging semantic conventions recommend, a process span
// only links to its message's creation context: a message handled minutes
// later, retried five times or replayed from a dead-letter queue does not
// stretch the sender's trace. With this option the whole flow of a message
// is one trace, which reads better when each message is handled once and
// soon. Either way the process span links to the creation context.
func WithParentProcessSpan() Option {
	return func(c *config) { c.parent = true }
}
