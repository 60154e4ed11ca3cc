package courier_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/courierbus/courier"
)

// Quote asks for the price of an order; Price answers.
type Quote struct{ Items int }
type Price struct{ Cents int }

func mustRequestQueue(t testing.TB, b *courier.Bus, name string, opts ...courier.Option) *courier.RequestQueue[Quote, Price] {
	t.Helper()
	rq, err := courier.NewRequestQueue[Quote, Price](b, name, opts...)
	require.NoError(t, err)
	return rq
}

func price(_ context.Context, m *courier.Message[Quote]) (Price, error) {
	return Price{Cents: 100 * m.Body.Items}, nil
}

func TestRequestGetsTheResponse(t *testing.T) {
	b := newBus(t)
	rq := mustRequestQueue(t, b, "quotes")
	require.NoError(t, rq.Serve(price))
	p, err := rq.Request(ctxT(t), Quote{Items: 3})
	require.NoError(t, err)
	require.Equal(t, Price{Cents: 300}, p)
	st := rq.Stats()
	require.Zero(t, st.Waiting)
	require.EqualValues(t, 1, st.RepliesDelivered)
	require.Zero(t, st.RepliesDropped)
	require.NoError(t, b.WaitIdle(ctxT(t)))
	require.EqualValues(t, 1, rq.Stats().Handled)
	require.Equal(t, "quotes", rq.Name())
}

func TestRequestGetsTheFinalHandlerError(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := newBus(t)
		rq := mustRequestQueue(t, b, "quotes", courier.WithRetry(courier.RetryPolicy{MaxAttempts: 3}))
		errNoStock := errors.New("no stock")
		var attempts atomic.Int32
		require.NoError(t, rq.Serve(func(context.Context, *courier.Message[Quote]) (Price, error) {
			attempts.Add(1)
			return Price{}, errNoStock
		}))
		_, err := rq.Request(context.Background(), Quote{Items: 1})
		require.ErrorIs(t, err, errNoStock)
		var re *courier.RequestError
		require.ErrorAs(t, err, &re)
		require.Equal(t, courier.ReasonMaxAttempts, re.Reason)
		require.Equal(t, 3, re.Attempts)
		require.EqualValues(t, 3, attempts.Load(), "the reply waited for the last retry")
		require.Equal(t, fmt.Sprintf("courier: request %s failed (max_attempts after 3 attempt(s)): no stock", re.RequestID), err.Error())
		dls := rq.Queue().DeadLetters().List()
		require.Len(t, dls, 1)
		require.Equal(t, re.RequestID, dls[0].ID)
	})
}

func TestRequestGetsAPermanentErrorAtOnce(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := newBus(t)
		rq := mustRequestQueue(t, b, "quotes", courier.WithRetry(courier.RetryPolicy{MaxAttempts: 5, InitialInterval: time.Hour}))
		errBad := errors.New("bad quote")
		require.NoError(t, rq.Serve(func(context.Context, *courier.Message[Quote]) (Price, error) {
			return Price{}, courier.Permanent(errBad)
		}))
		start := time.Now()
		// No deadline: were the reply a timeout, the bubble would deadlock.
		_, err := rq.Request(context.Background(), Quote{Items: 1})
		require.ErrorIs(t, err, errBad)
		require.True(t, courier.IsPermanent(err))
		var re *courier.RequestError
		require.ErrorAs(t, err, &re)
		require.Equal(t, courier.ReasonPermanent, re.Reason)
		require.Equal(t, 1, re.Attempts)
		require.Zero(t, time.Since(start), "no backoff, no timeout")
	})
}

func TestRequestTimesOutAndTheLateReplyIsDropped(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := newBus(t)
		rq := mustRequestQueue(t, b, "quotes")
		gate := make(chan struct{})
		require.NoError(t, rq.Serve(func(ctx context.Context, m *courier.Message[Quote]) (Price, error) {
			<-gate
			return price(ctx, m)
		}))
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		_, err := rq.Request(ctx, Quote{Items: 1})
		require.ErrorIs(t, err, context.DeadlineExceeded)
		require.Zero(t, rq.Stats().Waiting, "the caller left nothing behind")

		close(gate)
		require.NoError(t, b.WaitIdle(context.Background()))
		st := rq.Stats()
		require.EqualValues(t, 1, st.RepliesDropped)
		require.Zero(t, st.RepliesDelivered)
		require.EqualValues(t, 1, st.Handled)
	})
}

func TestRequestCallerCancels(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := newBus(t)
		rq := mustRequestQueue(t, b, "quotes")
		gate := make(chan struct{})
		require.NoError(t, rq.Serve(func(ctx context.Context, m *courier.Message[Quote]) (Price, error) {
			<-gate
			return price(ctx, m)
		}))
		ctx, cancel := context.WithCancel(context.Background())
		errc := make(chan error, 1)
		go func() {
			_, err := rq.Request(ctx, Quote{Items: 1})
			errc <- err
		}()
		synctest.Wait()
		require.Equal(t, 1, rq.Stats().Waiting)
		require.Equal(t, 1, rq.Stats().InFlight)
		cancel()
		require.ErrorIs(t, <-errc, context.Canceled)
		require.Zero(t, rq.Stats().Waiting)

		close(gate)
		require.NoError(t, b.WaitIdle(context.Background()))
		require.EqualValues(t, 1, rq.Stats().RepliesDropped)
	})
}

func TestRequestManyConcurrent(t *testing.T) {
	b := newBus(t)
	rq := mustRequestQueue(t, b, "quotes", courier.Workers(8))
	require.NoError(t, rq.Serve(price))
	const n = 500
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			p, err := rq.Request(ctxT(t), Quote{Items: i})
			assert.NoError(t, err)
			assert.Equal(t, Price{Cents: 100 * i}, p)
		})
	}
	wg.Wait()
	st := rq.Stats()
	require.EqualValues(t, n, st.RepliesDelivered)
	require.Zero(t, st.Waiting)
	require.Zero(t, st.RepliesDropped)
}

func TestRequestDeliveredTwiceGetsOneReply(t *testing.T) {
	twice := courier.Middleware{Send: func(next courier.SendFunc) courier.SendFunc {
		return func(ctx context.Context, env courier.Envelope) error {
			dup := courier.CloneEnvelope(env)
			if err := next(ctx, env); err != nil {
				return err
			}
			return next(ctx, dup)
		}
	}}
	b := newBus(t)
	rq := mustRequestQueue(t, b, "quotes", courier.WithMiddleware(twice))
	var served atomic.Int32
	require.NoError(t, rq.Serve(func(ctx context.Context, m *courier.Message[Quote]) (Price, error) {
		served.Add(1)
		return price(ctx, m)
	}))
	p, err := rq.Request(ctxT(t), Quote{Items: 2})
	require.NoError(t, err)
	require.Equal(t, Price{Cents: 200}, p)
	require.NoError(t, b.WaitIdle(ctxT(t)))
	require.EqualValues(t, 2, served.Load())
	st := rq.Stats()
	require.EqualValues(t, 1, st.RepliesDelivered)
	require.EqualValues(t, 1, st.RepliesDropped)
}

func TestRequestRetriedAfterOuterFailureGetsOneReply(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		// Middleware outside the handler fails the first attempt after the
		// handler answered: the retry answers again, and that reply is dropped.
		failOnce := courier.Middleware{Handle: func(next courier.HandlerFunc) courier.HandlerFunc {
			return func(ctx context.Context, env courier.Envelope) error {
				if err := next(ctx, env); err != nil || env.Meta().Attempt > 1 {
					return err
				}
				return errors.New("outer failure")
			}
		}}
		b := newBus(t)
		rq := mustRequestQueue(t, b, "quotes", courier.WithMiddleware(failOnce))
		require.NoError(t, rq.Serve(price))
		p, err := rq.Request(context.Background(), Quote{Items: 4})
		require.NoError(t, err)
		require.Equal(t, Price{Cents: 400}, p)
		require.NoError(t, b.WaitIdle(context.Background()))
		st := rq.Stats()
		require.EqualValues(t, 1, st.Retried)
		require.EqualValues(t, 1, st.RepliesDelivered)
		require.EqualValues(t, 1, st.RepliesDropped)
	})
}

func TestRequestFailsWhenTheBusStops(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := newBus(t)
		rq := mustRequestQueue(t, b, "quotes") // nobody serves
		errc := make(chan error, 1)
		go func() {
			_, err := rq.Request(context.Background(), Quote{Items: 1})
			errc <- err
		}()
		synctest.Wait()
		require.Equal(t, 1, rq.Stats().Waiting)
		require.ErrorIs(t, b.Close(), courier.ErrShutdownIncomplete)
		err := <-errc
		var re *courier.RequestError
		require.ErrorAs(t, err, &re)
		require.Equal(t, courier.ReasonShutdown, re.Reason)
		require.ErrorIs(t, err, courier.ErrClosed)

		_, err = rq.Request(context.Background(), Quote{Items: 1})
		require.ErrorIs(t, err, courier.ErrClosed, "a closed bus takes no request")
		require.Zero(t, rq.Stats().Waiting)
	})
}

func TestRequestExpires(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := newBus(t)
		rq := mustRequestQueue(t, b, "quotes")
		gate := make(chan struct{})
		require.NoError(t, rq.Serve(func(ctx context.Context, m *courier.Message[Quote]) (Price, error) {
			if m.Body.Items == 0 {
				<-gate // holds the only worker
			}
			return price(ctx, m)
		}))
		go func() { _, _ = rq.Request(context.Background(), Quote{}) }()
		synctest.Wait()
		errc := make(chan error, 1)
		go func() {
			_, err := rq.Request(context.Background(), Quote{Items: 1}, courier.WithTTL(time.Minute))
			errc <- err
		}()
		synctest.Wait()
		time.Sleep(time.Minute)
		close(gate)
		err := <-errc
		require.ErrorIs(t, err, courier.ErrExpired)
		var re *courier.RequestError
		require.ErrorAs(t, err, &re)
		require.Equal(t, courier.ReasonExpired, re.Reason)
		require.NoError(t, b.WaitIdle(context.Background()))
	})
}

func TestRequestQueueHandlesShareCallers(t *testing.T) {
	b := newBus(t)
	server := mustRequestQueue(t, b, "quotes", courier.Workers(2))
	require.NoError(t, server.Serve(price))
	client := mustRequestQueue(t, b, "quotes")
	p, err := client.Request(ctxT(t), Quote{Items: 5})
	require.NoError(t, err)
	require.Equal(t, Price{Cents: 500}, p)
	require.EqualValues(t, 1, server.Stats().RepliesDelivered)
}

func TestRequestQueueBadInput(t *testing.T) {
	b := newBus(t)
	_, err := courier.NewRequestQueue[Quote, Price](nil, "q")
	require.ErrorIs(t, err, courier.ErrNilBus)
	_, err = courier.NewRequestQueue[Quote, Price](b, "")
	require.ErrorIs(t, err, courier.ErrEmptyName)
	_, err = courier.NewRequestQueue[Quote, Price](b, "q", courier.Workers(0))
	require.ErrorIs(t, err, courier.ErrInvalidOption)
	_, err = courier.NewRequestQueue[Quote, Price](b, "q", courier.IdempotencyKey(func(o Order) string { return o.ID }))
	require.ErrorIs(t, err, courier.ErrInvalidOption, "key function of another type")

	rq := mustRequestQueue(t, b, "quotes")
	require.ErrorIs(t, rq.Serve(nil), courier.ErrNilHandler)
	require.ErrorIs(t, rq.Serve(price, courier.Capacity(3)), courier.ErrInvalidOption, "not a consumer option")
	_, err = courier.NewRequestQueue[Quote, Price](b, "quotes", courier.Workers(2))
	require.ErrorIs(t, err, courier.ErrInvalidOption, "options for an existing request queue")
	_, err = courier.NewRequestQueue[Quote, string](b, "quotes")
	require.ErrorIs(t, err, courier.ErrTypeMismatch, "another response type")
	_, err = courier.NewQueue[Quote](b, "quotes")
	require.ErrorIs(t, err, courier.ErrTypeMismatch, "a request queue is not a plain queue")
	mustQueue[Quote](t, b, "plain")
	_, err = courier.NewRequestQueue[Quote, Price](b, "plain")
	require.ErrorIs(t, err, courier.ErrTypeMismatch)

	//lint:ignore SA1012 a nil context is the bad input under test
	_, err = rq.Request(nil, Quote{})
	require.ErrorIs(t, err, courier.ErrInvalidOption)
	_, err = rq.Request(ctxT(t), Quote{}, courier.WithTTL(-time.Second))
	require.ErrorIs(t, err, courier.ErrInvalidOption)
	require.Zero(t, rq.Stats().Waiting)
}

func TestRequestDroppedByOverflowFailsAtOnce(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := newBus(t)
		rq := mustRequestQueue(t, b, "quotes", courier.Capacity(1), courier.WithOverflow(courier.DropNewest))
		go func() { _, _ = rq.Request(context.Background(), Quote{Items: 1}) }() // fills the queue; nobody serves
		synctest.Wait()
		_, err := rq.Request(context.Background(), Quote{Items: 2})
		require.ErrorIs(t, err, courier.ErrOverflow)
		require.Equal(t, 1, rq.Stats().Waiting, "only the queued request waits")
		dls := rq.Queue().DeadLetters().List()
		require.Len(t, dls, 1)
		require.Equal(t, courier.ReasonOverflow, dls[0].Reason)
	})
}
