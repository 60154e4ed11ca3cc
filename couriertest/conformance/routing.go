package conformance

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/courierbus/courier"
	"github.com/courierbus/courier/couriertest"
)

// Messages of one key are handled one at a time, in the order sent, even
// with many workers and a retry in between.
func testOrderingKeys(t *testing.T, h *couriertest.Harness) {
	const keys, perKey = 4, 50
	q := queue(t, h, "items", fast(3))
	var mu sync.Mutex
	order := map[string][]int{}
	busy := map[string]*atomic.Int32{}
	for k := range keys {
		busy[fmt.Sprint("key-", k)] = new(atomic.Int32)
	}
	var overlaps atomic.Int32
	require.NoError(t, q.Consume(func(_ context.Context, m *courier.Message[Item]) error {
		if busy[m.Key].Add(1) > 1 {
			overlaps.Add(1)
		}
		defer busy[m.Key].Add(-1)
		if m.Body.N == 10 && m.Attempt == 1 {
			return errFlaky // the retry must hold the key's later messages back
		}
		mu.Lock()
		order[m.Key] = append(order[m.Key], m.Body.N)
		mu.Unlock()
		return nil
	}, courier.Workers(8)))
	for i := range perKey {
		for k := range keys {
			require.NoError(t, q.Send(ctx(t), Item{N: i}, courier.WithKey(fmt.Sprint("key-", k))))
		}
	}
	h.Settle()
	assert.Zero(t, overlaps.Load(), "two messages of one key were handled at once")
	want := make([]int, perKey)
	for i := range want {
		want[i] = i
	}
	mu.Lock()
	defer mu.Unlock()
	for k, got := range order {
		assert.True(t, slices.Equal(want, got), "key %s handled in order %v", k, got)
	}
	assert.Len(t, order, keys)
}

// Every subscription of a topic receives every published message.
func testFanOut(t *testing.T, h *couriertest.Harness) {
	const n = 50
	tp := topic(t, h, "events")
	subs := []string{"billing", "shipping", "audit"}
	var got tally[string]
	ids := map[string]map[int]string{}
	var mu sync.Mutex
	for _, s := range subs {
		ids[s] = map[int]string{}
		require.NoError(t, tp.Subscribe(s, func(_ context.Context, m *courier.Message[Item]) error {
			got.add(m.Subscription)
			mu.Lock()
			ids[m.Subscription][m.Body.N] = m.ID
			mu.Unlock()
			return nil
		}, courier.Workers(2)))
	}
	for i := range n {
		require.NoError(t, tp.Publish(ctx(t), Item{N: i}))
	}
	h.Settle()
	counts := got.snapshot()
	for _, s := range subs {
		assert.Equal(t, n, counts[s], s)
	}
	mu.Lock()
	defer mu.Unlock()
	for i := range n {
		assert.Equal(t, ids["billing"][i], ids["shipping"][i], "the copies share the message ID")
		assert.Equal(t, ids["billing"][i], ids["audit"][i])
	}
	ts := tp.Stats()
	assert.EqualValues(t, n, ts.Published)
	for _, s := range subs {
		assert.EqualValues(t, n, ts.Subscriptions[s].Handled)
	}
}

// A subscription whose handler fails dead-letters into its own queue; the
// other subscriptions are unaffected.
func testFailingSubscription(t *testing.T, h *couriertest.Harness) {
	tp := topic(t, h, "events", fast(2))
	require.NoError(t, tp.Subscribe("good", func(context.Context, *courier.Message[Item]) error { return nil }))
	require.NoError(t, tp.Subscribe("bad", func(context.Context, *courier.Message[Item]) error { return errFlaky }))
	for i := range 5 {
		require.NoError(t, tp.Publish(ctx(t), Item{N: i}))
	}
	got := couriertest.RequireConsumedN[Item](t, h, 5, nil)
	for _, m := range got {
		assert.Equal(t, "good", m.Subscription)
	}
	d := couriertest.RequireDeadLettered[Item](t, h, nil)
	assert.Equal(t, "bad", d.Subscription)
	bad, err := tp.Subscription("bad")
	require.NoError(t, err)
	assert.Equal(t, 5, bad.DeadLetters().Count())
	good, err := tp.Subscription("good")
	require.NoError(t, err)
	assert.Zero(t, good.DeadLetters().Count())
}
