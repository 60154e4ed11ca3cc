package otelcourier

import (
	"context"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"

	"github.com/courierbus/courier"
)

// BusOptions returns the options that make a bus count its retries
// (courier.message.retries, with error.type) and its dead letters
// (courier.message.dead_letters, with messaging.courier.dead_letter.reason).
// Pass them to [courier.New]: the hooks they register are added to any
// others, and see every retry and dead letter of the bus, including those no
// handler saw (an expired time to live, an overflow, a shutdown).
//
// Only [WithMeterProvider] matters to them; other options are ignored.
func BusOptions(opts ...Option) []courier.BusOption {
	m := newConfig(opts).meter()
	retries, err := m.Int64Counter(MetricRetries,
		metric.WithUnit("{retry}"),
		metric.WithDescription("Number of failed delivery attempts that were scheduled for another attempt."))
	handle(err)
	dead, err := m.Int64Counter(MetricDeadLetters,
		metric.WithUnit("{message}"),
		metric.WithDescription("Number of messages moved to a dead-letter queue, by reason."))
	handle(err)
	return []courier.BusOption{
		courier.WithRetryHook(func(info courier.RetryInfo) {
			ctx := context.Background()
			if !retries.Enabled(ctx) {
				return
			}
			attrs := append(destAttrs(info.Destination, info.Subscription), keyErrorType.String(ErrorType(info.Err)))
			retries.Add(ctx, 1, metric.WithAttributeSet(attribute.NewSet(attrs...)))
		}),
		courier.WithDeadLetterHook(func(info courier.DeadLetterInfo) {
			ctx := context.Background()
			if !dead.Enabled(ctx) {
				return
			}
			attrs := append(destAttrs(info.Destination, info.Subscription), AttrDeadLetterReason.String(string(info.Reason)))
			dead.Add(ctx, 1, metric.WithAttributeSet(attribute.NewSet(attrs...)))
		}),
	}
}
