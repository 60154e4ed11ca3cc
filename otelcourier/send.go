package otelcourier

import (
	"context"
	"errors"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"

	"github.com/courierbus/courier"
	"github.com/courierbus/courier/internal/clock"
)

// send wraps the send path: a PRODUCER span "send {destination}" whose
// context is injected into the message's headers before the message is
// passed on.
func (mw *middleware) send(next courier.SendFunc) courier.SendFunc {
	return func(ctx context.Context, env courier.Envelope) error {
		md := env.Meta()
		name := md.Destination
		var d *dest // looked up only when something is recorded
		var start time.Time
		if mw.metrics.operation.Enabled(ctx) {
			start = clock.Now()
		}
		var span trace.Span
		if tracer := mw.tracing.active(); tracer != nil {
			d = mw.dests.get(name, "")
			attrs := make([]attribute.KeyValue, 0, len(d.sendAttrs)+2)
			attrs = append(attrs, d.sendAttrs...)
			attrs = append(attrs, keyMessageID.String(md.ID), keyConversation.String(md.CorrelationID))
			ctx, span = tracer.Start(ctx, d.sendName,
				trace.WithSpanKind(trace.SpanKindProducer), trace.WithAttributes(attrs...))
		}
		// Without a span of ours, the caller's context (if any) is the
		// creation context, as a no-op tracer would make it.
		mw.cfg.propagator().Inject(ctx, NewHeaderCarrier(md))
		// From here on the engine owns env: next may hand it to a worker.
		err := next(ctx, env)
		mw.endSend(ctx, span, d, name, start, err)
		return err
	}
}

// endSend ends the span and records the metrics of a send. d is nil when
// the span was not started; start is zero when the duration is not recorded.
func (mw *middleware) endSend(ctx context.Context, span trace.Span, d *dest, name string, start time.Time, err error) {
	dup := errors.Is(err, courier.ErrDuplicate)
	failed := err != nil && !dup
	if span != nil {
		switch {
		case dup:
			span.AddEvent(EventDuplicateDropped)
		case failed:
			span.SetAttributes(keyErrorType.String(ErrorType(err)))
			span.SetStatus(codes.Error, err.Error())
		}
		span.End()
	}
	m := &mw.metrics
	dupOn := dup && m.duplicates.Enabled(ctx)
	sent, op := m.sent.Enabled(ctx), !start.IsZero() && m.operation.Enabled(ctx)
	if !dupOn && !sent && !op {
		return
	}
	if d == nil {
		d = mw.dests.get(name, "")
	}
	if dupOn {
		m.duplicates.Add(ctx, 1, d.sendAdd...)
	}
	addOpts, recOpts := d.sendAdd, d.sendRecord
	if failed {
		set := metric.WithAttributeSet(withErrorType(d.sendAttrs, err))
		addOpts, recOpts = []metric.AddOption{set}, []metric.RecordOption{set}
	}
	if sent {
		m.sent.Add(ctx, 1, addOpts...)
	}
	if op {
		m.operation.Record(ctx, time.Since(start).Seconds(), recOpts...)
	}
}

// withErrorType returns attrs and the error.type of err as a set.
func withErrorType(attrs []attribute.KeyValue, err error) attribute.Set {
	kv := make([]attribute.KeyValue, 0, len(attrs)+1)
	kv = append(kv, attrs...)
	kv = append(kv, keyErrorType.String(ErrorType(err)))
	return attribute.NewSet(kv...)
}
