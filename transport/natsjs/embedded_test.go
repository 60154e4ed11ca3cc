package natsjs_test

import (
	"context"
	"fmt"
	"net"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/courierbus/courier/transport/natsjs"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func start(t *testing.T, opts natsjs.EmbeddedOptions) *natsjs.Embedded {
	t.Helper()
	e, err := natsjs.StartEmbedded(opts)
	require.NoError(t, err)
	return e
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	t.Cleanup(cancel)
	return c
}

func publishN(t *testing.T, nc *nats.Conn, stream string, n int) {
	t.Helper()
	js, err := jetstream.New(nc)
	require.NoError(t, err)
	_, err = js.CreateOrUpdateStream(ctx(t), jetstream.StreamConfig{Name: stream, Subjects: []string{stream + ".>"}, Storage: jetstream.FileStorage})
	require.NoError(t, err)
	for i := range n {
		_, err := js.Publish(ctx(t), fmt.Sprintf("%s.%d", stream, i), []byte("m"))
		require.NoError(t, err)
	}
}

func streamMsgs(t *testing.T, nc *nats.Conn, stream string) uint64 {
	t.Helper()
	js, err := jetstream.New(nc)
	require.NoError(t, err)
	s, err := js.Stream(ctx(t), stream)
	require.NoError(t, err)
	info, err := s.Info(ctx(t))
	require.NoError(t, err)
	return info.State.Msgs
}

// Acknowledged messages are on disk: a new server on the same directory has
// them all.
func TestEmbeddedKeepsAcknowledgedMessagesAcrossRestart(t *testing.T) {
	dir := t.TempDir()
	e := start(t, natsjs.EmbeddedOptions{Dir: dir})
	nc, err := e.Connect()
	require.NoError(t, err)
	publishN(t, nc, "orders", 100)
	nc.Close()
	e.Shutdown()

	e = start(t, natsjs.EmbeddedOptions{Dir: dir})
	defer e.Shutdown()
	nc, err = e.Connect()
	require.NoError(t, err)
	defer nc.Close()
	require.EqualValues(t, 100, streamMsgs(t, nc, "orders"))
}

func TestEmbeddedSyncsEveryWriteByDefault(t *testing.T) {
	e := start(t, natsjs.EmbeddedOptions{Dir: t.TempDir()})
	defer e.Shutdown()
	require.Equal(t, natsjs.SyncAlways, e.Sync())
	require.True(t, e.JetStreamConfig().SyncAlways, "the server really syncs every write")

	relaxed := start(t, natsjs.EmbeddedOptions{Dir: t.TempDir(), Sync: natsjs.SyncEvery(time.Second)})
	defer relaxed.Shutdown()
	require.False(t, relaxed.JetStreamConfig().SyncAlways)
	require.Equal(t, time.Second, relaxed.JetStreamConfig().SyncInterval)
	require.Equal(t, "sync every 1s", relaxed.Sync().String())
}

func TestStartEmbeddedNeedsADirectory(t *testing.T) {
	_, err := natsjs.StartEmbedded(natsjs.EmbeddedOptions{})
	require.ErrorIs(t, err, natsjs.ErrNoDir)
}

func TestEmbeddedWithoutListenHasNoURL(t *testing.T) {
	e := start(t, natsjs.EmbeddedOptions{Dir: t.TempDir()})
	defer e.Shutdown()
	require.Empty(t, e.ClientURL())
}

func TestConnectToAnUnreachableServerFailsClearly(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	url := "nats://" + l.Addr().String()
	require.NoError(t, l.Close()) // nothing listens there now
	begin := time.Now()
	_, err = natsjs.Connect(url, natsjs.ConnectOptions{Timeout: 500 * time.Millisecond})
	require.ErrorIs(t, err, natsjs.ErrUnreachable)
	require.Contains(t, err.Error(), url)
	require.Less(t, time.Since(begin), 5*time.Second)
}

// A client of a listening server reconnects when the server comes back on
// the same address, and the streams are still there.
func TestConnectReconnectsAfterAServerRestart(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	port := l.Addr().(*net.TCPAddr).Port
	require.NoError(t, l.Close())
	dir := t.TempDir()
	opts := natsjs.EmbeddedOptions{Dir: dir, Listen: true, ListenHost: "127.0.0.1", ListenPort: port}
	e := start(t, opts)
	require.NotEmpty(t, e.ClientURL())

	reconnected := make(chan struct{}, 1)
	nc, err := natsjs.Connect(e.ClientURL(), natsjs.ConnectOptions{
		Name:          "test",
		ReconnectWait: 20 * time.Millisecond,
		Extra: []nats.Option{nats.ReconnectHandler(func(*nats.Conn) {
			select {
			case reconnected <- struct{}{}:
			default:
			}
		})},
	})
	require.NoError(t, err)
	defer nc.Close()
	publishN(t, nc, "orders", 10)

	e.Shutdown()
	e = start(t, opts)
	defer e.Shutdown()
	select {
	case <-reconnected:
	case <-time.After(30 * time.Second):
		t.Fatal("the client did not reconnect")
	}
	require.EqualValues(t, 10, streamMsgs(t, nc, "orders"))
}

// A taken port fails at once and says so, instead of timing out.
func TestEmbeddedPortInUse(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer l.Close()
	port := l.Addr().(*net.TCPAddr).Port
	_, err = natsjs.StartEmbedded(natsjs.EmbeddedOptions{Dir: t.TempDir(), Listen: true, ListenHost: "127.0.0.1", ListenPort: port})
	require.ErrorContains(t, err, "cannot listen")
}
