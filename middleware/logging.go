package middleware

import (
	"context"
	"log/slog"
	"time"

	"github.com/courierbus/courier"
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
// success at Debug ("courier: message handled") and a failure at Warn
// ("courier: handler failed", with an "error" attribute). The attributes are
// "destination", "subscription" (only for a topic subscription),
// "message_id", "correlation_id", "attempt" and "duration", the time the
// rest of the chain took. A failed attempt is logged each time it fails,
// retries included.
//
// On the send path it logs a send the destination accepted at Debug
// ("courier: message sent") and one it refused at Warn ("courier: send
// failed", with an "error" attribute), with "destination", "message_id" and
// "correlation_id".
//
// Records are logged with the handler's or sender's context. When logger is
// not enabled for a record's level no attribute is built, so a logger at Info
// or above makes the success paths cost little more than a clock reading.
// Logging does not log dead letters: the bus already logs each one at Error
// with the logger given to [courier.WithLogger].
func Logging(logger *slog.Logger) courier.Middleware {
	if logger == nil {
		logger = slog.Default()
	}
	return courier.Middleware{
		Name: "logging",
		Handle: func(next courier.HandlerFunc) courier.HandlerFunc {
			return func(ctx context.Context, env courier.Envelope) error {
				start := time.Now()
				err := next(ctx, env)
				level, msg := slog.LevelDebug, msgHandled
				if err != nil {
					level, msg = slog.LevelWarn, msgFailed
				}
				if !logger.Enabled(ctx, level) {
					return err
				}
				elapsed := time.Since(start)
				md := env.Meta()
				var buf [7]slog.Attr
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
				var buf [4]slog.Attr
				attrs := append(buf[:0],
					slog.String("destination", dest),
					slog.String("message_id", id),
					slog.String("correlation_id", corr),
				)
				if err != nil {
					attrs = append(attrs, slog.Any("error", err))
				}
				logger.LogAttrs(ctx, level, msg, attrs...)
				return err
			}
		},
	}
}
