package otelcourier

import (
	"reflect"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"
)

// The global tracer provider and propagator as they were when the package
// was initialised, if nothing had been set yet: these are package otel's
// placeholders, which forward to whatever is set later. While otel still
// returns its placeholder, no SDK is installed and no propagator set.
var (
	unsetTracerProvider = unsetGlobalTracerProvider()
	unsetPropagator     = unsetGlobalPropagator()
)

func unsetGlobalTracerProvider() trace.TracerProvider {
	tp := otel.GetTracerProvider()
	if t := reflect.TypeOf(tp); t == nil || !t.Comparable() || t.Kind() != reflect.Pointer ||
		t.Elem().PkgPath() != "go.opentelemetry.io/otel/internal/global" {
		return nil // something was set before this package was initialised
	}
	return tp
}

func unsetGlobalPropagator() propagation.TextMapPropagator {
	p := otel.GetTextMapPropagator()
	if !isComparable(p) || len(p.Fields()) > 0 {
		return nil
	}
	return p
}

// startsSpans reports whether tp makes spans of its own, as an SDK does, or
// is one of the no-op providers, which only hand back the span context they
// are given. It only looks at tp's type: starting a probe span would show up
// in an SDK's span processors.
func startsSpans(tp trace.TracerProvider) bool {
	switch tp.(type) {
	case noop.TracerProvider, *noop.TracerProvider:
		return false
	}
	//lint:ignore SA1019 the deprecated no-op provider is still a no-op provider
	return !isComparable(tp) || tp != trace.NewNoopTracerProvider()
}

func isComparable(v any) bool {
	t := reflect.TypeOf(v)
	return t != nil && t.Comparable()
}

// isUnset reports whether v is ref, an unset global placeholder (nil when
// there was none).
func isUnset(v, ref any) bool {
	return ref != nil && isComparable(v) && v == ref
}

var traceContext propagation.TextMapPropagator = propagation.TraceContext{}

// propagator returns the propagator for one message.
func (c *config) propagator() propagation.TextMapPropagator {
	if c.prop != nil {
		return c.prop
	}
	p := otel.GetTextMapPropagator()
	if isUnset(p, unsetPropagator) {
		return traceContext
	}
	return p
}

// tracing starts the spans of one middleware.
type tracing struct {
	tracer trace.Tracer // nil when the configured provider starts no spans
	global bool         // tracer comes from the global provider
}

func newTracing(c *config) tracing {
	if c.tp != nil {
		if !startsSpans(c.tp) {
			return tracing{}
		}
		return tracing{tracer: c.tp.Tracer(ScopeName, trace.WithSchemaURL(schemaURL))}
	}
	// A tracer of the unset global forwards to the provider set later.
	return tracing{tracer: otel.GetTracerProvider().Tracer(ScopeName, trace.WithSchemaURL(schemaURL)), global: true}
}

// active returns the tracer for one message, or nil when no span would come
// of it.
func (t tracing) active() trace.Tracer {
	if t.global && isUnset(otel.GetTracerProvider(), unsetTracerProvider) {
		return nil
	}
	return t.tracer
}
