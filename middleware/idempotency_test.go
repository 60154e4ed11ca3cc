package middleware_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/courierbus/courier"
	"github.com/courierbus/courier/middleware"
)

// newIdempotency returns an Idempotency over a fresh memory store.
func newIdempotency(t *testing.T, opts middleware.IdempotencyOptions) (*middleware.Idempotency, *middleware.MemoryStore) {
	t.Helper()
	store := middleware.NewMemoryStore(middleware.MemoryStoreOptions{})
	idem, err := middleware.NewIdempotency(store, opts)
	require.NoError(t, err)
	return idem, store
}

// eachStore runs test with an Idempotency over a MemoryStore, which takes
// the store's shorter paths, and over one seen only as a Store, as a store
// of another kind would be.
func eachStore(t *testing.T, opts middleware.IdempotencyOptions, test func(t *testing.T, idem *middleware.Idempotency)) {
	for _, name := range []string{"MemoryStore", "Store"} {
		t.Run(name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				var store middleware.Store = middleware.NewMemoryStore(middleware.MemoryStoreOptions{})
				if name == "Store" {
					store = struct{ middleware.Store }{store}
				}
				idem, err := middleware.NewIdempotency(store, opts)
				require.NoError(t, err)
				test(t, idem)
			})
		})
	}
}

// noSendCheck turns duplicate detection on sends off, so that duplicates
// reach the handling path.
var noSendCheck = middleware.IdempotencyOptions{SendWindow: -1}

// sideEffects counts the handler's runs per key.
type sideEffects struct {
	mu sync.Mutex
	n  map[string]int
}

func (s *sideEffects) add(key string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.n == nil {
		s.n = make(map[string]int)
	}
	s.n[key]++
}

func (s *sideEffects) get() map[string]int {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[string]int, len(s.n))
	for k, v := range s.n {
		out[k] = v
	}
	return out
}

// sendTwice is a fault-injecting send middleware: it enqueues every message
// twice, as a broker that redelivers would.
var sendTwice = courier.Middleware{Name: "send-twice", Send: func(next courier.SendFunc) courier.SendFunc {
	return func(ctx context.Context, env courier.Envelope) error {
		dup := courier.CloneEnvelope(env)
		if err := next(ctx, env); err != nil {
			return err
		}
		return next(ctx, dup)
	}
}}

func TestNewIdempotencyRejectsBadInput(t *testing.T) {
	store := middleware.NewMemoryStore(middleware.MemoryStoreOptions{})
	for name, c := range map[string]struct {
		store middleware.Store
		opts  middleware.IdempotencyOptions
	}{
		"nil store":      {nil, middleware.IdempotencyOptions{}},
		"negative ttl":   {store, middleware.IdempotencyOptions{DoneTTL: -time.Second}},
		"negative lease": {store, middleware.IdempotencyOptions{Lease: -time.Second}},
	} {
		idem, err := middleware.NewIdempotency(c.store, c.opts)
		require.ErrorIs(t, err, courier.ErrInvalidOption, name)
		require.Nil(t, idem, name)
	}
	idem, _ := newIdempotency(t, middleware.IdempotencyOptions{})
	mw := idem.Middleware()
	require.Equal(t, "idempotency", mw.Name)
	require.NotNil(t, mw.Send)
	require.NotNil(t, mw.Handle)
	idem, _ = newIdempotency(t, noSendCheck)
	require.Nil(t, idem.Middleware().Send, "a negative SendWindow turns the send check off")
}

func TestIdempotencyDuplicateSendsWithinAndAfterTheWindow(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx := context.Background()
		idem, _ := newIdempotency(t, middleware.IdempotencyOptions{SendWindow: time.Minute, DoneTTL: time.Hour})
		bus := newBus(t)
		bus.Use(idem.Middleware())
		q := newQueue[string](t, bus, "orders")
		other := newQueue[string](t, bus, "invoices")
		var runs sideEffects
		h := func(_ context.Context, m *courier.Message[string]) error {
			runs.add(m.Destination + "/" + m.Body)
			return nil
		}
		require.NoError(t, q.Consume(h))
		require.NoError(t, other.Consume(h))

		require.NoError(t, q.Send(ctx, "first", courier.WithIdempotencyKey("k")))
		err := q.Send(ctx, "second", courier.WithIdempotencyKey("k"))
		require.ErrorIs(t, err, courier.ErrDuplicate)
		require.Contains(t, err.Error(), `"k"`)
		require.NoError(t, other.Send(ctx, "first", courier.WithIdempotencyKey("k")), "windows are per destination")
		require.NoError(t, q.Send(ctx, "no key"))
		require.NoError(t, q.Send(ctx, "no key"), "messages without a key pass")
		require.NoError(t, bus.WaitIdle(ctx))
		require.Equal(t, map[string]int{"orders/first": 1, "invoices/first": 1, "orders/no key": 2}, runs.get())
		require.EqualValues(t, 3, q.Stats().Sent, "the duplicate was not enqueued")

		time.Sleep(59 * time.Second)
		require.ErrorIs(t, q.Send(ctx, "third", courier.WithIdempotencyKey("k")), courier.ErrDuplicate, "still in the window")
		time.Sleep(time.Second)
		require.NoError(t, q.Send(ctx, "fourth", courier.WithIdempotencyKey("k")), "the window has passed")
		require.NoError(t, bus.WaitIdle(ctx))
		require.NotContains(t, runs.get(), "orders/fourth", "the key is still done on the handling side")

		st := idem.Stats()
		require.EqualValues(t, 2, st.DuplicateSends)
		require.EqualValues(t, 1, st.Skipped)
		require.EqualValues(t, 2, st.Committed)
	})
}

// TestIdempotencyFailedSendFreesItsKey runs with a MemoryStore, which
// records a send in one call, and with a Store that has only the methods of
// the interface.
func TestIdempotencyFailedSendFreesItsKey(t *testing.T) {
	for name, store := range map[string]middleware.Store{
		"MemoryStore": middleware.NewMemoryStore(middleware.MemoryStoreOptions{}),
		"Store":       struct{ middleware.Store }{middleware.NewMemoryStore(middleware.MemoryStoreOptions{})},
	} {
		t.Run(name, func(t *testing.T) {
			idem, err := middleware.NewIdempotency(store, middleware.IdempotencyOptions{})
			require.NoError(t, err)
			testFailedSendFreesItsKey(t, idem)
		})
	}
}

func testFailedSendFreesItsKey(t *testing.T, idem *middleware.Idempotency) {
	ctx := context.Background()
	bus := newBus(t)
	bus.Use(idem.Middleware())
	q := newQueue[string](t, bus, "jobs", courier.Capacity(1)) // no consumer yet: it stays full
	require.NoError(t, q.Send(ctx, "filler"))
	require.ErrorIs(t, q.TrySend(ctx, "job", courier.WithIdempotencyKey("k")), courier.ErrFull)

	var runs sideEffects
	require.NoError(t, q.Consume(func(_ context.Context, m *courier.Message[string]) error { runs.add(m.Body); return nil }))
	require.NoError(t, bus.WaitIdle(ctx))
	require.NoError(t, q.Send(ctx, "job", courier.WithIdempotencyKey("k")), "the refused send did not keep the key")
	require.NoError(t, bus.WaitIdle(ctx))
	require.Equal(t, map[string]int{"filler": 1, "job": 1}, runs.get())
	require.Zero(t, idem.Stats().DuplicateSends)
}

func TestIdempotencyFailingFirstAttemptRecordsTheKeyOnce(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx := context.Background()
		idem, store := newIdempotency(t, noSendCheck)
		bus := newBus(t)
		bus.Use(idem.Middleware())
		q, err := courier.NewQueue[string](bus, "jobs", courier.WithRetry(courier.RetryPolicy{MaxAttempts: 3}))
		require.NoError(t, err)
		var runs sideEffects
		require.NoError(t, q.Consume(func(_ context.Context, m *courier.Message[string]) error {
			runs.add(m.Body)
			if m.Attempt == 1 {
				return errors.New("flaky")
			}
			return nil
		}))
		require.NoError(t, q.Send(ctx, "job", courier.WithIdempotencyKey("k")))
		require.NoError(t, bus.WaitIdle(ctx))
		require.Equal(t, map[string]int{"job": 2}, runs.get(), "the failure freed the key for the retry")
		st := idem.Stats()
		require.EqualValues(t, 1, st.Released)
		require.EqualValues(t, 1, st.Committed)
		require.Equal(t, middleware.MemoryStoreStats{Done: 1}, store.Stats())

		require.NoError(t, q.Send(ctx, "job", courier.WithIdempotencyKey("k")))
		require.NoError(t, bus.WaitIdle(ctx))
		require.Equal(t, map[string]int{"job": 2}, runs.get(), "a resend of a done key is acknowledged unhandled")
		require.EqualValues(t, 1, idem.Stats().Skipped)
		require.EqualValues(t, 2, q.Stats().Handled, "the skipped resend counts as handled")
	})
}

func TestIdempotencyDuplicatesAcrossRetries(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx := context.Background()
		idem, _ := newIdempotency(t, middleware.IdempotencyOptions{})
		bus := newBus(t)
		bus.Use(idem.Middleware())
		// The duplicate is enqueued behind the original; the original fails
		// and waits for its retry, so the duplicate runs first and succeeds.
		q, err := courier.NewQueue[string](bus, "jobs", courier.WithMiddleware(sendTwice),
			courier.WithRetry(courier.RetryPolicy{MaxAttempts: 3, InitialInterval: time.Minute}))
		require.NoError(t, err)
		var runs sideEffects
		failed := false
		require.NoError(t, q.Consume(func(_ context.Context, m *courier.Message[string]) error {
			if !failed {
				failed = true
				return errors.New("flaky")
			}
			runs.add(m.Body)
			return nil
		}))
		require.NoError(t, q.Send(ctx, "job", courier.WithIdempotencyKey("k")))
		require.NoError(t, bus.WaitIdle(ctx))
		require.Equal(t, map[string]int{"job": 1}, runs.get())
		st := idem.Stats()
		require.EqualValues(t, 1, st.Skipped, "the retry found the key done")
		require.EqualValues(t, 1, st.Committed)
		qs := q.Stats()
		require.EqualValues(t, 2, qs.Handled)
		require.EqualValues(t, 1, qs.Retried)
		require.Zero(t, qs.DeadLettered)
	})
}

func TestIdempotencyConcurrentDuplicatesRunTheHandlerOnce(t *testing.T) {
	eachStore(t, noSendCheck, func(t *testing.T, idem *middleware.Idempotency) {
		ctx := context.Background()
		const copies = 8
		bus := newBus(t)
		bus.Use(idem.Middleware())
		q := newQueue[string](t, bus, "jobs", courier.Workers(copies))
		gate := make(chan struct{})
		var runs sideEffects
		require.NoError(t, q.Consume(func(_ context.Context, m *courier.Message[string]) error {
			runs.add(m.Body)
			<-gate
			return nil
		}))
		for range copies {
			require.NoError(t, q.Send(ctx, "job", courier.WithIdempotencyKey("k")))
		}
		synctest.Wait()
		require.Equal(t, copies, q.Stats().InFlight, "every copy has a worker")
		require.Equal(t, map[string]int{"job": 1}, runs.get(), "one runs, the others wait")
		close(gate)
		require.NoError(t, bus.WaitIdle(ctx))
		require.Equal(t, map[string]int{"job": 1}, runs.get())
		st := idem.Stats()
		require.EqualValues(t, copies-1, st.Waited)
		require.EqualValues(t, copies-1, st.Skipped)
		require.EqualValues(t, copies, q.Stats().Handled)
	})
}

func TestIdempotencyWaitingDuplicateRunsWhenTheFirstFails(t *testing.T) {
	eachStore(t, noSendCheck, func(t *testing.T, idem *middleware.Idempotency) {
		ctx := context.Background()
		bus := newBus(t)
		bus.Use(idem.Middleware())
		q := newQueue[string](t, bus, "jobs", courier.Workers(2)) // one attempt each
		gate := make(chan struct{})
		var runs sideEffects
		require.NoError(t, q.Consume(func(_ context.Context, m *courier.Message[string]) error {
			runs.add(m.Body)
			if m.Body == "first" {
				<-gate
				return errors.New("failed")
			}
			return nil
		}))
		require.NoError(t, q.Send(ctx, "first", courier.WithIdempotencyKey("k")))
		synctest.Wait()
		require.NoError(t, q.Send(ctx, "second", courier.WithIdempotencyKey("k")))
		synctest.Wait()
		require.Equal(t, map[string]int{"first": 1}, runs.get(), "the second waits")
		close(gate)
		require.NoError(t, bus.WaitIdle(ctx))
		require.Equal(t, map[string]int{"first": 1, "second": 1}, runs.get())
		require.EqualValues(t, 1, idem.Stats().Waited)
		require.Equal(t, 1, q.DeadLetters().Count())
	})
}

func TestIdempotencyWaitingDeliveryGivesUpWithItsContext(t *testing.T) {
	eachStore(t, noSendCheck, func(t *testing.T, idem *middleware.Idempotency) {
		ctx := context.Background()
		bus := newBus(t)
		bus.Use(idem.Middleware())
		q := newQueue[string](t, bus, "jobs", courier.Workers(2))
		gate := make(chan struct{})
		require.NoError(t, q.Consume(func(ctx context.Context, m *courier.Message[string]) error {
			if m.Body == "slow" {
				<-gate
			}
			return nil
		}))
		// The waiting delivery's context carries its time to live.
		require.NoError(t, q.Send(ctx, "slow", courier.WithIdempotencyKey("k"), courier.WithTTL(time.Hour)))
		synctest.Wait()
		require.NoError(t, q.Send(ctx, "waiting", courier.WithIdempotencyKey("k"), courier.WithTTL(time.Minute)))
		time.Sleep(time.Minute)
		synctest.Wait()
		dls := q.DeadLetters().List()
		require.Len(t, dls, 1)
		require.Equal(t, "waiting", dls[0].Body)
		require.ErrorIs(t, dls[0].Err, context.DeadlineExceeded)
		close(gate)
		require.NoError(t, bus.WaitIdle(ctx))
	})
}

// A delivery that outlives its lease no longer holds its key over a
// MemoryStore: a later duplicate runs.
func TestIdempotencyLeaseBoundsTheWaitOverAMemoryStore(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx := context.Background()
		idem, _ := newIdempotency(t, middleware.IdempotencyOptions{SendWindow: -1, Lease: time.Minute})
		bus := newBus(t)
		bus.Use(idem.Middleware())
		q := newQueue[string](t, bus, "jobs", courier.Workers(2))
		gate := make(chan struct{})
		var runs sideEffects
		require.NoError(t, q.Consume(func(_ context.Context, m *courier.Message[string]) error {
			runs.add(m.Body)
			if m.Body == "slow" {
				<-gate
			}
			return nil
		}))
		require.NoError(t, q.Send(ctx, "slow", courier.WithIdempotencyKey("k")))
		synctest.Wait()
		time.Sleep(time.Minute)
		require.NoError(t, q.Send(ctx, "late", courier.WithIdempotencyKey("k")))
		synctest.Wait()
		require.Equal(t, map[string]int{"slow": 1, "late": 1}, runs.get(), "the late duplicate did not wait")
		close(gate)
		require.NoError(t, bus.WaitIdle(ctx))
		require.Zero(t, idem.Stats().Waited)
	})
}

func TestIdempotencyTopicSubscriptionsDedupeIndependently(t *testing.T) {
	ctx := context.Background()
	idem, _ := newIdempotency(t, noSendCheck)
	bus := newBus(t)
	bus.Use(idem.Middleware())
	topic, err := courier.NewTopic[string](bus, "payments")
	require.NoError(t, err)
	var runs sideEffects
	for _, sub := range []string{"accounting", "shipping"} {
		require.NoError(t, topic.Subscribe(sub, func(_ context.Context, m *courier.Message[string]) error {
			runs.add(m.Subscription + "/" + m.Body)
			return nil
		}))
	}
	for range 3 {
		require.NoError(t, topic.Publish(ctx, "paid", courier.WithIdempotencyKey("p-1")))
	}
	require.NoError(t, bus.WaitIdle(ctx))
	require.Equal(t, map[string]int{"accounting/paid": 1, "shipping/paid": 1}, runs.get())
	require.EqualValues(t, 4, idem.Stats().Skipped)
}

func TestIdempotencyPanicReleasesTheKey(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx := context.Background()
		idem, store := newIdempotency(t, noSendCheck)
		bus := newBus(t)
		bus.Use(idem.Middleware())
		q, err := courier.NewQueue[string](bus, "jobs", courier.WithRetry(courier.RetryPolicy{MaxAttempts: 2}))
		require.NoError(t, err)
		var runs sideEffects
		require.NoError(t, q.Consume(func(_ context.Context, m *courier.Message[string]) error {
			if m.Attempt == 1 {
				panic("boom")
			}
			runs.add(m.Body)
			return nil
		}))
		require.NoError(t, q.Send(ctx, "job", courier.WithIdempotencyKey("k")))
		require.NoError(t, bus.WaitIdle(ctx))
		require.Equal(t, map[string]int{"job": 1}, runs.get())
		require.EqualValues(t, 1, idem.Stats().Released)
		require.Equal(t, middleware.MemoryStoreStats{Done: 1}, store.Stats())
	})
}

func TestIdempotencyKeyBusyInAnotherProcess(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx := context.Background()
		store := middleware.NewMemoryStore(middleware.MemoryStoreOptions{})
		// Two buses with their own Idempotency share one store, as two
		// processes sharing Redis would.
		gate := make(chan struct{})
		var runs sideEffects
		var idems []*middleware.Idempotency
		var queues []*courier.Queue[string]
		for i := range 2 {
			idem, err := middleware.NewIdempotency(store, noSendCheck)
			require.NoError(t, err)
			bus := newBus(t)
			bus.Use(idem.Middleware())
			q, err := courier.NewQueue[string](bus, "jobs",
				courier.WithRetry(courier.RetryPolicy{MaxAttempts: 3, InitialInterval: time.Minute}))
			require.NoError(t, err)
			require.NoError(t, q.Consume(func(_ context.Context, m *courier.Message[string]) error {
				runs.add(fmt.Sprint(i))
				if i == 0 {
					<-gate
				}
				return nil
			}))
			idems, queues = append(idems, idem), append(queues, q)
		}
		require.NoError(t, queues[0].Send(ctx, "job", courier.WithIdempotencyKey("k")))
		synctest.Wait()
		require.NoError(t, queues[1].Send(ctx, "job", courier.WithIdempotencyKey("k")))
		synctest.Wait()
		require.EqualValues(t, 1, idems[1].Stats().Busy)
		require.Equal(t, 1, queues[1].Stats().Scheduled, "waiting for its retry")
		close(gate)
		synctest.Wait()
		time.Sleep(2 * time.Minute)
		synctest.Wait()
		require.Equal(t, map[string]int{"0": 1}, runs.get())
		require.EqualValues(t, 1, idems[1].Stats().Skipped, "the retry found the key done")
		require.EqualValues(t, 1, queues[1].Stats().Handled)
	})
}

// failingStore fails the calls it is told to.
type failingStore struct {
	middleware.Store
	reserve, commit bool
}

var errStoreDown = errors.New("store down")

func (s *failingStore) Reserve(ctx context.Context, key middleware.Key, lease time.Duration) (middleware.Reservation, error) {
	if s.reserve {
		return middleware.Reservation{}, errStoreDown
	}
	return s.Store.Reserve(ctx, key, lease)
}

func (s *failingStore) Commit(ctx context.Context, key middleware.Key, token uint64, ttl time.Duration) error {
	if s.commit {
		return errStoreDown
	}
	return s.Store.Commit(ctx, key, token, ttl)
}

func TestIdempotencyStoreFailures(t *testing.T) {
	ctx := context.Background()
	store := &failingStore{Store: middleware.NewMemoryStore(middleware.MemoryStoreOptions{}), reserve: true}
	var runs sideEffects
	h := func(_ context.Context, m *courier.Message[string]) error { runs.add(m.Body); return nil }

	checked, err := middleware.NewIdempotency(store, middleware.IdempotencyOptions{})
	require.NoError(t, err)
	bus := newBus(t)
	q := newQueue[string](t, bus, "checked", courier.WithMiddleware(checked.Middleware()))
	require.NoError(t, q.Consume(h))
	err = q.Send(ctx, "refused", courier.WithIdempotencyKey("k"))
	require.ErrorIs(t, err, errStoreDown, "a send that cannot be checked fails")
	require.NotErrorIs(t, err, courier.ErrDuplicate)
	require.EqualValues(t, 1, checked.Stats().StoreErrors)

	// Past the send check, the delivery cannot reserve: it fails unhandled.
	unchecked, err := middleware.NewIdempotency(store, noSendCheck)
	require.NoError(t, err)
	q2 := newQueue[string](t, bus, "unchecked", courier.WithMiddleware(unchecked.Middleware()))
	require.NoError(t, q2.Consume(h))
	require.NoError(t, q2.Send(ctx, "unreserved", courier.WithIdempotencyKey("k")))
	require.NoError(t, bus.WaitIdle(ctx))
	require.Empty(t, runs.get())
	dls := q2.DeadLetters().List()
	require.Len(t, dls, 1)
	require.ErrorIs(t, dls[0].Err, errStoreDown)
	require.EqualValues(t, 1, unchecked.Stats().StoreErrors)

	// A failed commit still acknowledges the handled message.
	store.reserve, store.commit = false, true
	require.NoError(t, q2.Send(ctx, "handled", courier.WithIdempotencyKey("k2")))
	require.NoError(t, bus.WaitIdle(ctx))
	require.Equal(t, map[string]int{"handled": 1}, runs.get())
	require.EqualValues(t, 1, q2.Stats().Handled)
	require.EqualValues(t, 2, unchecked.Stats().StoreErrors)
	require.Zero(t, unchecked.Stats().Committed)
}

// TestIdempotencyEveryKeyOnceUnderFaults delivers every message twice and
// fails a random share of the attempts before the handler's side effect; every
// key's side effect must happen exactly once per subscription.
func TestIdempotencyEveryKeyOnceUnderFaults(t *testing.T) {
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 0))
	var rngMu sync.Mutex
	fail := func() bool {
		rngMu.Lock()
		defer rngMu.Unlock()
		return rng.Float64() < 0.3
	}
	faults := courier.Middleware{Name: "faults", Handle: func(next courier.HandlerFunc) courier.HandlerFunc {
		return func(ctx context.Context, env courier.Envelope) error {
			if fail() {
				return errors.New("injected failure")
			}
			return next(ctx, env)
		}
	}}

	synctest.Test(t, func(t *testing.T) {
		ctx := context.Background()
		idem, _ := newIdempotency(t, middleware.IdempotencyOptions{})
		bus := newBus(t)
		bus.Use(idem.Middleware())
		retry := courier.WithRetry(courier.RetryPolicy{MaxAttempts: 30, InitialInterval: time.Millisecond, MaxInterval: 10 * time.Millisecond})
		q, err := courier.NewQueue[int](bus, "jobs", courier.WithMiddleware(sendTwice, faults), retry, courier.Workers(4))
		require.NoError(t, err)
		topic, err := courier.NewTopic[int](bus, "events", courier.WithMiddleware(sendTwice, faults), retry, courier.Workers(3))
		require.NoError(t, err)
		var runs sideEffects
		require.NoError(t, q.Consume(func(_ context.Context, m *courier.Message[int]) error {
			runs.add("queue/" + m.IdempotencyKey)
			return nil
		}))
		for _, sub := range []string{"a", "b"} {
			require.NoError(t, topic.Subscribe(sub, func(_ context.Context, m *courier.Message[int]) error {
				runs.add(sub + "/" + m.IdempotencyKey)
				return nil
			}))
		}

		const keys = 200
		want := map[string]int{}
		for i := range keys {
			key := fmt.Sprintf("k-%d", i%(keys/2)) // every key sent twice: the second is a duplicate send
			err := q.Send(ctx, i, courier.WithIdempotencyKey(key))
			if i < keys/2 {
				require.NoError(t, err)
			} else {
				require.ErrorIs(t, err, courier.ErrDuplicate)
			}
			err = topic.Publish(ctx, i, courier.WithIdempotencyKey(key), courier.WithKey(fmt.Sprint(i%7)))
			if i < keys/2 {
				require.NoError(t, err)
			} else {
				require.ErrorIs(t, err, courier.ErrDuplicate)
			}
			want["queue/"+key], want["a/"+key], want["b/"+key] = 1, 1, 1
		}
		require.NoError(t, bus.WaitIdle(ctx))
		require.Equal(t, want, runs.get())
		require.Zero(t, q.DeadLetters().Count())
		st := idem.Stats()
		assert.EqualValues(t, 3*keys/2, st.Committed)
		assert.EqualValues(t, keys, st.DuplicateSends, "half the sends and half the publishes")
		assert.Positive(t, st.Released)
		assert.Zero(t, st.StoreErrors)
	})
}

// recordingStore records the keys and contexts of the calls it passes on.
type recordingStore struct {
	middleware.Store
	mu         sync.Mutex
	scopes     map[string]bool
	liveCommit int // commits and releases whose context had not ended
	deadCommit int // the others
}

func (s *recordingStore) Reserve(ctx context.Context, key middleware.Key, lease time.Duration) (middleware.Reservation, error) {
	s.mu.Lock()
	if s.scopes == nil {
		s.scopes = map[string]bool{}
	}
	s.scopes[key.Scope] = true
	s.mu.Unlock()
	return s.Store.Reserve(ctx, key, lease)
}

func (s *recordingStore) finish(ctx context.Context) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if ctx.Err() == nil {
		s.liveCommit++
	} else {
		s.deadCommit++
	}
}

func (s *recordingStore) Commit(ctx context.Context, key middleware.Key, token uint64, ttl time.Duration) error {
	s.finish(ctx)
	return s.Store.Commit(ctx, key, token, ttl)
}

func (s *recordingStore) Release(ctx context.Context, key middleware.Key, token uint64) error {
	s.finish(ctx)
	return s.Store.Release(ctx, key, token)
}

func TestIdempotencyScopesAreUnambiguous(t *testing.T) {
	ctx := context.Background()
	store := &recordingStore{Store: middleware.NewMemoryStore(middleware.MemoryStoreOptions{})}
	idem, err := middleware.NewIdempotency(store, middleware.IdempotencyOptions{})
	require.NoError(t, err)
	bus := newBus(t)
	bus.Use(idem.Middleware())
	// Queue "a/b" and subscription "b" of topic "a" must not share keys.
	q := newQueue[string](t, bus, "a/b")
	topic, err := courier.NewTopic[string](bus, "a")
	require.NoError(t, err)
	var runs sideEffects
	h := func(_ context.Context, m *courier.Message[string]) error {
		runs.add(m.Destination + "|" + m.Subscription)
		return nil
	}
	require.NoError(t, q.Consume(h))
	require.NoError(t, topic.Subscribe("b", h))
	require.NoError(t, q.Send(ctx, "x", courier.WithIdempotencyKey("k")))
	require.NoError(t, topic.Publish(ctx, "x", courier.WithIdempotencyKey("k")))
	require.ErrorIs(t, q.Send(ctx, "x", courier.WithIdempotencyKey("k")), courier.ErrDuplicate)
	require.ErrorIs(t, topic.Publish(ctx, "x", courier.WithIdempotencyKey("k")), courier.ErrDuplicate)
	require.NoError(t, bus.WaitIdle(ctx))
	require.Equal(t, map[string]int{"a/b|": 1, "a|b": 1}, runs.get())
	require.Equal(t, map[string]bool{
		"sent/a%2Fb": true, "handled/a%2Fb": true,
		"sent/a": true, "handled/a/b": true,
	}, store.scopes)
}

// More queues than Idempotency keeps at hand (the rest are looked up) each
// keep their own keys.
func TestIdempotencyManyQueuesKeepTheirOwnKeys(t *testing.T) {
	ctx := context.Background()
	idem, _ := newIdempotency(t, middleware.IdempotencyOptions{})
	bus := newBus(t)
	bus.Use(idem.Middleware())
	var runs sideEffects
	var queues []*courier.Queue[string]
	for n := range 7 {
		q := newQueue[string](t, bus, fmt.Sprint("q", n))
		require.NoError(t, q.Consume(func(_ context.Context, m *courier.Message[string]) error {
			runs.add(m.Destination)
			return nil
		}))
		queues = append(queues, q)
	}
	for _, q := range queues {
		require.NoError(t, q.Send(ctx, "x", courier.WithIdempotencyKey("k")))
	}
	for _, q := range queues {
		require.ErrorIs(t, q.Send(ctx, "x", courier.WithIdempotencyKey("k")), courier.ErrDuplicate)
	}
	require.NoError(t, bus.WaitIdle(ctx))
	want := map[string]int{}
	for n := range queues {
		want[fmt.Sprint("q", n)] = 1
	}
	require.Equal(t, want, runs.get())
	require.EqualValues(t, len(queues), idem.Stats().DuplicateSends)
}

func TestIdempotencyCommitsWithAContextThatDidNotEnd(t *testing.T) {
	store := &recordingStore{Store: middleware.NewMemoryStore(middleware.MemoryStoreOptions{})}
	idem, err := middleware.NewIdempotency(store, middleware.IdempotencyOptions{})
	require.NoError(t, err)
	mw := idem.Middleware()
	// The rest of the chain cancels the context before it returns, as a
	// shutdown or an expiring TTL would.
	for _, fail := range []bool{false, true} {
		env := &courier.Message[int]{Metadata: courier.Metadata{IdempotencyKey: fmt.Sprint(fail), Destination: "jobs"}}
		ctx, cancel := context.WithCancel(context.Background())
		sendErr := mw.Send(func(context.Context, courier.Envelope) error {
			cancel()
			if fail {
				return errors.New("refused")
			}
			return nil
		})(ctx, env)
		require.Equal(t, fail, sendErr != nil)

		ctx, cancel = context.WithCancel(context.Background())
		handleErr := mw.Handle(func(context.Context, courier.Envelope) error {
			cancel()
			if fail {
				return errors.New("failed")
			}
			return nil
		})(ctx, env)
		require.Equal(t, fail, handleErr != nil)
	}
	require.Equal(t, 4, store.liveCommit)
	require.Zero(t, store.deadCommit)
	st := idem.Stats()
	require.EqualValues(t, 1, st.Committed)
	require.EqualValues(t, 1, st.Released)
	require.Zero(t, st.StoreErrors)
}

// TestIdempotencyDoesNotAllocate checks that, with a MemoryStore in steady
// state, a message with a key allocates nothing on either path.
func TestIdempotencyDoesNotAllocate(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector allocates")
	}
	const maxKeys = 64
	store := middleware.NewMemoryStore(middleware.MemoryStoreOptions{MaxKeys: maxKeys})
	idem, err := middleware.NewIdempotency(store, middleware.IdempotencyOptions{})
	require.NoError(t, err)
	mw := idem.Middleware()
	ok := func(context.Context, courier.Envelope) error { return nil }
	send, handle := mw.Send(ok), mw.Handle(ok)
	ctx, cancel := context.WithCancel(context.Background()) // as a worker's
	defer cancel()
	const runs = 1000
	envs := make([]*courier.Message[int], 4*maxKeys+runs+1) // AllocsPerRun runs once more
	for i := range envs {
		envs[i] = &courier.Message[int]{Metadata: courier.Metadata{IdempotencyKey: fmt.Sprint("k-", i), Destination: "jobs"}}
	}
	n := 0
	one := func() {
		env := envs[n]
		n++
		if err := send(ctx, env); err != nil {
			panic(err)
		}
		if err := handle(ctx, env); err != nil {
			panic(err)
		}
	}
	for range 4 * maxKeys { // fill the store
		one()
	}
	require.Zero(t, testing.AllocsPerRun(runs, one))
	require.EqualValues(t, len(envs), idem.Stats().Committed)
}
