package courier_test

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/courierbus/courier"
)

// A retry hook sees the metadata of the attempt that failed, even when the
// retry is due at once and another worker is already handling it.
func TestRetryHookSeesTheFailedAttempt(t *testing.T) {
	var mu sync.Mutex
	var attempts []int
	b := newBus(t, courier.WithRetryHook(func(r courier.RetryInfo) {
		mu.Lock()
		attempts = append(attempts, r.Attempt)
		mu.Unlock()
	}))
	q := mustQueue[Order](t, b, "orders", courier.WithRetry(courier.RetryPolicy{
		MaxAttempts: 3, InitialInterval: time.Nanosecond, Jitter: -1,
	}))
	require.NoError(t, q.Consume(func(context.Context, *courier.Message[Order]) error {
		return errors.New("always")
	}, courier.Workers(2)))
	for i := range 200 {
		require.NoError(t, q.Send(ctxT(t), Order{Seq: i}))
	}
	require.NoError(t, b.WaitIdle(ctxT(t)))
	mu.Lock()
	defer mu.Unlock()
	require.Len(t, attempts, 400)
	counts := map[int]int{}
	for _, a := range attempts {
		counts[a]++
	}
	assert.Equal(t, map[int]int{1: 200, 2: 200}, counts)
}

// blockingHandler is a slog handler whose first record waits for release.
type blockingHandler struct {
	slog.Handler
	once    sync.Once
	entered chan struct{}
	release chan struct{}
}

func (h *blockingHandler) Enabled(context.Context, slog.Level) bool { return true }

func (h *blockingHandler) Handle(ctx context.Context, r slog.Record) error {
	h.once.Do(func() {
		close(h.entered)
		<-h.release
	})
	return nil
}

// A dead letter replayed while it is still being announced still reaches
// the request's caller: the announcement does not read the envelope that
// Replay is moving.
func TestDeadLetterReplayedWhileAnnounced(t *testing.T) {
	h := &blockingHandler{Handler: slog.DiscardHandler, entered: make(chan struct{}), release: make(chan struct{})}
	b := courier.New(courier.WithLogger(slog.New(h)))
	t.Cleanup(func() { _ = b.Close() })
	rq := mustRequestQueue(t, b, "quotes", noRetry())
	var fixed sync.Once
	failing := make(chan struct{})
	require.NoError(t, rq.Serve(func(_ context.Context, m *courier.Message[Quote]) (Price, error) {
		select {
		case <-failing:
			return Price{}, nil
		default:
		}
		return Price{}, courier.Permanent(errors.New("bad quote"))
	}))
	errs := make(chan error, 1)
	go func() {
		_, err := rq.Request(ctxT(t), Quote{Items: 1})
		errs <- err
	}()
	<-h.entered // the dead letter is in its queue; its announcement is logging
	fixed.Do(func() { close(failing) })
	n, err := rq.Queue().DeadLetters().Replay(ctxT(t))
	require.NoError(t, err)
	assert.Equal(t, 1, n)
	close(h.release)
	var re *courier.RequestError
	require.ErrorAs(t, recv(t, errs), &re, "the caller hears of the dead letter")
	require.NoError(t, b.WaitIdle(ctxT(t)))
}
