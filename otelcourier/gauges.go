package otelcourier

import (
	"context"
	"errors"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"

	"github.com/courierbus/courier"
)

// ObserveBus registers observable gauges that read bus.Stats at each
// collection, one series per queue and per topic subscription (with
// messaging.destination.name and messaging.destination.subscription.name):
//
//   - courier.queue.depth: ready messages waiting for a worker;
//   - courier.queue.in_flight: messages a handler is working on;
//   - courier.queue.scheduled: messages waiting for a delay or a retry;
//   - courier.dead_letter_queue.depth: messages in the dead-letter queue.
//
// Call Unregister on the result when the bus is shut down, so that the meter
// provider stops reading it. Only [WithMeterProvider] matters; other options
// are ignored. A collection takes the locks of every queue in turn, as Stats
// does.
func ObserveBus(bus *courier.Bus, opts ...Option) (metric.Registration, error) {
	if bus == nil {
		return nil, courier.ErrNilBus
	}
	m := newConfig(opts).meter()
	gauge := func(name, desc string) (metric.Int64ObservableGauge, error) {
		return m.Int64ObservableGauge(name, metric.WithUnit("{message}"), metric.WithDescription(desc))
	}
	depth, err1 := gauge(MetricQueueDepth, "Number of ready messages waiting for a worker.")
	inFlight, err2 := gauge(MetricQueueInFlight, "Number of messages a handler is working on.")
	scheduled, err3 := gauge(MetricQueueScheduled, "Number of messages waiting for their delay or their next retry.")
	dead, err4 := gauge(MetricDeadLetterQueueLen, "Number of messages in the dead-letter queue.")
	if err := errors.Join(err1, err2, err3, err4); err != nil {
		return nil, err
	}
	return m.RegisterCallback(func(_ context.Context, o metric.Observer) error {
		observe := func(name, sub string, s courier.Stats) {
			opt := metric.WithAttributeSet(attribute.NewSet(destAttrs(name, sub)...))
			o.ObserveInt64(depth, int64(s.Depth), opt)
			o.ObserveInt64(inFlight, int64(s.InFlight), opt)
			o.ObserveInt64(scheduled, int64(s.Scheduled), opt)
			o.ObserveInt64(dead, int64(s.DeadLetters), opt)
		}
		st := bus.Stats()
		for name, s := range st.Queues {
			observe(name, "", s)
		}
		for topic, ts := range st.Topics {
			for sub, s := range ts.Subscriptions {
				observe(topic, sub, s)
			}
		}
		return nil
	}, depth, inFlight, scheduled, dead)
}
