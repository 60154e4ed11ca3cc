package conformance

import (
	"testing"

	"github.com/courierbus/courier"
	"github.com/courierbus/courier/couriertest"
)

// NewBus makes a bus for one case of the suite. It must pass opts on to the
// bus (they install the harness's hooks and logger). The suite shuts the
// bus down when the case ends.
type NewBus func(t testing.TB, opts ...courier.BusOption) *courier.Bus

// Run runs every case of the suite as a subtest of t. opts go to each
// case's harness after the suite's own; a transport whose broker runs in the
// test process passes [couriertest.NoLeakCheck] and checks for leaks once
// its servers have stopped.
func Run(t *testing.T, newBus NewBus, opts ...couriertest.Option) {
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			h := couriertest.New(t, append([]couriertest.Option{couriertest.WithNewBus(func(opts ...courier.BusOption) *courier.Bus {
				return newBus(t, opts...)
			})}, opts...)...)
			c.run(t, h)
		})
	}
}

// Names returns the names of the suite's cases, in the order Run runs them.
func Names() []string {
	names := make([]string, len(cases))
	for i, c := range cases {
		names[i] = c.name
	}
	return names
}

type testCase struct {
	name string
	run  func(t *testing.T, h *couriertest.Harness)
}

var cases = []testCase{
	{"Delivery", testDelivery},
	{"CompetingConsumers", testCompetingConsumers},
	{"Retries", testRetries},
	{"DeadLetterAfterMaxAttempts", testDeadLetterAfterMaxAttempts},
	{"PermanentErrorSkipsRetries", testPermanentError},
	{"PanicIsAFailedAttempt", testPanic},
	{"Replay", testReplay},
	{"OrderingKeys", testOrderingKeys},
	{"FanOut", testFanOut},
	{"FailingSubscriptionIsIsolated", testFailingSubscription},
	{"Correlation", testCorrelation},
	{"DelayedDelivery", testDelayedDelivery},
	{"TimeToLive", testTimeToLive},
	{"BackPressure", testBackPressure},
	{"ShutdownDrains", testShutdownDrains},
	{"ShutdownAccounting", testShutdownAccounting},
	{"BadInput", testBadInput},
}
