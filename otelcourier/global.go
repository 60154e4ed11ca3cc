package otelcourier

import (
	"context"
	"reflect"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
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
	if !isComparable(tp) || startsSpans(tp) {
		return nil
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
// only hands back the span context it is given, as the no-op provider and
// the unset global do. The probe's parent is not sampled, so an SDK with a
// parent-based sampler records nothing; the probe is never ended.
func startsSpans(tp trace.TracerProvider) bool {
	probe := trace.NewSpanContext(trace.SpanContextConfig{TraceID: trace.TraceID{1}, SpanID: trace.SpanID{1}})
	ctx := trace.ContextWithSpanContext(context.Background(), probe)
	_, span := tp.Tracer(ScopeName).Start(ctx, "otelcourier.probe")
	return span.IsRecording() || span.SpanContext().SpanID() != probe.SpanID()
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
