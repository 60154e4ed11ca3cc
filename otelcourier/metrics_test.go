package otelcourier_test

import (
	"context"
	"errors"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/courierbus/courier"
	"github.com/courierbus/courier/otelcourier"
)

const (
	sendOrders = "messaging.destination.name=orders,messaging.operation.name=send,messaging.operation.type=send"
	procOrders = "messaging.destination.name=orders,messaging.operation.name=process,messaging.operation.type=process"
)

// A known scenario, and the value of every metric after it.
func TestMetrics(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t)
		orders, err := courier.NewQueue[string](h.bus, "orders", courier.WithRetry(courier.RetryPolicy{MaxAttempts: 3}))
		require.NoError(t, err)
		require.NoError(t, orders.Consume(func(_ context.Context, m *courier.Message[string]) error {
			switch {
			case m.Body == "flaky" && m.Attempt == 1:
				return errors.New("timeout")
			case m.Body == "bad":
				return courier.Permanent(errors.New("invalid"))
			}
			return nil
		}))
		events, err := courier.NewTopic[string](h.bus, "events")
		require.NoError(t, err)
		for _, s := range []string{"accounting", "audit"} {
			require.NoError(t, events.Subscribe(s, func(context.Context, *courier.Message[string]) error { return nil }))
		}
		dups, err := courier.NewQueue[string](h.bus, "dups", courier.WithMiddleware(dropAll))
		require.NoError(t, err)

		ctx := context.Background()
		for _, body := range []string{"ok", "flaky", "bad"} {
			require.NoError(t, orders.Send(ctx, body))
		}
		require.NoError(t, events.Publish(ctx, "created"))
		require.ErrorIs(t, dups.Send(ctx, "again"), courier.ErrDuplicate)
		h.idle(t)
		require.NoError(t, h.bus.Shutdown(ctx))
		require.ErrorIs(t, orders.Send(ctx, "late"), courier.ErrClosed)

		got := h.collect(t)
		sent := series{
			sendOrders: 3,
			"error.type=courier.ErrClosed," + sendOrders:                                                    1,
			"messaging.destination.name=events,messaging.operation.name=send,messaging.operation.type=send": 1,
			"messaging.destination.name=dups,messaging.operation.name=send,messaging.operation.type=send":   1,
		}
		require.Equal(t, sent, points(t, got[otelcourier.MetricSentMessages]))
		require.Equal(t, sent, points(t, got[otelcourier.MetricOperationDuration]))

		subPoint := func(sub string) string {
			return "messaging.destination.name=events,messaging.destination.subscription.name=" + sub +
				",messaging.operation.name=process,messaging.operation.type=process"
		}
		require.Equal(t, series{
			procOrders:             4, // ok, flaky twice, bad
			subPoint("accounting"): 1,
			subPoint("audit"):      1,
		}, points(t, got[otelcourier.MetricConsumedMessages]))
		require.Equal(t, series{
			procOrders: 2, // ok, and flaky's second attempt
			"error.type=*errors.errorString," + procOrders: 2, // flaky's first attempt, bad
			subPoint("accounting"):                         1,
			subPoint("audit"):                              1,
		}, points(t, got[otelcourier.MetricProcessDuration]))

		require.Equal(t, series{
			"error.type=*errors.errorString,messaging.destination.name=orders": 1,
		}, points(t, got[otelcourier.MetricRetries]))
		require.Equal(t, series{
			"messaging.courier.dead_letter.reason=permanent,messaging.destination.name=orders": 1,
		}, points(t, got[otelcourier.MetricDeadLetters]))
		require.Equal(t, series{
			"messaging.destination.name=dups,messaging.operation.name=send,messaging.operation.type=send": 1,
		}, points(t, got[otelcourier.MetricDuplicates]))

		// Units and bucket boundaries follow the conventions.
		require.Equal(t, "{message}", got[otelcourier.MetricSentMessages].Unit)
		pd := got[otelcourier.MetricProcessDuration]
		require.Equal(t, "s", pd.Unit)
		bounds := pd.Data.(metricdata.Histogram[float64]).DataPoints[0].Bounds
		require.Equal(t, []float64{0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10}, bounds)
	})
}

// Dead letters no handler saw are counted too, by reason.
func TestDeadLettersWithoutHandler(t *testing.T) {
	h := newHarness(t)
	q, err := courier.NewQueue[int](h.bus, "jobs", courier.Capacity(1), courier.WithOverflow(courier.DropNewest))
	require.NoError(t, err)
	require.NoError(t, q.Send(context.Background(), 1))
	require.ErrorIs(t, q.Send(context.Background(), 2), courier.ErrOverflow)

	got := h.collect(t)
	require.Equal(t, series{
		"messaging.courier.dead_letter.reason=overflow,messaging.destination.name=jobs": 1,
	}, points(t, got[otelcourier.MetricDeadLetters]))
	require.Equal(t, series{
		"messaging.destination.name=jobs,messaging.operation.name=send,messaging.operation.type=send":                                1,
		"error.type=courier.ErrOverflow,messaging.destination.name=jobs,messaging.operation.name=send,messaging.operation.type=send": 1,
	}, points(t, got[otelcourier.MetricSentMessages]))
}

func TestObserveBus(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t)
		reg, err := otelcourier.ObserveBus(h.bus, otelcourier.WithMeterProvider(h.mp))
		require.NoError(t, err)
		ctx := context.Background()

		backlog, err := courier.NewQueue[int](h.bus, "backlog") // nobody consumes it
		require.NoError(t, err)
		for i := range 3 {
			require.NoError(t, backlog.Send(ctx, i))
		}
		require.NoError(t, backlog.Send(ctx, 9, courier.WithDelay(time.Hour)))

		failing, err := courier.NewQueue[int](h.bus, "failing", courier.WithRetry(courier.RetryPolicy{MaxAttempts: 1}))
		require.NoError(t, err)
		require.NoError(t, failing.Consume(func(context.Context, *courier.Message[int]) error { return errors.New("no") }))
		require.NoError(t, failing.Send(ctx, 1))
		h.idle(t)

		topic, err := courier.NewTopic[int](h.bus, "events")
		require.NoError(t, err)
		started, release := make(chan struct{}), make(chan struct{})
		require.NoError(t, topic.Subscribe("slow", func(context.Context, *courier.Message[int]) error {
			close(started)
			<-release
			return nil
		}))
		require.NoError(t, topic.Publish(ctx, 1))
		<-started

		got := h.collect(t)
		slow := "messaging.destination.name=events,messaging.destination.subscription.name=slow"
		require.Equal(t, series{
			"messaging.destination.name=backlog": 3, "messaging.destination.name=failing": 0, slow: 0,
		}, points(t, got[otelcourier.MetricQueueDepth]))
		require.Equal(t, series{
			"messaging.destination.name=backlog": 1, "messaging.destination.name=failing": 0, slow: 0,
		}, points(t, got[otelcourier.MetricQueueScheduled]))
		require.Equal(t, series{
			"messaging.destination.name=backlog": 0, "messaging.destination.name=failing": 0, slow: 1,
		}, points(t, got[otelcourier.MetricQueueInFlight]))
		require.Equal(t, series{
			"messaging.destination.name=backlog": 0, "messaging.destination.name=failing": 1, slow: 0,
		}, points(t, got[otelcourier.MetricDeadLetterQueueLen]))
		close(release)

		require.NoError(t, reg.Unregister())
		_, ok := h.collect(t)[otelcourier.MetricQueueDepth]
		require.False(t, ok, "no observation after Unregister")
	})
}

func TestObserveNilBus(t *testing.T) {
	_, err := otelcourier.ObserveBus(nil)
	require.ErrorIs(t, err, courier.ErrNilBus)
}
