package courier_test

import (
	"context"
	"errors"
	"runtime"
	"testing"
	"weak"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/courierbus/courier"
)

// A topic makes the copies of a publish together. A copy that is
// dead-lettered and kept must not keep the others' memory alive, nor the
// published message's, where the ID text they share lives.
func TestDeadLetterDoesNotPinItsFanoutSiblings(t *testing.T) {
	b := newBus(t)
	topic, err := courier.NewTopic[Payment](b, "payments")
	require.NoError(t, err)
	handled := make(chan weak.Pointer[courier.Message[Payment]], 3)
	keep := func(_ context.Context, m *courier.Message[Payment]) error {
		handled <- weak.Make(m)
		return nil
	}
	fail := func(context.Context, *courier.Message[Payment]) error {
		return courier.Permanent(errors.New("rejected"))
	}
	// The first subscription gets the published message itself; the other
	// three get the copies made together.
	require.NoError(t, topic.Subscribe("first", keep))
	require.NoError(t, topic.Subscribe("second", keep))
	require.NoError(t, topic.Subscribe("third", fail))
	require.NoError(t, topic.Subscribe("fourth", keep))
	require.NoError(t, topic.Publish(ctxT(t), Payment{OrderID: "o-1", Amount: 5}))
	require.NoError(t, b.WaitIdle(ctxT(t)))
	ptrs := []weak.Pointer[courier.Message[Payment]]{recv(t, handled), recv(t, handled), recv(t, handled)}

	third, err := topic.Subscription("third")
	require.NoError(t, err)
	for range 5 {
		runtime.GC()
	}
	for _, p := range ptrs {
		assert.Nil(t, p.Value(), "a handled copy is still alive")
	}
	letters := third.DeadLetters().List()
	require.Len(t, letters, 1)
	l := letters[0]
	assert.Equal(t, Payment{OrderID: "o-1", Amount: 5}, l.Body)
	assert.Equal(t, "third", l.Subscription)
	assert.Equal(t, courier.ReasonPermanent, l.Reason)
	assert.EqualError(t, l.Err, "rejected")
	assert.Len(t, l.ID, 36)
	assert.Equal(t, l.ID, l.CorrelationID)

	// The detached letter is still the message: it replays.
	n, err := third.DeadLetters().Replay(ctxT(t))
	require.NoError(t, err)
	assert.Equal(t, 1, n)
	require.NoError(t, b.WaitIdle(ctxT(t)))
	assert.Equal(t, 1, third.DeadLetters().Count())
	runtime.KeepAlive(third)
}

// A send allocates once: its message. A publish allocates twice whatever the
// number of its subscriptions (up to eight): its message, and the copies for
// the other subscriptions together. The copy for a filtered subscription is
// made only when its filter takes the message.
func TestSendAndPublishAllocations(t *testing.T) {
	b := newBus(t)
	q, err := courier.NewQueue[Payment](b, "orders", courier.Capacity(1<<12))
	require.NoError(t, err)
	require.NoError(t, q.Consume(func(context.Context, *courier.Message[Payment]) error { return nil }))
	topic, err := courier.NewTopic[Payment](b, "payments", courier.Capacity(1<<12))
	require.NoError(t, err)
	for _, name := range []string{"a", "b", "c", "d"} {
		require.NoError(t, topic.Subscribe(name, func(context.Context, *courier.Message[Payment]) error { return nil }))
	}
	ctx := context.Background()
	p := Payment{OrderID: "o-1", Amount: 5}
	// Allocations the workers make meanwhile are counted too; there should
	// be none, and AllocsPerRun rounds stray ones of the runtime down.
	assert.Equal(t, 1.0, testing.AllocsPerRun(200, func() { _ = q.Send(ctx, p) }), "Send")
	assert.Equal(t, 2.0, testing.AllocsPerRun(200, func() { _ = topic.Publish(ctx, p) }), "Publish to 4")

	only := func(m *courier.Message[Payment]) bool { return m.Body.Amount > 100 }
	require.NoError(t, topic.Subscribe("large", func(context.Context, *courier.Message[Payment]) error { return nil },
		courier.WithFilter(only)))
	assert.Equal(t, 2.0, testing.AllocsPerRun(200, func() { _ = topic.Publish(ctx, p) }), "Publish, filter rejects")
	large := Payment{OrderID: "o-2", Amount: 500}
	assert.Equal(t, 2.0, testing.AllocsPerRun(200, func() { _ = topic.Publish(ctx, large) }), "Publish, filter takes")
	require.NoError(t, b.WaitIdle(ctxT(t)))
}
