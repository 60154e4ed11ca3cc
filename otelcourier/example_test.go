package otelcourier_test

import (
	"context"
	"fmt"
	"log/slog"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/courierbus/courier"
	"github.com/courierbus/courier/otelcourier"
)

// A send span and the process span of its delivery, linked across the
// asynchronous hop. A real program installs an exporting SDK instead of the
// recorder, and usually leaves the providers to the global defaults.
func ExampleMiddleware() {
	spans := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(spans))

	bus := courier.New(courier.WithLogger(slog.New(slog.DiscardHandler)))
	defer bus.Close()
	bus.Use(otelcourier.Middleware(otelcourier.WithTracerProvider(tp)))

	orders, _ := courier.NewQueue[string](bus, "orders")
	_ = orders.Consume(func(context.Context, *courier.Message[string]) error { return nil })
	_ = orders.Send(context.Background(), "pizza")
	_ = bus.WaitIdle(context.Background())

	byName := map[string]sdktrace.ReadOnlySpan{}
	for _, s := range spans.Ended() {
		byName[s.Name()] = s
	}
	send, process := byName["send orders"], byName["process orders"]
	fmt.Println(send.Name(), send.SpanKind())
	fmt.Println(process.Name(), process.SpanKind())
	fmt.Println("linked:", process.Links()[0].SpanContext.SpanID() == send.SpanContext().SpanID())
	fmt.Println("same trace:", process.SpanContext().TraceID() == send.SpanContext().TraceID())
	// Output:
	// send orders producer
	// process orders consumer
	// linked: true
	// same trace: false
}
