package courier_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/courierbus/courier"
)

// Over a transport, what FailureOutcome and WillRetry tell middleware is
// what the bus then does: a retry is a nak with the policy's delay, the
// last attempt a dead letter with the reason given.
func TestTransportFailureOutcomeAgreesWithSettlement(t *testing.T) {
	f := newFakeBroker(t)
	b := newBus(t, courier.WithTransport(f))
	type verdict struct {
		attempt int
		retry   bool
		reason  courier.Reason
	}
	var mu sync.Mutex
	verdicts := map[string][]verdict{} // by message ID
	bodies := map[string]string{}      // message ID → Order.ID
	probe := courier.Middleware{Handle: func(next courier.HandlerFunc) courier.HandlerFunc {
		return func(ctx context.Context, env courier.Envelope) error {
			err := next(ctx, env)
			retry, reason := courier.FailureOutcome(ctx, err)
			if courier.WillRetry(ctx, err) != retry {
				t.Errorf("WillRetry disagrees with FailureOutcome (%v, %q)", retry, reason)
			}
			md := env.Meta()
			mu.Lock()
			verdicts[md.ID] = append(verdicts[md.ID], verdict{md.Attempt, retry, reason})
			bodies[md.ID] = env.Payload().(Order).ID
			mu.Unlock()
			return err
		}
	}}
	handler := func(_ context.Context, m *courier.Message[Order]) error {
		switch m.Body.ID {
		case "ok":
			return nil
		case "permanent":
			return courier.Permanent(errors.New("bad"))
		}
		return errors.New("transient")
	}
	q := mustQueue[Order](t, b, "orders", courier.WithMiddleware(probe),
		courier.WithRetry(courier.RetryPolicy{MaxAttempts: 3, InitialInterval: 5 * time.Millisecond, Jitter: -1}))
	require.NoError(t, q.Consume(handler))
	// A retry an hour away would come after the message expires.
	slow := mustQueue[Order](t, b, "slow", courier.WithMiddleware(probe),
		courier.WithRetry(courier.RetryPolicy{MaxAttempts: 3, InitialInterval: time.Hour, Jitter: -1}))
	require.NoError(t, slow.Consume(handler))

	for _, id := range []string{"ok", "permanent", "transient"} {
		require.NoError(t, q.Send(ctxT(t), Order{ID: id}))
	}
	require.NoError(t, slow.Send(ctxT(t), Order{ID: "short-lived"}, courier.WithTTL(time.Minute)))
	require.NoError(t, b.WaitIdle(ctxT(t)))

	type outcome struct {
		verdict
		op     string
		delay  time.Duration
		reason courier.Reason
	}
	got := map[string][]outcome{}
	mu.Lock()
	defer mu.Unlock()
	for _, s := range f.settlements() {
		body, n := bodies[s.ID], len(got[bodies[s.ID]])
		require.Greater(t, len(verdicts[s.ID]), n, "a verdict for each settlement of %s", body)
		got[body] = append(got[body], outcome{verdicts[s.ID][n], s.Op, s.Delay, s.Reason})
	}
	retry := func(attempt int, delay time.Duration) outcome {
		return outcome{verdict{attempt, true, ""}, "nak", delay, ""}
	}
	dead := func(attempt int, r courier.Reason) outcome { return outcome{verdict{attempt, false, r}, "dead", 0, r} }
	assert.Equal(t, map[string][]outcome{
		"ok":          {{verdict{1, false, ""}, "ack", 0, ""}},
		"permanent":   {dead(1, courier.ReasonPermanent)},
		"transient":   {retry(1, 5*time.Millisecond), retry(2, 10*time.Millisecond), dead(3, courier.ReasonMaxAttempts)},
		"short-lived": {dead(1, courier.ReasonExpired)},
	}, got)

	s := q.Stats()
	assert.EqualValues(t, 1, s.Handled)
	assert.EqualValues(t, 2, s.Retried)
	assert.EqualValues(t, 2, s.DeadLettered)
	assert.Equal(t, 2, s.DeadLetters)
	list := q.DeadLetters().List()
	require.Len(t, list, 2)
	assert.Equal(t, "permanent", list[0].Body.ID, "oldest first")
	assert.Equal(t, 3, list[1].Attempts)
	assert.Equal(t, 1, slow.DeadLetters().Count())
}

// refusingTransport declares nothing: each semantic is unsupported.
type refusingTransport struct{}

func (refusingTransport) Declare(context.Context, courier.DestinationSpec) (courier.Destination, error) {
	return nil, fmt.Errorf("%w: refusing transport", courier.ErrUnsupported)
}

// A transport that cannot give a declaration what it asks makes the
// declaration fail, not a later send.
func TestTransportUnsupportedDeclarationFails(t *testing.T) {
	b := newBus(t, courier.WithTransport(refusingTransport{}))
	_, err := courier.NewQueue[Order](b, "orders")
	assert.ErrorIs(t, err, courier.ErrUnsupported)
	_, err = courier.NewTopic[Order](b, "events")
	assert.ErrorIs(t, err, courier.ErrUnsupported)

	f := newFakeBroker(t)
	b = newBus(t, courier.WithTransport(f))
	_, err = courier.NewQueue[Order](b, "dropping", courier.Capacity(1), courier.WithOverflow(courier.DropNewest))
	assert.ErrorIs(t, err, courier.ErrUnsupported)
	tp, err := courier.NewTopic[Order](b, "events")
	require.NoError(t, err)
	ok := func(context.Context, *courier.Message[Order]) error { return nil }
	assert.ErrorIs(t, tp.Subscribe("small", ok, courier.Capacity(1)), courier.ErrUnsupported)
}

// A Shutdown cut short hands the message a handler held back to the broker,
// counts it in Returned, and the next bus on the broker gets it again.
func TestTransportShutdownReturnsInFlightMessages(t *testing.T) {
	f := newFakeBroker(t)
	b := courier.New(courier.WithTransport(f), courier.WithLogger(slog.New(slog.DiscardHandler)))
	t.Cleanup(func() { _ = b.Close() })
	outcome := make(chan courier.Reason, 1)
	probe := courier.Middleware{Handle: func(next courier.HandlerFunc) courier.HandlerFunc {
		return func(ctx context.Context, env courier.Envelope) error {
			err := next(ctx, env)
			if retry, reason := courier.FailureOutcome(ctx, err); !retry {
				outcome <- reason
			}
			return err
		}
	}}
	q := mustQueue[Order](t, b, "orders", courier.WithMiddleware(probe))
	started := make(chan struct{}, 2)
	require.NoError(t, q.Consume(func(ctx context.Context, _ *courier.Message[Order]) error {
		started <- struct{}{}
		<-ctx.Done()
		return ctx.Err()
	}, courier.Workers(1)))
	require.NoError(t, q.Send(ctxT(t), Order{ID: "held"}))
	require.NoError(t, q.Send(ctxT(t), Order{ID: "waiting"}))
	recv(t, started)

	short, cancel := context.WithTimeout(ctxT(t), 20*time.Millisecond)
	defer cancel()
	err := b.Shutdown(short)
	var se *courier.ShutdownError
	require.ErrorAs(t, err, &se)
	assert.ErrorIs(t, err, courier.ErrShutdownIncomplete)
	assert.ErrorIs(t, err, context.DeadlineExceeded)
	assert.Equal(t, 1, se.Returned)
	assert.Zero(t, se.DeadLettered)
	assert.Zero(t, se.Abandoned)
	s := q.Stats()
	assert.Equal(t, 1, s.InFlight, "the returned message was delivered once")
	assert.Equal(t, 1, s.Depth, "the other was never delivered")
	assert.Zero(t, s.DeadLetters)
	// Middleware was told the failure is retried: the broker delivers it again.
	assert.Empty(t, outcome)
	log := f.settlements()
	require.Len(t, log, 1)
	assert.Equal(t, fakeSettlement{log[0].ID, "", "nak", 1, 0, ""}, log[0])

	b2 := newBus(t, courier.WithTransport(f))
	q2 := mustQueue[Order](t, b2, "orders")
	attempts := make(chan string, 2)
	require.NoError(t, q2.Consume(func(_ context.Context, m *courier.Message[Order]) error {
		attempts <- fmt.Sprint(m.Body.ID, "#", m.Attempt)
		return nil
	}, courier.Workers(1)))
	require.NoError(t, b2.WaitIdle(ctxT(t)))
	assert.ElementsMatch(t, []string{"held#2", "waiting#1"}, []string{recv(t, attempts), recv(t, attempts)})
}

// The broker, not the bus, refuses a duplicate; a subscription receives only
// what is published after it was created.
func TestTransportDuplicatesAndLateSubscriptions(t *testing.T) {
	f := newFakeBroker(t)
	b := newBus(t, courier.WithTransport(f))
	q := mustQueue[Order](t, b, "orders")
	require.NoError(t, q.Send(ctxT(t), Order{ID: "a"}, courier.WithIdempotencyKey("order-a")))
	assert.ErrorIs(t, q.Send(ctxT(t), Order{ID: "a"}, courier.WithIdempotencyKey("order-a")), courier.ErrDuplicate)
	assert.Equal(t, 1, q.Stats().Depth)

	tp, err := courier.NewTopic[Order](b, "events")
	require.NoError(t, err)
	got := make(chan string, 4)
	record := func(_ context.Context, m *courier.Message[Order]) error {
		got <- m.Subscription + ":" + m.Body.ID
		return nil
	}
	require.NoError(t, tp.Subscribe("early", record))
	require.NoError(t, tp.Publish(ctxT(t), Order{ID: "1"}))
	require.NoError(t, tp.Subscribe("late", record))
	require.NoError(t, tp.Publish(ctxT(t), Order{ID: "2"}))
	require.NoError(t, b.WaitIdle(ctxT(t)))
	close(got)
	var all []string
	for s := range got {
		all = append(all, s)
	}
	assert.ElementsMatch(t, []string{"early:1", "early:2", "late:2"}, all)
}

// A request and its reply both cross the broker, between two buses; a
// failure comes back as a RequestError with its reason.
func TestTransportRequestReply(t *testing.T) {
	f := newFakeBroker(t)
	client := newBus(t, courier.WithTransport(f), courier.WithName("client"))
	server := newBus(t, courier.WithTransport(f), courier.WithName("server"))
	crq := mustRequestQueue(t, client, "quotes")
	srq := mustRequestQueue(t, server, "quotes", noRetry())
	require.NoError(t, srq.Serve(func(_ context.Context, m *courier.Message[Quote]) (Price, error) {
		if m.Body.Items == 0 {
			return Price{}, errors.New("no items")
		}
		return Price{Cents: 100 * m.Body.Items}, nil
	}))
	p, err := crq.Request(ctxT(t), Quote{Items: 3})
	require.NoError(t, err)
	assert.Equal(t, Price{Cents: 300}, p)
	_, err = crq.Request(ctxT(t), Quote{Items: 0})
	var re *courier.RequestError
	require.ErrorAs(t, err, &re)
	assert.Equal(t, courier.ReasonMaxAttempts, re.Reason)
	assert.ErrorContains(t, err, "no items")
}

// A request being served when its server begins a graceful Shutdown is
// answered: Shutdown finishes what was accepted.
func TestTransportReplyDuringGracefulShutdown(t *testing.T) {
	f := newFakeBroker(t)
	client := newBus(t, courier.WithTransport(f), courier.WithName("client"))
	server := newBus(t, courier.WithTransport(f), courier.WithName("server"))
	crq := mustRequestQueue(t, client, "quotes")
	srq := mustRequestQueue(t, server, "quotes")
	mustQueue[Order](t, server, "probe")
	started, release := make(chan struct{}, 1), make(chan struct{})
	require.NoError(t, srq.Serve(func(_ context.Context, m *courier.Message[Quote]) (Price, error) {
		select {
		case started <- struct{}{}:
		default:
		}
		<-release
		return Price{Cents: 100 * m.Body.Items}, nil
	}))
	short, cancel := context.WithTimeout(ctxT(t), 2*time.Second)
	defer cancel()
	replied := make(chan error, 1)
	go func() { _, err := crq.Request(short, Quote{Items: 7}); replied <- err }()
	recv(t, started)
	stopped := make(chan error, 1)
	go func() { stopped <- server.Shutdown(ctxT(t)) }()
	require.Eventually(t, func() bool { // the server drains
		_, err := courier.NewQueue[Order](server, "probe")
		return errors.Is(err, courier.ErrClosed)
	}, time.Second, time.Millisecond)
	close(release)
	assert.NoError(t, recv(t, replied))
	assert.NoError(t, recv(t, stopped))
}

// A Shutdown whose context ends before the broker is drained says so, even
// when this bus holds none of what is left.
func TestTransportShutdownCutShortReportsIt(t *testing.T) {
	f := newFakeBroker(t)
	b := newBus(t, courier.WithTransport(f))
	q := mustQueue[Order](t, b, "orders")
	require.NoError(t, q.Consume(func(context.Context, *courier.Message[Order]) error { return nil }))
	require.NoError(t, q.Send(ctxT(t), Order{}, courier.WithDelay(time.Hour)))
	short, cancel := context.WithTimeout(ctxT(t), 20*time.Millisecond)
	defer cancel()
	err := b.Shutdown(short)
	assert.ErrorIs(t, err, courier.ErrShutdownIncomplete)
	assert.ErrorIs(t, err, context.DeadlineExceeded)
	assert.Equal(t, 1, q.Stats().Scheduled, "left in the broker")
}
