package otelcourier

import (
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/metric"
)

func (c *config) meter() metric.Meter {
	mp := c.mp
	if mp == nil {
		mp = otel.GetMeterProvider() // forwards to a provider set later
	}
	return mp.Meter(ScopeName, metric.WithSchemaURL(schemaURL))
}

// clientMetrics are the conventions' messaging metrics, and the duplicates
// counter, which the middleware records.
type clientMetrics struct {
	sent, consumed, duplicates metric.Int64Counter
	process, operation         metric.Float64Histogram
}

// newClientMetrics makes the instruments. An instrument that cannot be made
// is reported to otel.Handle and replaced by a no-op, as OpenTelemetry
// instrumentations do.
func newClientMetrics(m metric.Meter) clientMetrics {
	var cm clientMetrics
	var err error
	cm.sent, err = m.Int64Counter(MetricSentMessages,
		metric.WithUnit("{message}"),
		metric.WithDescription("Number of messages producer attempted to send to the broker."))
	handle(err)
	cm.consumed, err = m.Int64Counter(MetricConsumedMessages,
		metric.WithUnit("{message}"),
		metric.WithDescription("Number of messages that were delivered to the application."))
	handle(err)
	cm.process, err = m.Float64Histogram(MetricProcessDuration,
		metric.WithUnit("s"),
		metric.WithDescription("Duration of processing operation."),
		metric.WithExplicitBucketBoundaries(durationBuckets...))
	handle(err)
	cm.operation, err = m.Float64Histogram(MetricOperationDuration,
		metric.WithUnit("s"),
		metric.WithDescription("Duration of messaging operation initiated by a producer or consumer client."),
		metric.WithExplicitBucketBoundaries(durationBuckets...))
	handle(err)
	cm.duplicates, err = m.Int64Counter(MetricDuplicates,
		metric.WithUnit("{message}"),
		metric.WithDescription("Number of sends that duplicate detection dropped."))
	handle(err)
	return cm
}

func handle(err error) {
	if err != nil {
		otel.Handle(err)
	}
}
