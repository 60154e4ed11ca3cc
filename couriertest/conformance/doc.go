// Package conformance is the test suite of the semantics every Courier
// transport must keep: delivery exactly once to one consumer of a queue,
// retries with backoff, dead letters with their reason and replay, ordering
// keys, topic fan-out, correlation and causation IDs, delays and time to
// live, back-pressure, and the accounting of a shutdown.
//
// Run it from a test of the transport with the transport's bus constructor:
//
//	func TestConformance(t *testing.T) {
//		conformance.Run(t, func(t testing.TB, opts ...courier.BusOption) *courier.Bus {
//			return courier.New(append(opts, courier.WithTransport(myTransport(t)))...)
//		})
//	}
//
// Every case makes its own bus, drives it through the public API only, and
// runs in real time with short delays (a broker cannot run in a synctest
// bubble), so the whole suite takes about a second on the in-memory engine.
package conformance
