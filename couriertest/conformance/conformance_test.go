package conformance_test

import (
	"testing"

	"go.uber.org/goleak"

	"github.com/courierbus/courier"
	"github.com/courierbus/courier/couriertest/conformance"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// The in-memory engine passes the suite.
func TestInMemory(t *testing.T) {
	conformance.Run(t, func(_ testing.TB, opts ...courier.BusOption) *courier.Bus {
		return courier.New(opts...)
	})
}
