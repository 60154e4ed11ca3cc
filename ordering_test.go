package courier_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/courierbus/courier"
)

func TestOneWorkerIsFIFO(t *testing.T) {
	b := newBus(t)
	q := mustQueue[Order](t, b, "orders")
	var got []int
	require.NoError(t, q.Consume(func(_ context.Context, m *courier.Message[Order]) error {
		got = append(got, m.Body.Seq)
		return nil
	}))
	want := make([]int, 500)
	for i := range want {
		want[i] = i
		require.NoError(t, q.Send(ctxT(t), Order{Seq: i}))
	}
	require.NoError(t, b.Shutdown(ctxT(t)))
	assert.Equal(t, want, got)
}

// TestKeyedOrderingWithRetries checks the ordering-key guarantee with 8
// workers and failures in the mix: per key, handlers never overlap, and the
// successful handlings come in send order, each exactly once.
func TestKeyedOrderingWithRetries(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := newBus(t)
		q := mustQueue[Order](t, b, "orders", courier.Workers(8), courier.Capacity(10_000),
			courier.WithRetry(courier.RetryPolicy{MaxAttempts: 10, InitialInterval: time.Second, Jitter: 0.5}))
		const keys, perKey = 16, 60
		var mu sync.Mutex
		active := map[string]int{}
		done := map[string][]int{}
		var overlaps atomic.Int32
		var running, maxRunning atomic.Int32
		require.NoError(t, q.Consume(func(_ context.Context, m *courier.Message[Order]) error {
			n := running.Add(1)
			defer running.Add(-1)
			for {
				mx := maxRunning.Load()
				if n <= mx || maxRunning.CompareAndSwap(mx, n) {
					break
				}
			}
			mu.Lock()
			active[m.Key]++
			if active[m.Key] > 1 {
				overlaps.Add(1)
			}
			mu.Unlock()
			time.Sleep(time.Duration(rand.IntN(3)) * time.Millisecond) // virtual: lets other workers interleave
			mu.Lock()
			defer mu.Unlock()
			active[m.Key]--
			if rand.IntN(4) == 0 {
				return errors.New("transient")
			}
			done[m.Key] = append(done[m.Key], m.Body.Seq)
			return nil
		}))
		for seq := range perKey {
			for k := range keys {
				require.NoError(t, q.Send(t.Context(), Order{Seq: seq}, courier.WithKey(fmt.Sprint("customer-", k))))
			}
		}
		require.NoError(t, b.Shutdown(t.Context()))
		assert.Zero(t, overlaps.Load(), "two handlers of one key ran at once")
		assert.Greater(t, maxRunning.Load(), int32(1), "different keys should run in parallel")
		require.Len(t, done, keys)
		for k, seqs := range done {
			require.Len(t, seqs, perKey, k)
			for i, s := range seqs {
				require.Equal(t, i, s, "key %s out of order: %v", k, seqs)
			}
		}
		assert.EqualValues(t, 0, q.Stats().DeadLettered)
		assert.NotZero(t, q.Stats().Retried)
	})
}

func TestRetryingKeyHoldsBackItsKeyOnly(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := newBus(t)
		q := mustQueue[Order](t, b, "orders", courier.Workers(4),
			courier.WithRetry(courier.RetryPolicy{InitialInterval: time.Minute, Jitter: -1}))
		var mu sync.Mutex
		var log []string
		require.NoError(t, q.Consume(func(_ context.Context, m *courier.Message[Order]) error {
			mu.Lock()
			defer mu.Unlock()
			if m.Body.ID == "a1" && m.Attempt == 1 {
				return errors.New("retry me")
			}
			log = append(log, m.Body.ID)
			return nil
		}))
		require.NoError(t, q.Send(t.Context(), Order{ID: "a1"}, courier.WithKey("a")))
		synctest.Wait() // a1 failed and waits a minute
		require.NoError(t, q.Send(t.Context(), Order{ID: "a2"}, courier.WithKey("a")))
		require.NoError(t, q.Send(t.Context(), Order{ID: "b1"}, courier.WithKey("b")))
		require.NoError(t, q.Send(t.Context(), Order{ID: "u1"}))
		synctest.Wait()
		mu.Lock()
		assert.ElementsMatch(t, []string{"b1", "u1"}, log, "a2 waits behind a1; others go ahead")
		mu.Unlock()
		assert.Equal(t, 1, q.Stats().Depth, "a2 is held in its key's lane")
		time.Sleep(time.Minute)
		synctest.Wait()
		mu.Lock()
		assert.Equal(t, []string{"a1", "a2"}, log[2:])
		mu.Unlock()
		require.NoError(t, b.Shutdown(t.Context()))
	})
}

func TestCompetingConsumers(t *testing.T) {
	b := newBus(t)
	q := mustQueue[Order](t, b, "jobs")
	// Each consumer blocks on its first message until the other has one too,
	// so the test passes only if both consumers receive messages.
	var wg sync.WaitGroup
	wg.Add(2)
	var first [2]sync.Once
	var counts [2]atomic.Int32
	for i := range 2 {
		require.NoError(t, q.Consume(func(context.Context, *courier.Message[Order]) error {
			counts[i].Add(1)
			first[i].Do(func() { wg.Done(); wg.Wait() })
			return nil
		}))
	}
	for i := range 20 {
		require.NoError(t, q.Send(ctxT(t), Order{Seq: i}))
	}
	require.NoError(t, b.Shutdown(ctxT(t)))
	assert.NotZero(t, counts[0].Load())
	assert.NotZero(t, counts[1].Load())
	assert.EqualValues(t, 20, counts[0].Load()+counts[1].Load(), "each message goes to one consumer")
}

func TestWorkersRunConcurrently(t *testing.T) {
	b := newBus(t)
	q := mustQueue[Order](t, b, "jobs")
	const n = 6
	var wg sync.WaitGroup
	wg.Add(n)
	require.NoError(t, q.Consume(func(context.Context, *courier.Message[Order]) error {
		wg.Done()
		wg.Wait() // returns only when n handlers run at once
		return nil
	}, courier.Workers(n)))
	for range n {
		require.NoError(t, q.Send(ctxT(t), Order{}))
	}
	require.NoError(t, b.Shutdown(ctxT(t)))
	assert.EqualValues(t, n, q.Stats().Handled)
}
