package otelcourier_test

import (
	"context"
	"log/slog"
	"testing"

	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/propagation"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"

	"github.com/courierbus/courier"
	"github.com/courierbus/courier/otelcourier"
)

// callerSpan is a sampled span context of some other instrumentation, which
// the middleware must pass on even when it starts no span of its own.
var callerSpan = trace.NewSpanContext(trace.SpanContextConfig{
	TraceID:    trace.TraceID{0xaa, 1},
	SpanID:     trace.SpanID{0xbb, 2},
	TraceFlags: trace.FlagsSampled,
})

// seen is what a handler saw of its message's trace.
type seen struct {
	traceparent string
	span        trace.SpanContext
	tenant      string // baggage
}

// tracedQueue returns a queue of a new bus using mw, whose handler reports
// what it saw.
func tracedQueue(t *testing.T, mw courier.Middleware) (*courier.Queue[int], <-chan seen, *courier.Bus) {
	t.Helper()
	bus := courier.New(courier.WithLogger(slog.New(slog.DiscardHandler)))
	t.Cleanup(func() { _ = bus.Close() })
	bus.Use(mw)
	q, err := courier.NewQueue[int](bus, "jobs")
	require.NoError(t, err)
	ch := make(chan seen, 1)
	require.NoError(t, q.Consume(func(ctx context.Context, m *courier.Message[int]) error {
		ch <- seen{
			traceparent: m.Header("traceparent"),
			span:        trace.SpanContextFromContext(ctx),
			tenant:      baggageOf(ctx, "tenant"),
		}
		return nil
	}))
	return q, ch, bus
}

func traceparent(sc trace.SpanContext) string {
	return "00-" + sc.TraceID().String() + "-" + sc.SpanID().String() + "-" + sc.TraceFlags().String()
}

// With a no-op provider no span is started, but the caller's context still
// travels in the headers, and becomes the handler's with WithParentProcessSpan.
func TestNoopTracerProviderPropagates(t *testing.T) {
	ctx := trace.ContextWithSpanContext(context.Background(), callerSpan)
	tp := otelcourier.WithTracerProvider(noop.NewTracerProvider())

	q, got, _ := tracedQueue(t, otelcourier.Middleware(tp))
	require.NoError(t, q.Send(ctx, 1))
	s := <-got
	require.Equal(t, traceparent(callerSpan), s.traceparent)
	require.False(t, s.span.IsValid(), "links mode: no parent for the handler")

	q, got, _ = tracedQueue(t, otelcourier.Middleware(tp, otelcourier.WithParentProcessSpan()))
	require.NoError(t, q.Send(ctx, 1))
	s = <-got
	require.Equal(t, callerSpan.SpanID(), s.span.SpanID())
	require.True(t, s.span.IsRemote())

	q, got, _ = tracedQueue(t, otelcourier.Middleware(tp))
	require.NoError(t, q.Send(context.Background(), 1))
	require.Empty(t, (<-got).traceparent, "nothing to propagate")
}

// The global providers are followed: while no SDK is set, no span is
// started; once one is set, the middleware built before uses it. A global
// propagator, once set, replaces the W3C default. These change process-wide
// state that cannot be undone, and the other tests do not depend on it.
func TestGlobalProvidersFollowed(t *testing.T) {
	mw := otelcourier.Middleware()
	q, got, bus := tracedQueue(t, mw)

	if _, set := otel.GetTracerProvider().(*sdktrace.TracerProvider); !set {
		ctx := trace.ContextWithSpanContext(context.Background(), callerSpan)
		require.NoError(t, q.Send(ctx, 1))
		s := <-got
		require.Equal(t, traceparent(callerSpan), s.traceparent, "W3C by default, the caller's context")
		require.False(t, s.span.IsValid())
	}

	rec := tracetest.NewSpanRecorder()
	otel.SetTracerProvider(sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec)))
	otel.SetTextMapPropagator(propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{}))

	require.NoError(t, q.Send(withBaggage(t, "tenant", "acme"), 1))
	s := <-got
	require.True(t, s.span.IsValid(), "the handler runs under a process span")
	require.NotEmpty(t, s.traceparent)
	require.Equal(t, "acme", s.tenant, "baggage crosses: the global propagator is used")
	// The process span ends after the handler returns: wait for that.
	require.NoError(t, bus.WaitIdle(t.Context()))
	require.Len(t, rec.Ended(), 2, "a send and a process span")
}
