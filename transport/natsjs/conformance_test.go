package natsjs_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/courierbus/courier"
	"github.com/courierbus/courier/couriertest"
	"github.com/courierbus/courier/couriertest/conformance"
	"github.com/courierbus/courier/transport/natsjs"
)

// newBus returns a bus over a fresh embedded server with file storage; the
// server and connection stop after the bus (cleanups run last first).
func newBus(t testing.TB, opts ...courier.BusOption) *courier.Bus {
	t.Helper()
	e, err := natsjs.StartEmbedded(natsjs.EmbeddedOptions{Dir: t.TempDir()})
	require.NoError(t, err)
	t.Cleanup(e.Shutdown)
	nc, err := e.Connect()
	require.NoError(t, err)
	t.Cleanup(nc.Close)
	tr, err := natsjs.New(nc, natsjs.Options{KeyPartitions: 4})
	require.NoError(t, err)
	return courier.New(append([]courier.BusOption{courier.WithTransport(tr)}, opts...)...)
}

func TestConformance(t *testing.T) {
	conformance.Run(t, newBus, couriertest.NoLeakCheck())
}
