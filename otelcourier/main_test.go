package otelcourier_test

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/attribute"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
	"go.uber.org/goleak"

	"github.com/courierbus/courier"
	"github.com/courierbus/courier/otelcourier"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// harness is a bus instrumented with an SDK tracer provider that records
// every ended span and a meter provider read by hand.
type harness struct {
	spans  *tracetest.SpanRecorder
	reader *sdkmetric.ManualReader
	tp     *sdktrace.TracerProvider
	mp     *sdkmetric.MeterProvider
	bus    *courier.Bus
}

// newHarness builds the harness; inside a synctest bubble, call it inside.
func newHarness(t *testing.T, opts ...otelcourier.Option) *harness {
	t.Helper()
	h := &harness{spans: tracetest.NewSpanRecorder(), reader: sdkmetric.NewManualReader()}
	h.tp = sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(h.spans))
	h.mp = sdkmetric.NewMeterProvider(sdkmetric.WithReader(h.reader))
	providers := []otelcourier.Option{otelcourier.WithTracerProvider(h.tp), otelcourier.WithMeterProvider(h.mp)}
	busOpts := append([]courier.BusOption{courier.WithLogger(slog.New(slog.DiscardHandler))},
		otelcourier.BusOptions(providers...)...)
	h.bus = courier.New(busOpts...)
	h.bus.Use(otelcourier.Middleware(append(providers, opts...)...))
	t.Cleanup(func() { _ = h.bus.Close() })
	return h
}

// idle waits until every message sent so far has been handled or
// dead-lettered.
func (h *harness) idle(t *testing.T) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	require.NoError(t, h.bus.WaitIdle(ctx))
}

// named returns the ended spans called name, in the order they ended.
func (h *harness) named(name string) []sdktrace.ReadOnlySpan {
	var out []sdktrace.ReadOnlySpan
	for _, s := range h.spans.Ended() {
		if s.Name() == name {
			out = append(out, s)
		}
	}
	return out
}

// attrs returns a span's attributes as a map.
func attrs(s sdktrace.ReadOnlySpan) map[attribute.Key]attribute.Value {
	m := make(map[attribute.Key]attribute.Value)
	for _, kv := range s.Attributes() {
		m[kv.Key] = kv.Value
	}
	return m
}

// requireAttrs checks that s has the string and int attributes of want.
func requireAttrs(t *testing.T, s sdktrace.ReadOnlySpan, want map[string]any) {
	t.Helper()
	got := attrs(s)
	for k, v := range want {
		val, ok := got[attribute.Key(k)]
		require.Truef(t, ok, "span %q has no attribute %s (has %v)", s.Name(), k, got)
		switch v := v.(type) {
		case string:
			require.Equal(t, v, val.AsString(), k)
		case int:
			require.EqualValues(t, v, val.AsInt64(), k)
		default:
			t.Fatalf("unsupported type %T", v)
		}
	}
}

func requireNoAttr(t *testing.T, s sdktrace.ReadOnlySpan, key string) {
	t.Helper()
	_, ok := attrs(s)[attribute.Key(key)]
	require.Falsef(t, ok, "span %q has attribute %s", s.Name(), key)
}

// requireLinkedTo checks that s links to exactly the span context of from.
func requireLinkedTo(t *testing.T, s sdktrace.ReadOnlySpan, from trace.SpanContext) {
	t.Helper()
	links := s.Links()
	require.Len(t, links, 1, "links of %q", s.Name())
	require.Equal(t, from.TraceID(), links[0].SpanContext.TraceID())
	require.Equal(t, from.SpanID(), links[0].SpanContext.SpanID())
}

func hasEvent(s sdktrace.ReadOnlySpan, name string) bool {
	for _, e := range s.Events() {
		if e.Name == name {
			return true
		}
	}
	return false
}

// eventAttr returns the value of attribute key on span s's first event
// called name, or "" when there is none.
func eventAttr(s sdktrace.ReadOnlySpan, name, key string) string {
	for _, e := range s.Events() {
		if e.Name != name {
			continue
		}
		for _, a := range e.Attributes {
			if string(a.Key) == key {
				return a.Value.String()
			}
		}
	}
	return ""
}

// collect reads the meter provider's metrics.
func (h *harness) collect(t *testing.T) map[string]metricdata.Metrics {
	t.Helper()
	var rm metricdata.ResourceMetrics
	require.NoError(t, h.reader.Collect(context.Background(), &rm))
	out := make(map[string]metricdata.Metrics)
	for _, sm := range rm.ScopeMetrics {
		require.Equal(t, otelcourier.ScopeName, sm.Scope.Name)
		for _, m := range sm.Metrics {
			out[m.Name] = m
		}
	}
	return out
}

// series is one data point's attributes (as "key=value" strings, sorted by
// key) and value.
type series map[string]float64

// points returns the data points of a counter, histogram (their counts) or
// gauge, keyed by their attributes.
func points(t *testing.T, m metricdata.Metrics) series {
	t.Helper()
	out := series{}
	key := func(set attribute.Set) string {
		s := ""
		for _, kv := range set.ToSlice() {
			if kv.Key == "messaging.system" {
				continue // on every point; checked separately
			}
			if s != "" {
				s += ","
			}
			s += string(kv.Key) + "=" + kv.Value.String()
		}
		return s
	}
	switch d := m.Data.(type) {
	case metricdata.Sum[int64]:
		for _, p := range d.DataPoints {
			requireSystem(t, p.Attributes)
			out[key(p.Attributes)] += float64(p.Value)
		}
	case metricdata.Gauge[int64]:
		for _, p := range d.DataPoints {
			requireSystem(t, p.Attributes)
			out[key(p.Attributes)] += float64(p.Value)
		}
	case metricdata.Histogram[float64]:
		for _, p := range d.DataPoints {
			requireSystem(t, p.Attributes)
			out[key(p.Attributes)] += float64(p.Count)
		}
	default:
		t.Fatalf("metric %s: unexpected data %T", m.Name, m.Data)
	}
	return out
}

func requireSystem(t *testing.T, set attribute.Set) {
	t.Helper()
	v, ok := set.Value("messaging.system")
	require.True(t, ok, "no messaging.system in %v", set.ToSlice())
	require.Equal(t, otelcourier.System, v.AsString())
}
