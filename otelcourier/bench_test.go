package otelcourier_test

import (
	"context"
	"log/slog"
	"sync/atomic"
	"testing"

	metricnoop "go.opentelemetry.io/otel/metric/noop"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	tracenoop "go.opentelemetry.io/otel/trace/noop"

	"github.com/courierbus/courier"
	"github.com/courierbus/courier/otelcourier"
)

// payload64 is the 64-byte body of the root package's benchmarks.
type payload64 struct{ A, B, C, D, E, F, G, H int64 }

// benchQueue sends b.N messages through one queue with one worker and a
// no-op handler, as the root package's BenchmarkQueue does, with mws on the
// bus. Its allocations per op are per message: send and delivery.
func benchQueue(b *testing.B, mws ...courier.Middleware) {
	bus := courier.New(courier.WithLogger(slog.New(slog.DiscardHandler)))
	b.Cleanup(func() { _ = bus.Close() })
	bus.Use(mws...)
	q, err := courier.NewQueue[payload64](bus, "bench", courier.Capacity(1024))
	if err != nil {
		b.Fatal(err)
	}
	var count atomic.Int64
	done := make(chan struct{})
	n := int64(b.N)
	if err := q.Consume(func(context.Context, *courier.Message[payload64]) error {
		if count.Add(1) == n {
			close(done)
		}
		return nil
	}); err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if err := q.Send(ctx, payload64{A: int64(i)}); err != nil {
			b.Fatal(err)
		}
	}
	<-done
	b.StopTimer()
	if err := bus.Shutdown(ctx); err != nil {
		b.Fatal(err)
	}
}

// BenchmarkQueueBaseline: no middleware.
func BenchmarkQueueBaseline(b *testing.B) { benchQueue(b) }

// BenchmarkTracingNoop: the middleware with no-op tracer and meter providers.
func BenchmarkTracingNoop(b *testing.B) {
	benchQueue(b, otelcourier.Middleware(
		otelcourier.WithTracerProvider(tracenoop.NewTracerProvider()),
		otelcourier.WithMeterProvider(metricnoop.NewMeterProvider())))
}

// BenchmarkTracingGlobalUnset: the middleware with its defaults in a program
// that installed no SDK (run it without the tests, which set the globals).
func BenchmarkTracingGlobalUnset(b *testing.B) { benchQueue(b, otelcourier.Middleware()) }

// BenchmarkTracingSDK: spans sampled and recorded by the SDK (not exported),
// metrics aggregated: what instrumentation costs when it is on.
func BenchmarkTracingSDK(b *testing.B) {
	tp := sdktrace.NewTracerProvider()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(sdkmetric.NewManualReader()))
	benchQueue(b, otelcourier.Middleware(otelcourier.WithTracerProvider(tp), otelcourier.WithMeterProvider(mp)))
}
