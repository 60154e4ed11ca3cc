package middleware_test

import (
	"context"
	"errors"
	"log/slog"
	"testing"
	"testing/synctest"

	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/trace"

	"github.com/courierbus/courier"
	"github.com/courierbus/courier/middleware"
)

var (
	sendSpan = trace.NewSpanContext(trace.SpanContextConfig{
		TraceID: trace.TraceID{0x0a, 1}, SpanID: trace.SpanID{0x0b, 1}, TraceFlags: trace.FlagsSampled,
	})
	processSpan = trace.NewSpanContext(trace.SpanContextConfig{
		TraceID: trace.TraceID{0x0c, 2}, SpanID: trace.SpanID{0x0d, 2}, TraceFlags: trace.FlagsSampled,
	})
)

// withSpan stands in for a tracing middleware: it runs every delivery under
// processSpan.
var withSpan = courier.Middleware{Name: "span", Handle: func(next courier.HandlerFunc) courier.HandlerFunc {
	return func(ctx context.Context, env courier.Envelope) error {
		return next(trace.ContextWithSpanContext(ctx, processSpan), env)
	}
}}

func TestLoggingTraceIDs(t *testing.T) {
	logger, buf := jsonLogger(slog.LevelDebug)
	bus := newBus(t)
	bus.Use(withSpan, middleware.Logging(logger))
	q := newQueue[string](t, bus, "orders")
	require.NoError(t, q.Consume(func(context.Context, *courier.Message[string]) error { return nil }))
	require.NoError(t, q.Send(trace.ContextWithSpanContext(context.Background(), sendSpan), "pizza"))
	shutdown(t, bus)

	lines := logLines(t, buf)
	sent := withMsg(lines, "courier: message sent")
	require.Len(t, sent, 1)
	requireKeys(t, sent[0], "destination", "message_id", "correlation_id", "trace_id", "span_id")
	require.Equal(t, "0a010000000000000000000000000000", sent[0]["trace_id"])
	require.Equal(t, "0b01000000000000", sent[0]["span_id"])

	handled := withMsg(lines, "courier: message handled")
	require.Len(t, handled, 1)
	requireKeys(t, handled[0], "destination", "message_id", "correlation_id", "attempt", "duration", "trace_id", "span_id")
	require.Equal(t, processSpan.TraceID().String(), handled[0]["trace_id"])
	require.Equal(t, processSpan.SpanID().String(), handled[0]["span_id"])
}

// A failure that will not be retried is logged at Error at once, whatever
// attempts the policy had left.
func TestLoggingPermanentAtError(t *testing.T) {
	logger, buf := jsonLogger(slog.LevelDebug)
	bus := newBus(t)
	bus.Use(middleware.Logging(logger))
	q := newQueue[string](t, bus, "orders", courier.WithRetry(courier.RetryPolicy{MaxAttempts: 5}))
	require.NoError(t, q.Consume(func(context.Context, *courier.Message[string]) error {
		return courier.Permanent(errors.New("invalid order"))
	}))
	require.NoError(t, q.Send(context.Background(), "pizza"))
	shutdown(t, bus)

	failed := withMsg(logLines(t, buf), "courier: handler failed")
	require.Len(t, failed, 1)
	require.Equal(t, "ERROR", failed[0]["level"])
	require.EqualValues(t, 1, failed[0]["attempt"])
}

// A logger at Error hears of the final failure only.
func TestLoggingErrorLevelOnly(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		logger, buf := jsonLogger(slog.LevelError)
		bus := newBus(t)
		bus.Use(middleware.Logging(logger))
		q := newQueue[string](t, bus, "orders", courier.WithRetry(courier.RetryPolicy{MaxAttempts: 3}))
		require.NoError(t, q.Consume(func(context.Context, *courier.Message[string]) error { return errors.New("boom") }))
		require.NoError(t, q.Send(context.Background(), "pizza"))
		shutdown(t, bus)

		lines := logLines(t, buf)
		require.Len(t, lines, 1, "%s", buf.String())
		require.Equal(t, "ERROR", lines[0]["level"])
		require.EqualValues(t, 3, lines[0]["attempt"])
	})
}

// With every level off, a failed attempt allocates nothing and does not ask
// for a retry decision.
func TestLoggingDisabledNoAlloc(t *testing.T) {
	logger := slog.New(slog.NewTextHandler(nil, &slog.HandlerOptions{Level: slog.LevelError + 4}))
	mw := middleware.Logging(logger)
	failing := errors.New("boom")
	h := mw.Handle(func(context.Context, courier.Envelope) error { return failing })
	s := mw.Send(func(context.Context, courier.Envelope) error { return failing })
	msg := &courier.Message[int]{}
	ctx := trace.ContextWithSpanContext(context.Background(), processSpan)
	allocs := testing.AllocsPerRun(100, func() {
		_ = h(ctx, msg)
		_ = s(ctx, msg)
	})
	require.Zero(t, allocs)
}
