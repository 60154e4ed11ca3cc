package main

import (
	"context"
	"slices"
	"strconv"
	"strings"

	"go.opentelemetry.io/otel/attribute"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
)

// printMetrics prints the counters, one line per series, sorted.
func printMetrics(ctx context.Context, p *printer, reader *sdkmetric.ManualReader) error {
	var rm metricdata.ResourceMetrics
	if err := reader.Collect(ctx, &rm); err != nil {
		return err
	}
	var lines []string
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			sum, ok := m.Data.(metricdata.Sum[int64])
			if !ok {
				continue // histograms and gauges: see the package documentation
			}
			for _, dp := range sum.DataPoints {
				lines = append(lines, m.Name+"{"+labels(dp.Attributes)+"} "+strconv.FormatInt(dp.Value, 10))
			}
		}
	}
	slices.Sort(lines)
	p.printf("== counters ==\n")
	for _, l := range lines {
		p.printf("  %s\n", l)
	}
	return nil
}

// shortNames are the attributes printed, and how.
var shortNames = map[attribute.Key]string{
	"messaging.destination.name":              "destination",
	"messaging.destination.subscription.name": "subscription",
	"messaging.operation.name":                "operation",
	"messaging.courier.dead_letter.reason":    "reason",
	"error.type":                              "error.type",
}

// labels lists the attributes that tell series apart.
func labels(set attribute.Set) string {
	var parts []string
	for _, kv := range set.ToSlice() {
		k, ok := shortNames[kv.Key]
		if !ok {
			continue // the same on every series of a metric
		}
		parts = append(parts, k+"="+kv.Value.String())
	}
	slices.Sort(parts)
	return strings.Join(parts, ",")
}
