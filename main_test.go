package courier_test

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/courierbus/courier"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// Order is the message type most tests send.
type Order struct {
	ID  string
	Seq int
}

// waitLimit bounds every wait in the tests, so a missing event fails the test
// instead of hanging it. Inside a synctest bubble it passes in virtual time.
const waitLimit = 5 * time.Minute

// newBus returns a bus that logs nowhere and is closed when the test ends.
func newBus(t testing.TB, opts ...courier.BusOption) *courier.Bus {
	t.Helper()
	all := append([]courier.BusOption{courier.WithLogger(slog.New(slog.DiscardHandler))}, opts...)
	b := courier.New(all...)
	t.Cleanup(func() { _ = b.Close() })
	return b
}

// deadSink collects every dead letter of a bus through its hook.
type deadSink chan courier.DeadLetterInfo

func newDeadSink() (deadSink, courier.BusOption) {
	s := make(deadSink, 100_000)
	return s, courier.WithDeadLetterHook(func(d courier.DeadLetterInfo) { s <- d })
}

// next waits for the next dead letter; it fails the test after a long
// timeout (virtual inside a synctest bubble) instead of hanging.
func (s deadSink) next(t testing.TB) courier.DeadLetterInfo {
	t.Helper()
	select {
	case d := <-s:
		return d
	case <-time.After(waitLimit):
		t.Fatal("no dead letter arrived")
		return courier.DeadLetterInfo{}
	}
}

// recv waits for a value on ch, failing the test instead of hanging.
func recv[T any](t testing.TB, ch <-chan T) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(waitLimit):
		t.Fatal("nothing arrived")
		var zero T
		return zero
	}
}

func ctxT(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func mustQueue[T any](t testing.TB, b *courier.Bus, name string, opts ...courier.Option) *courier.Queue[T] {
	t.Helper()
	q, err := courier.NewQueue[T](b, name, opts...)
	if err != nil {
		t.Fatalf("NewQueue(%q): %v", name, err)
	}
	return q
}

func noRetry() courier.Option { return courier.WithRetry(courier.RetryPolicy{MaxAttempts: 1}) }
