package natsjs_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	neturl "net/url"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/courierbus/courier"
	"github.com/courierbus/courier/transport/natsjs"
)

type job struct{ N int }

var errPoison = errors.New("poison")

// seen records which jobs a handler finished, and how often.
type seen struct {
	mu sync.Mutex
	n  map[int]int
}

func (s *seen) add(n int) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.n == nil {
		s.n = make(map[int]int)
	}
	s.n[n]++
	return len(s.n)
}

func (s *seen) has(n int) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.n[n] > 0
}

func quietLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// openBus connects a bus to e with a fresh connection and transport.
func openBus(t *testing.T, e *natsjs.Embedded, opts ...courier.BusOption) (*courier.Bus, func()) {
	t.Helper()
	nc, err := e.Connect()
	require.NoError(t, err)
	// A short AckWait: what the crash left unacknowledged comes back soon.
	tr, err := natsjs.New(nc, natsjs.Options{Logger: quietLogger(), AckWait: 2 * time.Second})
	require.NoError(t, err)
	bus := courier.New(append([]courier.BusOption{courier.WithTransport(tr), courier.WithLogger(quietLogger())}, opts...)...)
	return bus, nc.Close
}

func sendAll(t *testing.T, q *courier.Queue[job], from, to int) {
	t.Helper()
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for w := range 8 {
		wg.Go(func() {
			for i := from + w; i < to; i += 8 {
				if err := q.Send(ctx(t), job{N: i}); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
}

// The embedded server and the bus stop while 10,000 messages are being
// handled; started again on the same directory, every message is handled
// or dead-lettered. Some are handled twice (their acknowledgement was lost
// in the crash): delivery is at least once.
func TestDurabilityAcrossRestart(t *testing.T) {
	const n = 10_000
	dir := t.TempDir()
	handler := func(s *seen, progress chan<- int) courier.Handler[job] {
		return func(_ context.Context, m *courier.Message[job]) error {
			if m.Body.N%997 == 0 {
				return courier.Permanent(errPoison)
			}
			got := s.add(m.Body.N)
			if progress != nil {
				select {
				case progress <- got:
				default:
				}
			}
			return nil
		}
	}
	retry := courier.WithRetry(courier.RetryPolicy{MaxAttempts: 2, InitialInterval: time.Millisecond})

	// First life: send everything, then crash in the middle of handling.
	e1 := start(t, natsjs.EmbeddedOptions{Dir: dir})
	bus1, close1 := openBus(t, e1)
	q1, err := courier.NewQueue[job](bus1, "work", retry)
	require.NoError(t, err)
	sendAll(t, q1, 0, n)
	var first seen
	progress := make(chan int, 1)
	require.NoError(t, q1.Consume(handler(&first, progress), courier.Workers(4)))
	for got := range progress {
		if got >= n/3 {
			break
		}
	}
	e1.Shutdown() // the server goes first, as in a crash: acks in flight are lost
	_ = bus1.Close()
	close1()

	// Second life on the same directory.
	e2 := start(t, natsjs.EmbeddedOptions{Dir: dir})
	defer e2.Shutdown()
	bus2, close2 := openBus(t, e2)
	defer close2()
	q2, err := courier.NewQueue[job](bus2, "work", retry)
	require.NoError(t, err)
	var second seen
	require.NoError(t, q2.Consume(handler(&second, nil), courier.Workers(4)))
	t0 := time.Now()
	// Generous: every write is synced, and CI disks can be slow.
	settle, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
	defer cancel()
	require.NoError(t, bus2.WaitIdle(settle))
	t.Logf("idle %v after the restart", time.Since(t0).Round(time.Millisecond))

	dead := map[int]bool{}
	for _, d := range q2.DeadLetters().List() {
		dead[d.Body.N] = true
		assert.Equal(t, courier.ReasonPermanent, d.Reason)
	}
	lost, twice := 0, 0
	for i := range n {
		a, b := first.has(i), second.has(i)
		switch {
		case i%997 == 0:
			if !dead[i] {
				lost++
			}
		case !a && !b:
			lost++
		case a && b:
			twice++
		}
	}
	assert.Zero(t, lost, "messages neither handled nor dead-lettered")
	t.Logf("handled before the crash: %d, after: %d, twice: %d, dead-lettered: %d",
		len(first.n), len(second.n), twice, len(dead))
	assert.Greater(t, len(first.n), 0)
	assert.Greater(t, len(second.n), 0, "the restart handled the rest")
	assert.Zero(t, q2.Stats().Depth)
	require.NoError(t, bus2.Shutdown(ctx(t)))
}

// Two buses on one server stand for two processes: they compete for one
// queue's messages, and each has its own subscription to a topic.
func TestTwoBusesShareAServer(t *testing.T) {
	const n = 200
	e := start(t, natsjs.EmbeddedOptions{Dir: t.TempDir()})
	defer e.Shutdown()
	var queueHits [2]seen
	var topicHits [2]seen
	var buses [2]*courier.Bus
	for i := range buses {
		bus, closeConn := openBus(t, e)
		defer closeConn()
		buses[i] = bus
		q, err := courier.NewQueue[job](bus, "jobs")
		require.NoError(t, err)
		require.NoError(t, q.Consume(func(_ context.Context, m *courier.Message[job]) error {
			queueHits[i].add(m.Body.N)
			return nil
		}, courier.Workers(2)))
		tp, err := courier.NewTopic[job](bus, "events")
		require.NoError(t, err)
		require.NoError(t, tp.Subscribe([]string{"billing", "shipping"}[i], func(_ context.Context, m *courier.Message[job]) error {
			topicHits[i].add(m.Body.N)
			return nil
		}))
	}
	q, err := courier.NewQueue[job](buses[0], "jobs")
	require.NoError(t, err)
	tp, err := courier.NewTopic[job](buses[1], "events")
	require.NoError(t, err)
	for i := range n {
		require.NoError(t, q.Send(ctx(t), job{N: i}))
		require.NoError(t, tp.Publish(ctx(t), job{N: i}))
	}
	for _, b := range buses {
		require.NoError(t, b.WaitIdle(ctx(t)))
	}
	for i := range n {
		a, b := queueHits[0].has(i), queueHits[1].has(i)
		assert.True(t, a != b, "job %d handled by exactly one bus (a=%v b=%v)", i, a, b)
	}
	assert.NotZero(t, len(queueHits[0].n), "bus 0 competed")
	assert.NotZero(t, len(queueHits[1].n), "bus 1 competed")
	for i := range 2 {
		assert.Len(t, topicHits[i].n, n, "subscription of bus %d got every event", i)
		for _, c := range topicHits[i].n {
			assert.Equal(t, 1, c)
		}
	}
	for _, b := range buses {
		require.NoError(t, b.Shutdown(ctx(t)))
	}
}

// The server restarts while a producer sends: sends fail with a clear error
// (or wait) during the outage, and every send that returned nil is handled
// once the server is back.
func TestServerRestartWhileSending(t *testing.T) {
	dir := t.TempDir()
	e := start(t, natsjs.EmbeddedOptions{Dir: dir, Listen: true, ListenHost: "127.0.0.1"})
	url := e.ClientURL()
	u, err := neturl.Parse(url)
	require.NoError(t, err)
	port, err := strconv.Atoi(u.Port())
	require.NoError(t, err)
	nc, err := natsjs.Connect(url, natsjs.ConnectOptions{ReconnectWait: 20 * time.Millisecond})
	require.NoError(t, err)
	defer nc.Close()
	tr, err := natsjs.New(nc, natsjs.Options{Logger: quietLogger()})
	require.NoError(t, err)
	bus := courier.New(courier.WithTransport(tr), courier.WithLogger(quietLogger()))
	q, err := courier.NewQueue[job](bus, "orders")
	require.NoError(t, err)

	var acked sync.Map
	var sent, failed atomic.Int32
	stop := make(chan struct{})
	done := make(chan struct{})
	var unreachable, unclear atomic.Int32
	var lastErr atomic.Pointer[error]
	go func() {
		defer close(done)
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			c, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
			err := q.Send(c, job{N: i})
			cancel()
			if err == nil {
				acked.Store(i, true)
				sent.Add(1)
			} else {
				failed.Add(1)
				lastErr.Store(&err)
				switch {
				case errors.Is(err, natsjs.ErrUnreachable):
					unreachable.Add(1)
				case !errors.Is(err, context.DeadlineExceeded):
					unclear.Add(1)
				}
			}
		}
	}()
	waitFor(t, func() bool { return sent.Load() >= 50 })
	e.Shutdown()
	waitFor(t, func() bool { return failed.Load() >= 3 })
	e = start(t, natsjs.EmbeddedOptions{Dir: dir, Listen: true, ListenHost: "127.0.0.1", ListenPort: port})
	defer e.Shutdown()
	before := sent.Load()
	waitFor(t, func() bool { return sent.Load() >= before+50 })
	close(stop)
	<-done
	outage := *lastErr.Load()
	t.Logf("sent %d, failed %d during the outage; last error: %v", sent.Load(), failed.Load(), outage)
	assert.NotZero(t, unreachable.Load(), "a send during the outage says the server is away")
	assert.Zero(t, unclear.Load(), "every failed send wraps ErrUnreachable or the deadline")

	var got seen
	require.NoError(t, q.Consume(func(_ context.Context, m *courier.Message[job]) error {
		got.add(m.Body.N)
		return nil
	}, courier.Workers(4)))
	require.NoError(t, bus.WaitIdle(ctx(t)))
	missing := 0
	acked.Range(func(k, _ any) bool {
		if !got.has(k.(int)) {
			missing++
		}
		return true
	})
	assert.Zero(t, missing, "acknowledged sends lost")
	require.NoError(t, bus.Shutdown(ctx(t)))
}

// waitFor waits until cond holds, checking it as often as the scheduler
// lets it; it fails the test after 20 s.
func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	tick := time.NewTicker(time.Millisecond)
	defer tick.Stop()
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met in 20 s")
		}
		<-tick.C
	}
}
