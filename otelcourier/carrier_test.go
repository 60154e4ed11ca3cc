package otelcourier_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"github.com/courierbus/courier"
	"github.com/courierbus/courier/otelcourier"
)

func TestHeaderCarrier(t *testing.T) {
	var md courier.Metadata // no headers yet
	c := otelcourier.NewHeaderCarrier(&md)
	require.Empty(t, c.Get("traceparent"))
	require.Empty(t, c.Keys())
	c.Set("tracestate", "k=v")
	c.Set("traceparent", "x")
	require.Equal(t, "x", md.Headers["traceparent"])
	require.Equal(t, []string{"traceparent", "tracestate"}, c.Keys())

	// A round trip through the W3C propagator.
	var out courier.Metadata
	ctx := trace.ContextWithSpanContext(context.Background(), callerSpan)
	propagation.TraceContext{}.Inject(ctx, otelcourier.NewHeaderCarrier(&out))
	back := trace.SpanContextFromContext(propagation.TraceContext{}.Extract(context.Background(), otelcourier.NewHeaderCarrier(&out)))
	require.Equal(t, callerSpan.TraceID(), back.TraceID())
	require.Equal(t, callerSpan.SpanID(), back.SpanID())
}

func TestHeaderCarrierNoAlloc(t *testing.T) {
	md := &courier.Metadata{Headers: map[string]string{"traceparent": "x"}}
	var sink propagation.TextMapCarrier
	allocs := testing.AllocsPerRun(100, func() {
		sink = otelcourier.NewHeaderCarrier(md)
		_ = sink.Get("traceparent")
	})
	require.Zero(t, allocs)
}
