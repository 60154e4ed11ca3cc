package couriertest_test

import (
	"context"
	"errors"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/courierbus/courier"
	"github.com/courierbus/courier/couriertest"
)

var errDeclined = errors.New("card declined")

// orderFlow declares orders → payments with a payment handler that declines
// zero amounts, retrying five times with backoff capped at a minute.
func orderFlow(t testing.TB, h *couriertest.Harness) (*courier.Queue[Order], *courier.Topic[Order]) {
	t.Helper()
	payments, err := courier.NewTopic[Order](h.Bus, "payments")
	require.NoError(t, err)
	require.NoError(t, payments.Subscribe("ledger", func(context.Context, *courier.Message[Order]) error { return nil }))
	orders, err := courier.NewQueue[Order](h.Bus, "orders", courier.WithRetry(courier.RetryPolicy{
		MaxAttempts: 5, InitialInterval: 10 * time.Second, MaxInterval: time.Minute, Jitter: -1,
	}))
	require.NoError(t, err)
	require.NoError(t, orders.Consume(func(ctx context.Context, m *courier.Message[Order]) error {
		if m.Body.Amount == 0 {
			return errDeclined
		}
		return payments.Publish(ctx, m.Body)
	}))
	return orders, payments
}

func TestSettleRunsBackoffInVirtualTime(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := couriertest.New(t)
		orders, _ := orderFlow(t, h)
		start := time.Now()
		require.NoError(t, orders.Send(t.Context(), Order{ID: "O-1", Amount: 0}))
		require.NoError(t, orders.Send(t.Context(), Order{ID: "O-2", Amount: 5}))
		h.Settle()
		assert.Equal(t, (10+20+40+60)*time.Second, time.Since(start), "four backoffs, the last capped at a minute")

		d := couriertest.RequireDeadLettered(t, h, func(o Order) bool { return o.ID == "O-1" })
		assert.Equal(t, courier.ReasonMaxAttempts, d.Reason)
		assert.Equal(t, 5, d.Attempts)
		assert.ErrorIs(t, d.Err, errDeclined)

		failures := couriertest.Failed[Order](h)
		require.Len(t, failures, 5)
		assert.False(t, failures[0].Final)
		assert.True(t, failures[4].Final)
		assert.Equal(t, 5, failures[4].Message.Attempt)

		paid := couriertest.RequireConsumed(t, h, func(o Order) bool { return o.ID == "O-2" })
		assert.Equal(t, "orders", paid.Destination)
		both := couriertest.RequireConsumedN(t, h, 2, func(o Order) bool { return o.ID == "O-2" })
		assert.Equal(t, "ledger", both[1].Subscription)
		published := couriertest.Published[Order](h)
		require.Len(t, published, 1)
		assert.Equal(t, "payments", published[0].Destination)
		assert.Equal(t, paid.ID, published[0].CausationID)
		assert.Len(t, couriertest.Sent[Order](h), 3, "two sends and a publish")

		retried := 0
		for _, e := range h.Events() {
			if e.Kind == couriertest.KindRetried {
				retried++
			}
		}
		assert.Equal(t, 4, retried)
	})
}

func TestFlowReadsAsAStory(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := couriertest.New(t, couriertest.AllowDeadLetters())
		orders, _ := orderFlow(t, h)
		ctx := courier.WithCorrelationID(t.Context(), "checkout-1")
		require.NoError(t, orders.Send(ctx, Order{ID: "O-1", Amount: 0}, courier.WithKey("alice")))
		require.NoError(t, orders.Send(ctx, Order{ID: "O-2", Amount: 7}))
		h.Settle()
		flow := h.Flow()
		t.Log("\n" + flow)
		for _, want := range []string{
			"recorded flow: 3 message(s)",
			"sent           orders",
			"corr=checkout-1 key=alice  {ID:O-1 Amount:0}",
			"failed         orders                      #1 ",
			"error: card declined",
			"next attempt in 10s",
			"error: card declined (final)",
			"dead-lettered  orders                      #5 ",
			"reason=max_attempts error: card declined",
			"published      payments",
			"handled        payments/ledger             #1 ",
			"+2m10s ",
		} {
			assert.Contains(t, flow, want)
		}
	})
}

func TestUnexpectedDeadLetterFailsTheTest(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ft := newFakeT(t)
		h := couriertest.New(ft)
		orders, _ := orderFlow(t, h)
		require.NoError(t, orders.Send(t.Context(), Order{ID: "O-9", Amount: 0}))
		h.Settle()
		ft.finish()
		assert.True(t, ft.didFail())
		out := ft.output()
		assert.Contains(t, out, "1 unexpected dead letter(s)")
		assert.Contains(t, out, "reason=max_attempts error: card declined")
		assert.Contains(t, out, "{ID:O-9 Amount:0}")
		assert.Contains(t, out, "recorded flow:")
	})
}

func TestExpectedDeadLettersPass(t *testing.T) {
	cases := map[string]func(*couriertest.Harness, testing.TB){
		"asserted": func(h *couriertest.Harness, t testing.TB) {
			couriertest.RequireDeadLettered[Order](t, h, nil)
		},
		"declared": func(h *couriertest.Harness, _ testing.TB) {
			h.ExpectDeadLetters(func(d courier.DeadLetterInfo) bool { return d.Reason == courier.ReasonMaxAttempts })
		},
	}
	for name, expect := range cases {
		t.Run(name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				ft := newFakeT(t)
				h := couriertest.New(ft)
				orders, _ := orderFlow(t, h)
				require.NoError(t, orders.Send(t.Context(), Order{ID: "O-9", Amount: 0}))
				ft.run(func() { expect(h, ft) })
				ft.finish()
				assert.False(t, ft.didFail(), ft.output())
			})
		})
	}
	t.Run("allowed", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			ft := newFakeT(t)
			h := couriertest.New(ft, couriertest.AllowDeadLetters())
			orders, _ := orderFlow(t, h)
			require.NoError(t, orders.Send(t.Context(), Order{ID: "O-9", Amount: 0}))
			h.Settle()
			ft.finish()
			assert.False(t, ft.didFail(), ft.output())
		})
	})
}

func TestHandlerThatNeverReturnsFailsTheTest(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ft := newFakeT(t)
		h := couriertest.New(ft, couriertest.SettleTimeout(time.Second), couriertest.AllowDeadLetters())
		q, err := courier.NewQueue[Order](h.Bus, "stuck")
		require.NoError(t, err)
		release := make(chan struct{})
		started := make(chan struct{})
		require.NoError(t, q.Consume(func(context.Context, *courier.Message[Order]) error {
			close(started)
			<-release // ignores its context
			return nil
		}))
		require.NoError(t, q.Send(t.Context(), Order{ID: "O-1"}))
		<-started
		ft.finish()
		close(release)
		assert.True(t, ft.didFail())
		assert.Contains(t, ft.output(), "1 handler(s) never returned")
	})
}

func TestGoroutineLeftBehindFailsTheTest(t *testing.T) {
	ft := newFakeT(t)
	h := couriertest.New(ft)
	q, err := courier.NewQueue[Order](h.Bus, "leaky")
	require.NoError(t, err)
	release := make(chan struct{})
	require.NoError(t, q.Consume(func(context.Context, *courier.Message[Order]) error {
		go func() { <-release }() // outlives the test
		return nil
	}))
	require.NoError(t, q.Send(t.Context(), Order{ID: "O-1"}))
	h.Settle()
	ft.finish()
	close(release)
	assert.True(t, ft.didFail())
	assert.Contains(t, ft.output(), "goroutines left behind")
}

func TestSettleTimeoutSaysWhatIsPending(t *testing.T) {
	ft := newFakeT(t)
	h := couriertest.New(ft, couriertest.SettleTimeout(20*time.Millisecond), couriertest.NoLeakCheck(),
		couriertest.AllowDeadLetters())
	q, err := courier.NewQueue[Order](h.Bus, "slow")
	require.NoError(t, err)
	release := make(chan struct{})
	require.NoError(t, q.Consume(func(ctx context.Context, _ *courier.Message[Order]) error {
		select {
		case <-release:
		case <-ctx.Done():
		}
		return nil
	}))
	require.NoError(t, q.Send(t.Context(), Order{ID: "O-1"}))
	ft.run(h.Settle)
	close(release)
	ft.finish()
	assert.True(t, ft.didFail())
	out := ft.output()
	assert.Contains(t, out, "context deadline exceeded")
	assert.Contains(t, out, `queue "slow": 0 ready, 1 in flight, 0 scheduled`)
	assert.Contains(t, out, "recorded flow:")
}

func TestAssertionsFailWithTheFlow(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ft := newFakeT(t)
		h := couriertest.New(ft)
		orders, _ := orderFlow(t, h)
		require.NoError(t, orders.Send(t.Context(), Order{ID: "O-1", Amount: 3}))
		checks := map[string]func(){
			"no consumed couriertest_test.Order matches": func() {
				couriertest.RequireConsumed(ft, h, func(o Order) bool { return o.ID == "nope" })
			},
			"no sent couriertest_test.Order matches": func() {
				couriertest.RequireSent(ft, h, func(o Order) bool { return o.ID == "nope" })
			},
			"2 consumed couriertest_test.Order match, want none": func() {
				couriertest.RequireNotConsumed[Order](ft, h, nil)
			},
			"2 consumed couriertest_test.Order match, want 3": func() {
				couriertest.RequireConsumedN[Order](ft, h, 3, nil)
			},
			"no dead-lettered couriertest_test.Order matches": func() {
				couriertest.RequireDeadLettered[Order](ft, h, nil)
			},
		}
		for want, check := range checks {
			ft.run(check)
			assert.Contains(t, ft.output(), want)
			assert.Contains(t, ft.output(), "recorded flow: 2 message(s)")
		}
		ft.run(func() { couriertest.RequireNoDeadLetters(ft, h) })
		assert.NotContains(t, ft.output(), "want none:")
		ft.finish()
	})
}

func TestRequireNoDeadLettersFails(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ft := newFakeT(t)
		h := couriertest.New(ft, couriertest.AllowDeadLetters())
		orders, _ := orderFlow(t, h)
		require.NoError(t, orders.Send(t.Context(), Order{ID: "O-1", Amount: 0}))
		ft.run(func() { couriertest.RequireNoDeadLetters(ft, h) })
		assert.Contains(t, ft.output(), "1 dead letter(s), want none:")
		ft.finish()
	})
}

func TestRefusedSendIsRecordedButNotSent(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := couriertest.New(t)
		q, err := courier.NewQueue[Order](h.Bus, "tiny", courier.Capacity(1))
		require.NoError(t, err)
		require.NoError(t, q.TrySend(t.Context(), Order{ID: "1"}))
		require.ErrorIs(t, q.TrySend(t.Context(), Order{ID: "2"}), courier.ErrFull)
		assert.Len(t, couriertest.Sent[Order](h), 1)
		events := h.Events()
		require.Len(t, events, 2)
		assert.ErrorIs(t, events[1].Err, courier.ErrFull)
		assert.Contains(t, h.Flow(), "REFUSED: courier: queue full")
		require.NoError(t, q.Consume(func(context.Context, *courier.Message[Order]) error { return nil }))
	})
}
