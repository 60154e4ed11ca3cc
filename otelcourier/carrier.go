package otelcourier

import (
	"slices"

	"go.opentelemetry.io/otel/propagation"

	"github.com/courierbus/courier"
)

// HeaderCarrier lets a [propagation.TextMapPropagator] read and write the
// headers of a message ([courier.Metadata.Headers]). The middleware uses it
// to inject the creation context on send and extract it on delivery; use it
// the same way to carry other context (baggage, say) in headers, or to read
// the creation context of a dead letter.
//
// Write only on the send path, before the message is passed on: after that,
// and on the handling path, the engine owns the headers and a carrier may
// only be read.
type HeaderCarrier struct {
	md *courier.Metadata
}

var _ propagation.TextMapCarrier = HeaderCarrier{}

// NewHeaderCarrier returns a carrier over md's headers. Converting it to a
// [propagation.TextMapCarrier] does not allocate.
func NewHeaderCarrier(md *courier.Metadata) HeaderCarrier { return HeaderCarrier{md: md} }

// Get returns the value of header key, or "".
func (c HeaderCarrier) Get(key string) string { return c.md.Header(key) }

// Set sets header key to value.
func (c HeaderCarrier) Set(key, value string) { c.md.SetHeader(key, value) }

// Keys returns the header names, sorted.
func (c HeaderCarrier) Keys() []string {
	keys := make([]string, 0, len(c.md.Headers))
	for k := range c.md.Headers {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
