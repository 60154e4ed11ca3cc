// Command tracing runs a small order flow on a Courier bus instrumented with
// package otelcourier, records every span in memory, and prints one trace
// tree per order:
//
//   - three orders go to the orders queue; a worker charges each and
//     publishes a PaymentCompleted event to the payments.completed topic,
//     which accounting, analytics and fulfillment receive;
//   - the payment gateway times out on the first attempt of O-2, which is
//     retried;
//   - O-3 fails every attempt and is dead-lettered; once the fix is
//     deployed, the dead-letter queue is replayed.
//
// A process span is linked to the send span of its message (the semantic
// conventions' default) rather than its child; the tree shows it under that
// send span, marked "⇢". Run it with
//
//	go run ./examples/tracing          # the trees and a metrics summary
//	go run ./examples/tracing -json    # also every span as JSON, with the stdout exporter, on stderr
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel/exporters/stdout/stdouttrace"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/courierbus/courier"
	"github.com/courierbus/courier/middleware"
	"github.com/courierbus/courier/otelcourier"
)

// Order asks for a customer to be charged.
type Order struct {
	ID     string
	Amount int64 // cents
}

// PaymentCompleted is published once an order is paid.
type PaymentCompleted struct{ OrderID string }

var (
	errTimeout    = errors.New("payment gateway: timeout")
	errZeroAmount = errors.New("payment gateway: amount must be positive")
)

var subscribers = []string{"accounting", "analytics", "fulfillment"}

func main() {
	jsonSpans := flag.Bool("json", false, "also write every span as JSON to stderr with the stdout exporter")
	flag.Parse()
	var export io.Writer
	if *jsonSpans {
		export = os.Stderr
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	err := run(ctx, os.Stdout, os.Stderr, export)
	cancel()
	if err != nil {
		fmt.Fprintln(os.Stderr, "tracing:", err)
		os.Exit(1)
	}
}

// run runs the flow, then prints the trace trees and a metrics summary to
// stdout. The bus logs retries (Warn) and dead letters (Error) to logs, with
// the trace and span IDs; when export is not nil, spans are also written to
// it as JSON.
func run(ctx context.Context, stdout, logs, export io.Writer) error {
	spans := tracetest.NewSpanRecorder()
	tpOpts := []sdktrace.TracerProviderOption{sdktrace.WithSpanProcessor(spans)}
	if export != nil {
		exp, err := stdouttrace.New(stdouttrace.WithWriter(export), stdouttrace.WithPrettyPrint())
		if err != nil {
			return err
		}
		tpOpts = append(tpOpts, sdktrace.WithSyncer(exp))
	}
	tp := sdktrace.NewTracerProvider(tpOpts...)
	defer func() { _ = tp.Shutdown(context.Background()) }()
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	defer func() { _ = mp.Shutdown(context.Background()) }()

	// In a program with the SDK installed globally (otel.SetTracerProvider,
	// otel.SetMeterProvider), these options are not needed.
	providers := []otelcourier.Option{otelcourier.WithTracerProvider(tp), otelcourier.WithMeterProvider(mp)}
	logger := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelWarn}))
	bus := courier.New(append(otelcourier.BusOptions(providers...),
		courier.WithLogger(slog.New(slog.DiscardHandler)))...) // middleware.Logging logs the failures
	defer bus.Close()
	bus.Use(otelcourier.Middleware(providers...), middleware.Logging(logger))
	reg, err := otelcourier.ObserveBus(bus, providers...)
	if err != nil {
		return err
	}
	defer func() { _ = reg.Unregister() }()

	orders, err := courier.NewQueue[Order](bus, "orders",
		courier.WithRetry(courier.RetryPolicy{MaxAttempts: 2, InitialInterval: 10 * time.Millisecond}))
	if err != nil {
		return err
	}
	payments, err := courier.NewTopic[PaymentCompleted](bus, "payments.completed")
	if err != nil {
		return err
	}
	for _, name := range subscribers {
		if err := payments.Subscribe(name, func(context.Context, *courier.Message[PaymentCompleted]) error { return nil }); err != nil {
			return err
		}
	}
	var fixDeployed atomic.Bool
	if err := orders.Consume(func(ctx context.Context, m *courier.Message[Order]) error {
		switch {
		case m.Body.ID == "O-2" && m.Attempt == 1:
			return errTimeout
		case m.Body.Amount == 0 && !fixDeployed.Load():
			return errZeroAmount
		}
		return payments.Publish(ctx, PaymentCompleted{OrderID: m.Body.ID})
	}); err != nil {
		return err
	}

	placed := []Order{{"O-1", 4200}, {"O-2", 1750}, {"O-3", 0}}
	for i, o := range placed {
		checkout := courier.WithCorrelationID(ctx, fmt.Sprintf("checkout-%d", i+1))
		if err := orders.Send(checkout, o); err != nil {
			return err
		}
	}
	if err := bus.WaitIdle(ctx); err != nil {
		return err
	}
	if n := orders.DeadLetters().Count(); n != 1 {
		return fmt.Errorf("%d dead letters, want 1", n)
	}
	fixDeployed.Store(true)
	if _, err := orders.DeadLetters().Replay(ctx); err != nil {
		return err
	}
	if err := bus.WaitIdle(ctx); err != nil {
		return err
	}
	if err := bus.Shutdown(ctx); err != nil {
		return err
	}

	p := &printer{w: stdout}
	for i, o := range placed {
		conv := fmt.Sprintf("checkout-%d", i+1)
		p.printf("== order %s (conversation %s) ==\n", o.ID, conv)
		printTree(p, buildForest(spans.Ended(), conv))
		p.printf("\n")
	}
	if err := printMetrics(ctx, p, reader); err != nil {
		return err
	}
	return p.err
}

// printer keeps the first write error.
type printer struct {
	w   io.Writer
	err error
}

func (p *printer) printf(format string, args ...any) {
	if p.err == nil {
		_, p.err = fmt.Fprintf(p.w, format, args...)
	}
}
