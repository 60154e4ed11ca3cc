package courier_test

import (
	"context"
	"errors"
	"runtime"
	"sync/atomic"
	"testing"
	"time"
	"weak"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/courierbus/courier"
)

// Step is one hop of a flow in which each handler sends the next message.
type Step struct {
	N       int
	Payload []byte
}

// collected runs the collector until every pointer in ptrs is gone, or
// reports the indexes of those still alive.
func collected[T any](ptrs []weak.Pointer[T]) (alive []int) {
	for range 5 {
		runtime.GC()
	}
	for i, p := range ptrs {
		if p.Value() != nil {
			alive = append(alive, i)
		}
	}
	return alive
}

// A message sent from a handler carries its parent's ID as CausationID and
// the flow's correlation ID. Neither may keep the parent's message alive, or
// a flow in which every handler sends the next message (a saga, a job that
// reschedules itself) would keep its whole history, bodies included, for as
// long as it runs.
func TestAFlowDoesNotKeepItsHandledMessages(t *testing.T) {
	const hops = 20
	b := newBus(t)
	q, err := courier.NewQueue[Step](b, "steps")
	require.NoError(t, err)
	handled := make([]weak.Pointer[courier.Message[Step]], hops)
	ids := make([]string, hops+1)
	last := make(chan *courier.Message[Step], 1)
	release := make(chan struct{})
	require.NoError(t, q.Consume(func(ctx context.Context, m *courier.Message[Step]) error {
		n := m.Body.N
		ids[n] = string([]byte(m.ID))
		if n == hops {
			last <- m
			<-release // keeps the last message in flight, alive
			return nil
		}
		handled[n] = weak.Make(m)
		return q.Send(ctx, Step{N: n + 1, Payload: make([]byte, 1<<20)})
	}))
	require.NoError(t, q.Send(ctxT(t), Step{Payload: make([]byte, 1<<20)}))
	m := recv(t, last)

	assert.Empty(t, collected(handled), "handled messages of the flow still alive")
	assert.Equal(t, ids[0], m.CorrelationID)
	assert.Equal(t, ids[hops-1], m.CausationID)
	close(release)
	require.NoError(t, b.WaitIdle(ctxT(t)))
	runtime.KeepAlive(m)
}

// Operations keeps an operation's ID for its retention, after the request
// was handled: the ID must not keep the request's message alive.
func TestAnOperationDoesNotKeepItsRequest(t *testing.T) {
	b := newBus(t)
	rq := mustRequestQueue(t, b, "quotes")
	ops := mustOperations(t, rq, 3600e9)
	seen := make(chan weak.Pointer[courier.Message[Quote]], 1)
	require.NoError(t, rq.Serve(func(ctx context.Context, m *courier.Message[Quote]) (Price, error) {
		seen <- weak.Make(m)
		return price(ctx, m)
	}))
	id, err := ops.Submit(ctxT(t), Quote{Items: 2})
	require.NoError(t, err)
	_, err = ops.Wait(ctxT(t), id)
	require.NoError(t, err)
	require.NoError(t, b.WaitIdle(ctxT(t)))
	request := recv(t, seen)

	assert.Empty(t, collected([]weak.Pointer[courier.Message[Quote]]{request}), "the request is still alive")
	op, err := ops.Status(id)
	require.NoError(t, err)
	assert.Equal(t, courier.OperationSucceeded, op.State)
}

// A caller may keep a request's error for long: once the dead letter is
// gone, the error must not keep the request's message alive.
func TestARequestErrorDoesNotKeepItsRequest(t *testing.T) {
	b := newBus(t)
	rq := mustRequestQueue(t, b, "quotes")
	seen := make(chan weak.Pointer[courier.Message[Quote]], 1)
	require.NoError(t, rq.Serve(func(_ context.Context, m *courier.Message[Quote]) (Price, error) {
		seen <- weak.Make(m)
		return Price{}, courier.Permanent(errors.New("bad quote"))
	}))
	_, err := rq.Request(ctxT(t), Quote{Items: 1})
	var re *courier.RequestError
	require.ErrorAs(t, err, &re)
	require.NoError(t, b.WaitIdle(ctxT(t)))
	request := recv(t, seen)
	require.Equal(t, 1, rq.Queue().DeadLetters().Purge())

	assert.Empty(t, collected([]weak.Pointer[courier.Message[Quote]]{request}), "the request is still alive")
	assert.Len(t, re.RequestID, 36)
	runtime.KeepAlive(re)
}

// Once handled, a message is not kept by the engine, whatever way it came:
// delayed, retried, in a key's lane, with a time to live, as a request.
func TestHandledMessagesAreNotKept(t *testing.T) {
	b := newBus(t)
	q, err := courier.NewQueue[Step](b, "steps",
		courier.WithRetry(courier.RetryPolicy{MaxAttempts: 3, InitialInterval: time.Millisecond, MaxInterval: time.Millisecond}))
	require.NoError(t, err)
	seen := make(chan weak.Pointer[courier.Message[Step]], 4)
	var failed atomic.Bool
	require.NoError(t, q.Consume(func(_ context.Context, m *courier.Message[Step]) error {
		if m.Body.N == 2 && !failed.Swap(true) {
			return errors.New("once")
		}
		seen <- weak.Make(m)
		return nil
	}))
	rq := mustRequestQueue(t, b, "quotes")
	seenRequest := make(chan weak.Pointer[courier.Message[Quote]], 1)
	require.NoError(t, rq.Serve(func(ctx context.Context, m *courier.Message[Quote]) (Price, error) {
		seenRequest <- weak.Make(m)
		return price(ctx, m)
	}))

	require.NoError(t, q.Send(ctxT(t), Step{N: 1}, courier.WithDelay(time.Millisecond)))
	require.NoError(t, q.Send(ctxT(t), Step{N: 2}))
	require.NoError(t, q.Send(ctxT(t), Step{N: 3}, courier.WithKey("k")))
	require.NoError(t, q.Send(ctxT(t), Step{N: 4}, courier.WithTTL(time.Hour)))
	_, err = rq.Request(ctxT(t), Quote{Items: 1})
	require.NoError(t, err)
	var steps []weak.Pointer[courier.Message[Step]]
	for range 4 {
		steps = append(steps, recv(t, seen))
	}
	request := recv(t, seenRequest)
	require.NoError(t, b.WaitIdle(ctxT(t)))

	assert.Empty(t, collected(steps), "handled messages still alive")
	assert.Empty(t, collected([]weak.Pointer[courier.Message[Quote]]{request}), "the handled request is still alive")
}
