package middleware

import (
	"context"
	"log/slog"
	"time"

	"go.opentelemetry.io/otel/trace"

	"github.com/courierbus/courier"
	"github.com/courierbus/courier/internal/clock"
)

// Log messages written by [Logging].
const (
	msgHandled    = "courier: message handled"
	msgFailed     = "courier: handler failed"
	msgSent       = "courier: message sent"
	msgSendFailed = "courier: send failed"
)

// Logging returns a middleware, named "logging", that logs every delivery
// attempt and every send to logger; a nil logger means the slog.Default() of
// the time Logging is called.
//
// On the handling path it logs once the rest of the chain has returned: a
// success at Debug ("courier: message handled"), and a failure ("courier:
// handler failed", with an "error" attribute) at Warn when the message will
// be retried and at Error when it will not, because it goes to its
// dead-letter queue ([courier.WillRetry] tells). The attributes are
// "destination", "subscription" (only for a topic subscription),
// "message_id", "correlation_id", "attempt" and "duration", the time the
// rest of the chain took. A failed attempt is logged each time it fails,
// retries included. The bus also logs each dead letter, at Error, with the
// logger given to [courier.WithLogger].
//
// On the send path it logs a send the destination accepted at Debug
// ("courier: message sent") and one it refused at Warn ("courier: send
// failed", with an "error" attribute), with "destination", "message_id" and
// "correlation_id".
//
// When the context carries an OpenTelemetry span (a valid
// trace.SpanContext), records also get "trace_id" and "span_id" in their
// W3C hex form, so logs and traces can be joined. Register the tracing
// middleware (package otelcourier) before Logging, so that records fall
// inside its send and process spans.
//
// Records are logged with the handler's or sender's context. When logger is
// not enabled for a record's level no attribute is built, so a logger at Info
// or above makes the success paths cost little more than a clock reading.
func Logging(logger *slog.Logger) courier.Middleware {
	if logger == nil {
		logger = slog.Default()
	}
	return courier.Middleware{
		Name: "logging",
		Handle: func(next courier.HandlerFunc) courier.HandlerFunc {
			return func(ctx context.Context, env courier.Envelope) error {
				start := clock.Now()
				err := next(ctx, env)
				level, msg := slog.LevelDebug, msgHandled
				if err != nil {
					// Error is the higher level: when it is off, so is Warn,
					// and WillRetry need not be asked.
					if !logger.Enabled(ctx, slog.LevelError) {
						return err
					}
					level, msg = slog.LevelError, msgFailed
					if courier.WillRetry(ctx, err) {
						level = slog.LevelWarn
					}
				}
				if !logger.Enabled(ctx, level) {
					return err
				}
				elapsed := time.Since(start)
				md := env.Meta()
				var buf [9]slog.Attr
				attrs := append(buf[:0], slog.String("destination", md.Destination))
				if md.Subscription != "" {
					attrs = append(attrs, slog.String("subscription", md.Subscription))
				}
				attrs = append(attrs,
					slog.String("message_id", md.ID),
					slog.String("correlation_id", md.CorrelationID),
					slog.Int("attempt", md.Attempt),
					slog.Duration("duration", elapsed),
				)
				if err != nil {
					attrs = append(attrs, slog.Any("error", err))
				}
				attrs = appendTrace(ctx, attrs)
				logger.LogAttrs(ctx, level, msg, attrs...)
				return err
			}
		},
		Send: func(next courier.SendFunc) courier.SendFunc {
			return func(ctx context.Context, env courier.Envelope) error {
				// Read the metadata before next: once the message is
				// accepted, a worker may be handling it.
				md := env.Meta()
				dest, id, corr := md.Destination, md.ID, md.CorrelationID
				err := next(ctx, env)
				level, msg := slog.LevelDebug, msgSent
				if err != nil {
					level, msg = slog.LevelWarn, msgSendFailed
				}
				if !logger.Enabled(ctx, level) {
					return err
				}
				var buf [6]slog.Attr
				attrs := append(buf[:0],
					slog.String("destination", dest),
					slog.String("message_id", id),
					slog.String("correlation_id", corr),
				)
				if err != nil {
					attrs = append(attrs, slog.Any("error", err))
				}
				attrs = appendTrace(ctx, attrs)
				logger.LogAttrs(ctx, level, msg, attrs...)
				return err
			}
		},
	}
}

// appendTrace adds the trace and span IDs of the span in ctx, if any.
func appendTrace(ctx context.Context, attrs []slog.Attr) []slog.Attr {
	sc := trace.SpanContextFromContext(ctx)
	if !sc.IsValid() {
		return attrs
	}
	return append(attrs,
		slog.String("trace_id", sc.TraceID().String()),
		slog.String("span_id", sc.SpanID().String()))
}
