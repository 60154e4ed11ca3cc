package otelcourier

import (
	"context"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"

	"github.com/courierbus/courier"
	"github.com/courierbus/courier/internal/clock"
)

// handle wraps the handling path: a CONSUMER span "process {destination}"
// for every delivery attempt, linked to (or, with WithParentProcessSpan, a
// child of) the creation context carried in the message's headers.
func (mw *middleware) handle(next courier.HandlerFunc) courier.HandlerFunc {
	return func(ctx context.Context, env courier.Envelope) (err error) {
		md := env.Meta()
		var d *dest // looked up only when something is recorded
		attempt := md.Attempt
		var start time.Time
		if mw.metrics.process.Enabled(ctx) {
			start = clock.Now()
		}
		var span trace.Span
		tracer := mw.tracing.active()
		if tracer != nil || mw.cfg.parent {
			// The extracted context carries the creation context as its
			// remote span, and whatever else the propagator reads (baggage).
			ctx = mw.cfg.propagator().Extract(ctx, NewHeaderCarrier(md))
		}
		if tracer != nil {
			d = mw.dests.get(md.Destination, md.Subscription)
			ctx, span = mw.startProcess(ctx, tracer, d, md)
		}
		done := false
		defer func() {
			if !done {
				// A panic (or runtime.Goexit) is on its way up: end the span
				// and let the engine recover it.
				r := recover()
				var perr error
				if r != nil {
					perr = &courier.PanicError{Value: r}
				}
				mw.endProcess(ctx, span, d, md, attempt, start, perr)
				if r != nil {
					panic(r)
				}
			}
		}()
		err = next(ctx, env)
		done = true
		mw.endProcess(ctx, span, d, md, attempt, start, err)
		return err
	}
}

func (mw *middleware) startProcess(ctx context.Context, tracer trace.Tracer, d *dest, md *courier.Metadata) (context.Context, trace.Span) {
	attrs := make([]attribute.KeyValue, 0, len(d.processAttrs)+3)
	attrs = append(attrs, d.processAttrs...)
	attrs = append(attrs,
		keyMessageID.String(md.ID),
		keyConversation.String(md.CorrelationID),
		AttrDeliveryAttempt.Int(md.Attempt))
	opts := make([]trace.SpanStartOption, 0, 4)
	opts = append(opts, trace.WithSpanKind(trace.SpanKindConsumer), trace.WithAttributes(attrs...))
	if creation := trace.SpanContextFromContext(ctx); creation.IsValid() {
		opts = append(opts, trace.WithLinks(trace.Link{SpanContext: creation}))
	}
	if !mw.cfg.parent {
		opts = append(opts, trace.WithNewRoot())
	}
	return tracer.Start(ctx, d.processName, opts...)
}

// endProcess ends the span and records the metrics of a delivery attempt.
// d is nil when the span was not started; start is zero when the duration is
// not recorded.
func (mw *middleware) endProcess(ctx context.Context, span trace.Span, d *dest, md *courier.Metadata, attempt int, start time.Time, err error) {
	if span != nil {
		if err != nil {
			et := keyErrorType.String(ErrorType(err))
			span.SetAttributes(et)
			span.RecordError(err)
			span.SetStatus(codes.Error, err.Error())
			if retry, reason := courier.FailureOutcome(ctx, err); !retry {
				span.AddEvent(EventDeadLettered, trace.WithAttributes(et, AttrDeliveryAttempt.Int(attempt),
					AttrDeadLetterReason.String(string(reason))))
			}
		}
		span.End()
	}
	m := &mw.metrics
	consumed, timed := m.consumed.Enabled(ctx), !start.IsZero() && m.process.Enabled(ctx)
	if !consumed && !timed {
		return
	}
	if d == nil {
		d = mw.dests.get(md.Destination, md.Subscription)
	}
	if consumed {
		m.consumed.Add(ctx, 1, d.processAdd...)
	}
	if timed {
		opts := d.processRecord
		if err != nil {
			opts = []metric.RecordOption{metric.WithAttributeSet(withErrorType(d.processAttrs, err))}
		}
		m.process.Record(ctx, time.Since(start).Seconds(), opts...)
	}
}
