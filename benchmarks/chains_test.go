package benchmarks

import (
	"fmt"
	"log/slog"
	"strings"

	metricnoop "go.opentelemetry.io/otel/metric/noop"
	tracenoop "go.opentelemetry.io/otel/trace/noop"

	"github.com/courierbus/courier"
	"github.com/courierbus/courier/middleware"
	"github.com/courierbus/courier/otelcourier"
)

// profile is a Courier configuration under test: bus middleware, and
// options for the queue or topic.
type profile struct {
	mws   []courier.Middleware
	keyed bool // every message carries its own idempotency key
}

// keys returns n distinct idempotency keys when the profile uses them, nil
// otherwise. They are made before the clock starts: they are the
// application's business, not Courier's. Senders pass the key option
// directly, as an application does, which costs no allocation.
//
// The keys are fixed-width slices of one string, not n strings of their own:
// a slice of a million strings would be the largest thing on the heap, and
// every garbage collection during the run would scan it, a cost of the
// benchmark rather than of the code under test.
func (p profile) keys(n int) keySet {
	if !p.keyed {
		return keySet{}
	}
	var b strings.Builder
	b.Grow(n * keyWidth)
	for i := range n {
		fmt.Fprintf(&b, "k%0*d", keyWidth-1, i)
	}
	return keySet{all: b.String()}
}

// keyWidth is the length of every key: "k" and 9 digits.
const keyWidth = 10

// keySet holds the keys of a run; the zero value holds none.
type keySet struct{ all string }

func (k keySet) ok() bool { return k.all != "" }

// at returns the i-th key.
func (k keySet) at(i int) string { return k.all[i*keyWidth : (i+1)*keyWidth] }

// noChain is Courier with no middleware at all.
func noChain() profile { return profile{} }

// defaultChain is what a typical service registers on its bus: panic
// recovery and logging (at Info, so successes log nothing).
func defaultChain() profile {
	logger := slog.New(slog.DiscardHandler)
	return profile{mws: []courier.Middleware{middleware.Recover(), middleware.Logging(logger)}}
}

// fullChain is every guarantee Courier offers switched on: recovery,
// logging, tracing and metrics with no-op providers, and idempotency on
// both paths (every message carries its own key). Correlation IDs
// and the retry policy are always on.
func fullChain() profile {
	idem, err := middleware.NewIdempotency(middleware.NewMemoryStore(middleware.MemoryStoreOptions{}), middleware.IdempotencyOptions{})
	if err != nil {
		panic(err)
	}
	return profile{keyed: true, mws: []courier.Middleware{
		middleware.Recover(),
		otelcourier.Middleware(
			otelcourier.WithTracerProvider(tracenoop.NewTracerProvider()),
			otelcourier.WithMeterProvider(metricnoop.NewMeterProvider())),
		middleware.Logging(slog.New(slog.DiscardHandler)),
		idem.Middleware(),
	}}
}
