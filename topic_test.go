package courier_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/courierbus/courier"
)

type Payment struct {
	OrderID string
	Amount  int
}

func TestTopicFansOutToEverySubscription(t *testing.T) {
	b := newBus(t)
	topic, err := courier.NewTopic[Payment](b, "payments")
	require.NoError(t, err)
	type got struct {
		sub string
		m   courier.Message[Payment]
	}
	ch := make(chan got, 30)
	for _, name := range []string{"accounting", "analytics", "fulfillment"} {
		require.NoError(t, topic.Subscribe(name, func(_ context.Context, m *courier.Message[Payment]) error {
			ch <- got{name, *m}
			return nil
		}))
	}
	require.NoError(t, topic.Publish(ctxT(t), Payment{OrderID: "o-1", Amount: 5}))
	seen := map[string]courier.Message[Payment]{}
	for range 3 {
		g := recv(t, ch)
		seen[g.sub] = g.m
	}
	require.Len(t, seen, 3)
	id := seen["accounting"].ID
	for name, m := range seen {
		assert.Equal(t, name, m.Subscription)
		assert.Equal(t, "payments", m.Destination)
		assert.Equal(t, id, m.ID, "one published message, one ID")
		assert.Equal(t, Payment{OrderID: "o-1", Amount: 5}, m.Body)
	}
	require.NoError(t, b.Shutdown(ctxT(t)))
	st := topic.Stats()
	assert.EqualValues(t, 1, st.Published)
	for _, s := range st.Subscriptions {
		assert.EqualValues(t, 1, s.Handled)
	}
}

func TestSlowSubscriptionDoesNotDelayAnother(t *testing.T) {
	b := newBus(t)
	topic, err := courier.NewTopic[Payment](b, "payments")
	require.NoError(t, err)
	release := make(chan struct{})
	require.NoError(t, topic.Subscribe("slow", func(ctx context.Context, _ *courier.Message[Payment]) error {
		select {
		case <-release:
		case <-ctx.Done():
		}
		return nil
	}))
	fast := make(chan int, 100)
	require.NoError(t, topic.Subscribe("fast", func(_ context.Context, m *courier.Message[Payment]) error {
		fast <- m.Body.Amount
		return nil
	}))
	for i := range 50 {
		require.NoError(t, topic.Publish(ctxT(t), Payment{Amount: i}))
	}
	for i := range 50 {
		assert.Equal(t, i, recv(t, fast), "the fast subscription handles everything while the slow one is stuck")
	}
	close(release)
	require.NoError(t, b.Shutdown(ctxT(t)))
}

func TestFailingSubscriptionHasItsOwnRetriesAndDeadLetters(t *testing.T) {
	sink, hook := newDeadSink()
	b := newBus(t, hook)
	topic, err := courier.NewTopic[Payment](b, "payments", courier.WithRetry(courier.RetryPolicy{MaxAttempts: 2, InitialInterval: time.Millisecond}))
	require.NoError(t, err)
	okCh := make(chan struct{}, 1)
	require.NoError(t, topic.Subscribe("ok", func(context.Context, *courier.Message[Payment]) error {
		okCh <- struct{}{}
		return nil
	}))
	require.NoError(t, topic.Subscribe("broken", func(context.Context, *courier.Message[Payment]) error {
		return errors.New("down")
	}, courier.WithRetry(courier.RetryPolicy{MaxAttempts: 4, InitialInterval: time.Millisecond})))
	require.NoError(t, topic.Publish(ctxT(t), Payment{OrderID: "o-1"}))
	recv(t, okCh)
	d := sink.next(t)
	assert.Equal(t, "broken", d.Subscription)
	assert.Equal(t, 4, d.Attempts, "the subscription's own policy applies")

	broken, err := topic.Subscription("broken")
	require.NoError(t, err)
	list := broken.DeadLetters().List()
	require.Len(t, list, 1)
	assert.Equal(t, "o-1", list[0].Body.OrderID)
	ok, err := topic.Subscription("ok")
	require.NoError(t, err)
	assert.Equal(t, 0, ok.DeadLetters().Count())
	assert.Equal(t, "ok", ok.Name())
	require.NoError(t, b.Shutdown(ctxT(t)))
	assert.EqualValues(t, 1, ok.Stats().Handled)
	assert.EqualValues(t, 1, broken.Stats().DeadLettered)
}

func TestSubscriptionFilter(t *testing.T) {
	b := newBus(t)
	topic, err := courier.NewTopic[Payment](b, "payments")
	require.NoError(t, err)
	var mu sync.Mutex
	var big []int
	require.NoError(t, topic.Subscribe("big", func(_ context.Context, m *courier.Message[Payment]) error {
		mu.Lock()
		big = append(big, m.Body.Amount)
		mu.Unlock()
		return nil
	}, courier.WithFilter(func(m *courier.Message[Payment]) bool { return m.Body.Amount >= 100 })))
	for _, a := range []int{5, 150, 99, 100} {
		require.NoError(t, topic.Publish(ctxT(t), Payment{Amount: a}))
	}
	require.NoError(t, b.Shutdown(ctxT(t)))
	assert.Equal(t, []int{150, 100}, big)
	st := topic.Stats()
	assert.EqualValues(t, 2, st.Subscriptions["big"].Filtered)
	assert.EqualValues(t, 2, st.Unrouted, "messages every filter turned away reach no one")
}

func TestFilterPanicFailsThePublish(t *testing.T) {
	b := newBus(t)
	topic, err := courier.NewTopic[Payment](b, "payments")
	require.NoError(t, err)
	require.NoError(t, topic.Subscribe("s", func(context.Context, *courier.Message[Payment]) error { return nil },
		courier.WithFilter(func(*courier.Message[Payment]) bool { panic("filter bug") })))
	err = topic.Publish(ctxT(t), Payment{})
	var pe *courier.PanicError
	require.ErrorAs(t, err, &pe)
	assert.EqualValues(t, 0, topic.Stats().Subscriptions["s"].Sent)
}

func TestPublishWithoutSubscriptionsIsCounted(t *testing.T) {
	b := newBus(t)
	topic, err := courier.NewTopic[Payment](b, "payments")
	require.NoError(t, err)
	require.NoError(t, topic.Publish(ctxT(t), Payment{}))
	assert.EqualValues(t, 1, topic.Stats().Unrouted)
	assert.EqualValues(t, 1, topic.Stats().Published)
}

func TestTryPublishIsAllOrNothing(t *testing.T) {
	b := newBus(t)
	topic, err := courier.NewTopic[Payment](b, "payments")
	require.NoError(t, err)
	block := make(chan struct{})
	defer close(block)
	h := func(ctx context.Context, _ *courier.Message[Payment]) error {
		select {
		case <-block:
		case <-ctx.Done():
		}
		return nil
	}
	require.NoError(t, topic.Subscribe("roomy", h, courier.Capacity(10)))
	require.NoError(t, topic.Subscribe("tight", h, courier.Capacity(1)))
	require.NoError(t, topic.TryPublish(ctxT(t), Payment{})) // fills "tight"
	err = topic.TryPublish(ctxT(t), Payment{})
	assert.ErrorIs(t, err, courier.ErrFull)
	st := topic.Stats()
	assert.EqualValues(t, 1, st.Subscriptions["roomy"].Sent, "no subscription got the refused message")
	assert.EqualValues(t, 1, st.Subscriptions["tight"].Sent)

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Millisecond)
	defer cancel()
	assert.ErrorIs(t, topic.Publish(ctx, Payment{}), context.DeadlineExceeded)
	assert.EqualValues(t, 1, topic.Stats().Subscriptions["roomy"].Sent)
}

func TestLossySubscriptionNeverBlocksPublish(t *testing.T) {
	b := newBus(t)
	topic, err := courier.NewTopic[Payment](b, "payments")
	require.NoError(t, err)
	block := make(chan struct{})
	require.NoError(t, topic.Subscribe("lossy", func(ctx context.Context, _ *courier.Message[Payment]) error {
		select {
		case <-block:
		case <-ctx.Done():
		}
		return nil
	}, courier.Capacity(1), courier.WithOverflow(courier.DropNewest)))
	got := make(chan int, 10)
	require.NoError(t, topic.Subscribe("main", func(_ context.Context, m *courier.Message[Payment]) error {
		got <- m.Body.Amount
		return nil
	}))
	for i := range 5 {
		require.NoError(t, topic.Publish(ctxT(t), Payment{Amount: i}))
	}
	for i := range 5 {
		assert.Equal(t, i, recv(t, got))
	}
	lossy, err := topic.Subscription("lossy")
	require.NoError(t, err)
	assert.Equal(t, 4, lossy.DeadLetters().Count())
	for _, d := range lossy.DeadLetters().List() {
		assert.Equal(t, courier.ReasonOverflow, d.Reason)
		assert.Equal(t, "lossy", d.Subscription)
	}
	close(block)
}

// Concurrent publishers to small subscriptions take both the one-lock path
// (room everywhere) and the waiting path (some subscription full), while a
// subscription is added: nothing deadlocks, nothing is lost or doubled.
func TestConcurrentPublishersWithSmallSubscriptions(t *testing.T) {
	const publishers, each = 4, 300
	b := newBus(t)
	topic, err := courier.NewTopic[Payment](b, "payments", courier.Capacity(4))
	require.NoError(t, err)
	var mu sync.Mutex
	got := map[string]map[int]int{}
	subscribe := func(name string) {
		mu.Lock()
		got[name] = map[int]int{}
		mu.Unlock()
		require.NoError(t, topic.Subscribe(name, func(_ context.Context, m *courier.Message[Payment]) error {
			mu.Lock()
			got[m.Subscription][m.Body.Amount]++
			mu.Unlock()
			return nil
		}))
	}
	subscribe("a")
	subscribe("b")
	var wg sync.WaitGroup
	for p := range publishers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				assert.NoError(t, topic.Publish(ctxT(t), Payment{Amount: p*each + i}))
			}
		}()
	}
	subscribe("c") // while the publishers run
	wg.Wait()
	require.NoError(t, b.WaitIdle(ctxT(t)))
	mu.Lock()
	defer mu.Unlock()
	for _, name := range []string{"a", "b"} {
		assert.Len(t, got[name], publishers*each, name)
	}
	for name, counts := range got {
		for amount, n := range counts {
			assert.Equal(t, 1, n, "%s got payment %d %d times", name, amount, n)
		}
	}
	assert.EqualValues(t, publishers*each, topic.Stats().Published)
}
