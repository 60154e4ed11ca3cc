package middleware_test

import (
	"context"
	"log/slog"
	"testing"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/courierbus/courier"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// newBus returns a bus whose own logs are discarded. It is closed when the
// test ends, so call it inside a synctest bubble when the test uses one.
func newBus(t *testing.T, opts ...courier.BusOption) *courier.Bus {
	t.Helper()
	opts = append([]courier.BusOption{courier.WithLogger(slog.New(slog.DiscardHandler))}, opts...)
	bus := courier.New(opts...)
	t.Cleanup(func() { _ = bus.Close() })
	return bus
}

// newQueue declares a queue that dead-letters a message at its first failure.
func newQueue[T any](t *testing.T, bus *courier.Bus, name string, opts ...courier.Option) *courier.Queue[T] {
	t.Helper()
	opts = append([]courier.Option{courier.WithRetry(courier.RetryPolicy{MaxAttempts: 1})}, opts...)
	q, err := courier.NewQueue[T](bus, name, opts...)
	require.NoError(t, err)
	return q
}

// shutdown drains bus: once it returns, every message sent before has been
// handled or dead-lettered and every worker has exited.
func shutdown(t *testing.T, bus *courier.Bus) {
	t.Helper()
	require.NoError(t, bus.Shutdown(context.Background()))
}
