package otelcourier_test

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/courierbus/courier"
	"github.com/courierbus/courier/otelcourier"
)

// A send makes a PRODUCER span whose context travels in the headers; the
// delivery makes a CONSUMER span in a trace of its own, linked to it; a send
// from the handler is a child of the process span.
func TestSendAndProcessSpans(t *testing.T) {
	h := newHarness(t)
	orders, err := courier.NewQueue[string](h.bus, "orders")
	require.NoError(t, err)
	receipts, err := courier.NewQueue[string](h.bus, "receipts")
	require.NoError(t, err)
	var headers map[string]string
	var handlerSC trace.SpanContext
	require.NoError(t, orders.Consume(func(ctx context.Context, m *courier.Message[string]) error {
		headers = m.Headers
		handlerSC = trace.SpanContextFromContext(ctx)
		return receipts.Send(ctx, "receipt for "+m.Body)
	}))
	require.NoError(t, receipts.Consume(func(context.Context, *courier.Message[string]) error { return nil }))

	ctx := courier.WithCorrelationID(context.Background(), "checkout-1")
	require.NoError(t, orders.Send(ctx, "pizza"))
	h.idle(t)

	sends := h.named("send orders")
	require.Len(t, sends, 1)
	send := sends[0]
	require.Equal(t, trace.SpanKindProducer, send.SpanKind())
	require.False(t, send.Parent().IsValid(), "sent outside any span: a root")
	requireAttrs(t, send, map[string]any{
		"messaging.system":                  "courier",
		"messaging.operation.type":          "send",
		"messaging.operation.name":          "send",
		"messaging.destination.name":        "orders",
		"messaging.message.conversation_id": "checkout-1",
	})
	requireNoAttr(t, send, "messaging.destination.subscription.name")
	requireNoAttr(t, send, "error.type")
	id := attrs(send)["messaging.message.id"].AsString()
	require.Len(t, id, 36)

	// The creation context is in the headers, as a W3C traceparent.
	sc := send.SpanContext()
	require.Equal(t, "00-"+sc.TraceID().String()+"-"+sc.SpanID().String()+"-01", headers["traceparent"])

	procs := h.named("process orders")
	require.Len(t, procs, 1)
	proc := procs[0]
	require.Equal(t, trace.SpanKindConsumer, proc.SpanKind())
	requireAttrs(t, proc, map[string]any{
		"messaging.system":                           "courier",
		"messaging.operation.type":                   "process",
		"messaging.operation.name":                   "process",
		"messaging.destination.name":                 "orders",
		"messaging.message.id":                       id,
		"messaging.message.conversation_id":          "checkout-1",
		"messaging.courier.message.delivery_attempt": 1,
	})
	require.Equal(t, codes.Unset, proc.Status().Code)
	requireLinkedTo(t, proc, sc)
	require.False(t, proc.Parent().IsValid(), "linked, not a child, by default")
	require.NotEqual(t, sc.TraceID(), proc.SpanContext().TraceID())
	require.Equal(t, proc.SpanContext().SpanID(), handlerSC.SpanID(), "the handler runs under the process span")

	// The handler's send belongs to the process span's trace.
	inner := h.named("send receipts")
	require.Len(t, inner, 1)
	require.Equal(t, proc.SpanContext().SpanID(), inner[0].Parent().SpanID())
	require.Equal(t, proc.SpanContext().TraceID(), inner[0].SpanContext().TraceID())
	procReceipts := h.named("process receipts")
	require.Len(t, procReceipts, 1)
	requireLinkedTo(t, procReceipts[0], inner[0].SpanContext())
}

// A send made under a span of the caller is that span's child.
func TestSendSpanChildOfCaller(t *testing.T) {
	h := newHarness(t)
	q, err := courier.NewQueue[int](h.bus, "jobs")
	require.NoError(t, err)
	ctx, parent := h.tp.Tracer("test").Start(context.Background(), "http request")
	require.NoError(t, q.Send(ctx, 1))
	parent.End()
	sends := h.named("send jobs")
	require.Len(t, sends, 1)
	require.Equal(t, parent.SpanContext().SpanID(), sends[0].Parent().SpanID())
	require.Equal(t, parent.SpanContext().TraceID(), sends[0].SpanContext().TraceID())
}

func TestParentProcessSpan(t *testing.T) {
	h := newHarness(t, otelcourier.WithParentProcessSpan())
	q, err := courier.NewQueue[int](h.bus, "jobs")
	require.NoError(t, err)
	require.NoError(t, q.Consume(func(context.Context, *courier.Message[int]) error { return nil }))
	require.NoError(t, q.Send(context.Background(), 1))
	h.idle(t)

	send, proc := h.named("send jobs"), h.named("process jobs")
	require.Len(t, send, 1)
	require.Len(t, proc, 1)
	sc := send[0].SpanContext()
	require.Equal(t, sc.SpanID(), proc[0].Parent().SpanID())
	require.True(t, proc[0].Parent().IsRemote(), "the parent comes from the headers")
	require.Equal(t, sc.TraceID(), proc[0].SpanContext().TraceID())
	requireLinkedTo(t, proc[0], sc)
}

// Each attempt has its own process span with its attempt number, every one
// linked to the one send span; failures carry error.type and status Error,
// and a retried failure no dead-letter event.
func TestRetrySpans(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t)
		q, err := courier.NewQueue[int](h.bus, "jobs", courier.WithRetry(courier.RetryPolicy{MaxAttempts: 3}))
		require.NoError(t, err)
		require.NoError(t, q.Consume(func(_ context.Context, m *courier.Message[int]) error {
			if m.Attempt < 3 {
				return errors.New("flaky")
			}
			return nil
		}))
		require.NoError(t, q.Send(context.Background(), 1))
		h.idle(t)

		send := h.named("send jobs")
		require.Len(t, send, 1)
		procs := h.named("process jobs")
		require.Len(t, procs, 3)
		for i, p := range procs {
			requireAttrs(t, p, map[string]any{"messaging.courier.message.delivery_attempt": i + 1})
			requireLinkedTo(t, p, send[0].SpanContext())
			require.False(t, hasEvent(p, otelcourier.EventDeadLettered), "attempt %d", i+1)
		}
		for _, p := range procs[:2] {
			require.Equal(t, codes.Error, p.Status().Code)
			require.Equal(t, "flaky", p.Status().Description)
			requireAttrs(t, p, map[string]any{"error.type": "*errors.errorString"})
			require.True(t, hasEvent(p, "exception"))
		}
		require.Equal(t, codes.Unset, procs[2].Status().Code)
		requireNoAttr(t, procs[2], "error.type")
		require.NotEqual(t, procs[0].SpanContext().TraceID(), procs[1].SpanContext().TraceID(),
			"each attempt is a trace of its own, linked to the send")
	})
}

// The last failing attempt gets the dead-letter event; a replay is delivered
// with the original creation context, its attempts counted from 1 again.
func TestDeadLetterAndReplay(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t)
		q, err := courier.NewQueue[int](h.bus, "jobs", courier.WithRetry(courier.RetryPolicy{MaxAttempts: 2}))
		require.NoError(t, err)
		var fixed atomic.Bool
		require.NoError(t, q.Consume(func(context.Context, *courier.Message[int]) error {
			if fixed.Load() {
				return nil
			}
			return errors.New("bug")
		}))
		require.NoError(t, q.Send(context.Background(), 1))
		h.idle(t)
		require.Equal(t, 1, q.DeadLetters().Count())

		send := h.named("send jobs")
		require.Len(t, send, 1)
		procs := h.named("process jobs")
		require.Len(t, procs, 2)
		require.False(t, hasEvent(procs[0], otelcourier.EventDeadLettered))
		require.True(t, hasEvent(procs[1], otelcourier.EventDeadLettered))
		require.Equal(t, "max_attempts", eventAttr(procs[1], otelcourier.EventDeadLettered, string(otelcourier.AttrDeadLetterReason)))

		fixed.Store(true)
		n, err := q.DeadLetters().Replay(context.Background())
		require.NoError(t, err)
		require.Equal(t, 1, n)
		h.idle(t)

		require.Len(t, h.named("send jobs"), 1, "a replay is not a send")
		procs = h.named("process jobs")
		require.Len(t, procs, 3)
		replayed := procs[2]
		requireLinkedTo(t, replayed, send[0].SpanContext())
		requireAttrs(t, replayed, map[string]any{"messaging.courier.message.delivery_attempt": 1})
		require.Equal(t, codes.Unset, replayed.Status().Code)
	})
}

func TestPermanentErrorDeadLetterEvent(t *testing.T) {
	h := newHarness(t)
	q, err := courier.NewQueue[int](h.bus, "jobs")
	require.NoError(t, err)
	require.NoError(t, q.Consume(func(context.Context, *courier.Message[int]) error {
		return courier.Permanent(errors.New("invalid"))
	}))
	require.NoError(t, q.Send(context.Background(), 1))
	h.idle(t)
	procs := h.named("process jobs")
	require.Len(t, procs, 1)
	require.True(t, hasEvent(procs[0], otelcourier.EventDeadLettered), "a permanent error is never retried")
	require.Equal(t, "permanent", eventAttr(procs[0], otelcourier.EventDeadLettered, string(otelcourier.AttrDeadLetterReason)))
	requireAttrs(t, procs[0], map[string]any{"error.type": "*errors.errorString"})
}

// A delayed message keeps its creation context while it waits.
func TestDelayedMessage(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t)
		q, err := courier.NewQueue[int](h.bus, "reminders")
		require.NoError(t, err)
		var handledAt time.Time
		require.NoError(t, q.Consume(func(context.Context, *courier.Message[int]) error {
			handledAt = time.Now()
			return nil
		}))
		sentAt := time.Now()
		require.NoError(t, q.Send(context.Background(), 1, courier.WithDelay(time.Hour)))
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Hour) // virtual time
		defer cancel()
		require.NoError(t, h.bus.WaitIdle(ctx))

		require.Equal(t, time.Hour, handledAt.Sub(sentAt))
		send, procs := h.named("send reminders"), h.named("process reminders")
		require.Len(t, send, 1)
		require.Len(t, procs, 1)
		requireLinkedTo(t, procs[0], send[0].SpanContext())
		require.Equal(t, time.Hour, procs[0].StartTime().Sub(send[0].StartTime()))
	})
}

// One publish, one send span; each of three subscriptions has its process
// span, named after the topic, with its subscription, linked to the send.
func TestTopicFanout(t *testing.T) {
	h := newHarness(t)
	topic, err := courier.NewTopic[string](h.bus, "payments")
	require.NoError(t, err)
	subs := []string{"accounting", "analytics", "fulfillment"}
	for _, s := range subs {
		require.NoError(t, topic.Subscribe(s, func(context.Context, *courier.Message[string]) error { return nil }))
	}
	require.NoError(t, topic.Publish(context.Background(), "paid"))
	h.idle(t)

	send := h.named("send payments")
	require.Len(t, send, 1)
	id := attrs(send[0])["messaging.message.id"].AsString()
	procs := h.named("process payments")
	require.Len(t, procs, 3)
	seen := map[string]bool{}
	for _, p := range procs {
		requireLinkedTo(t, p, send[0].SpanContext())
		requireAttrs(t, p, map[string]any{"messaging.destination.name": "payments", "messaging.message.id": id})
		seen[attrs(p)["messaging.destination.subscription.name"].AsString()] = true
	}
	require.Equal(t, map[string]bool{"accounting": true, "analytics": true, "fulfillment": true}, seen)
}

func TestSendFailure(t *testing.T) {
	h := newHarness(t)
	q, err := courier.NewQueue[int](h.bus, "jobs")
	require.NoError(t, err)
	require.NoError(t, h.bus.Shutdown(context.Background()))
	require.ErrorIs(t, q.Send(context.Background(), 1), courier.ErrClosed)
	send := h.named("send jobs")
	require.Len(t, send, 1)
	require.Equal(t, codes.Error, send[0].Status().Code)
	requireAttrs(t, send[0], map[string]any{"error.type": "courier.ErrClosed"})
}

// dropAll is a send middleware that drops every message as a duplicate, as
// duplicate detection does for a resend.
var dropAll = courier.Middleware{Name: "drop", Send: func(courier.SendFunc) courier.SendFunc {
	return func(context.Context, courier.Envelope) error { return courier.ErrDuplicate }
}}

func TestDuplicateDropped(t *testing.T) {
	h := newHarness(t)
	h.bus.Use(dropAll)
	q, err := courier.NewQueue[int](h.bus, "jobs")
	require.NoError(t, err)
	require.ErrorIs(t, q.Send(context.Background(), 1), courier.ErrDuplicate)
	send := h.named("send jobs")
	require.Len(t, send, 1)
	require.True(t, hasEvent(send[0], otelcourier.EventDuplicateDropped))
	require.Equal(t, codes.Unset, send[0].Status().Code, "a dropped duplicate is not a failure")
	requireNoAttr(t, send[0], "error.type")
}

// A panic in the handler still ends the process span, as a failure.
func TestPanicEndsSpan(t *testing.T) {
	h := newHarness(t)
	q, err := courier.NewQueue[int](h.bus, "jobs", courier.WithRetry(courier.RetryPolicy{MaxAttempts: 1}))
	require.NoError(t, err)
	require.NoError(t, q.Consume(func(context.Context, *courier.Message[int]) error { panic("boom") }))
	require.NoError(t, q.Send(context.Background(), 1))
	h.idle(t)
	procs := h.named("process jobs")
	require.Len(t, procs, 1)
	require.Equal(t, codes.Error, procs[0].Status().Code)
	requireAttrs(t, procs[0], map[string]any{"error.type": "courier.PanicError"})
	require.True(t, hasEvent(procs[0], otelcourier.EventDeadLettered))
	d := q.DeadLetters().List()
	require.Len(t, d, 1)
	var pe *courier.PanicError
	require.ErrorAs(t, d[0].Err, &pe, "the engine still sees the panic")
}

// A custom propagator carries baggage to the handler along with the trace.
func TestWithPropagator(t *testing.T) {
	prop := propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{})
	h := newHarness(t, otelcourier.WithPropagator(prop))
	q, err := courier.NewQueue[int](h.bus, "jobs")
	require.NoError(t, err)
	got := make(chan string, 1)
	require.NoError(t, q.Consume(func(ctx context.Context, _ *courier.Message[int]) error {
		got <- baggageOf(ctx, "tenant")
		return nil
	}))
	require.NoError(t, q.Send(withBaggage(t, "tenant", "acme"), 1))
	require.Equal(t, "acme", <-got)
	h.idle(t)
	requireLinkedTo(t, h.named("process jobs")[0], h.named("send jobs")[0].SpanContext())
}

// Building the middleware starts no span of its own, even with a sampler
// that records everything.
func TestMiddlewareStartsNoProbeSpan(t *testing.T) {
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSampler(sdktrace.AlwaysSample()), sdktrace.WithSpanProcessor(rec))
	t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	_ = otelcourier.Middleware(otelcourier.WithTracerProvider(tp))
	require.Empty(t, rec.Started())
}
