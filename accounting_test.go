package courier_test

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
)

// TestAccountingUnderRandomFaults sends thousands of messages, to a queue and
// through a topic, whose handlers fail at random (transient errors, permanent
// errors, panics), with random keys, delays and TTLs. After Shutdown every
// message copy is either handled successfully exactly once or dead-lettered
// exactly once with a reason: none lost, none both.
func TestAccountingUnderRandomFaults(t *testing.T) {
	for _, tc := range []struct {
		name     string
		deadline time.Duration // 0: let Shutdown drain everything
	}{
		{"drained", 0},
		{"cut short", 3 * time.Second},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) { runAccounting(t, tc.deadline) })
		})
	}
}

func runAccounting(t *testing.T, deadline time.Duration) {
	var mu sync.Mutex
	handled := map[string]int{} // "dest/seq" → successful handlings
	dead := map[string]int{}
	reasons := map[courier.Reason]int{}
	b := newBus(t, courier.WithDeadLetterHook(func(d courier.DeadLetterInfo) {
		mu.Lock()
		defer mu.Unlock()
		require.NotEmpty(t, d.Reason)
		reasons[d.Reason]++
		var seq int
		switch p := d.Payload().(type) {
		case Order:
			seq = p.Seq
		case Payment:
			seq = p.Amount
		}
		dead[fmt.Sprintf("%s%s/%d", d.Destination, d.Subscription, seq)]++
	}))
	retry := courier.WithRetry(courier.RetryPolicy{MaxAttempts: 4, InitialInterval: 100 * time.Millisecond, Jitter: 0.5})
	q := mustQueue[Order](t, b, "orders", courier.Workers(8), courier.Capacity(100_000), retry)
	topic, err := courier.NewTopic[Payment](b, "payments", retry, courier.Capacity(100_000))
	require.NoError(t, err)

	outcome := func(ctx context.Context, key string) error {
		select { // some work, so the deadline can catch handlers in flight
		case <-time.After(time.Duration(rand.IntN(20)) * time.Millisecond):
		case <-ctx.Done():
			return ctx.Err()
		}
		switch r := rand.IntN(100); {
		case r < 25:
			return errors.New("transient")
		case r < 28:
			return courier.Permanent(errors.New("poison"))
		case r < 31:
			panic("handler bug")
		}
		mu.Lock()
		handled[key]++
		mu.Unlock()
		return nil
	}
	require.NoError(t, q.Consume(func(ctx context.Context, m *courier.Message[Order]) error {
		return outcome(ctx, fmt.Sprintf("orders/%d", m.Body.Seq))
	}))
	for _, sub := range []string{"a", "b"} {
		require.NoError(t, topic.Subscribe(sub, func(ctx context.Context, m *courier.Message[Payment]) error {
			return outcome(ctx, fmt.Sprintf("payments%s/%d", sub, m.Body.Amount))
		}, courier.Workers(3)))
	}

	const n = 3000
	for i := range n {
		var opts []courier.SendOption
		if k := rand.IntN(40); k < 30 {
			opts = append(opts, courier.WithKey(fmt.Sprint("k", k)))
		}
		if rand.IntN(10) == 0 {
			opts = append(opts, courier.WithDelay(time.Duration(rand.IntN(2000))*time.Millisecond))
		}
		if rand.IntN(20) == 0 {
			opts = append(opts, courier.WithTTL(time.Duration(1+rand.IntN(3000))*time.Millisecond))
		}
		if i%3 == 0 {
			require.NoError(t, topic.Publish(t.Context(), Payment{Amount: i}, opts...))
		} else {
			require.NoError(t, q.Send(t.Context(), Order{Seq: i}, opts...))
		}
	}

	ctx := t.Context()
	if deadline > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, deadline)
		defer cancel()
	}
	err = b.Shutdown(ctx)
	var se *courier.ShutdownError
	if deadline == 0 {
		require.NoError(t, err)
	} else {
		require.ErrorAs(t, err, &se)
		assert.Equal(t, se.DeadLettered, reasons[courier.ReasonShutdown])
	}

	mu.Lock()
	defer mu.Unlock()
	copies := 0
	for i := range n {
		keys := []string{fmt.Sprintf("orders/%d", i)}
		if i%3 == 0 {
			keys = []string{fmt.Sprintf("paymentsa/%d", i), fmt.Sprintf("paymentsb/%d", i)}
		}
		for _, k := range keys {
			copies++
			require.Equal(t, 1, handled[k]+dead[k], "%s: handled %d times, dead-lettered %d times", k, handled[k], dead[k])
		}
	}
	total := 0
	for _, c := range handled {
		total += c
	}
	for _, c := range dead {
		total += c
	}
	assert.Equal(t, copies, total, "no outcome for a message that was never sent")
	assert.NotZero(t, reasons[courier.ReasonMaxAttempts]+reasons[courier.ReasonPermanent])
	s := b.Stats().Total
	assert.EqualValues(t, copies, s.Handled+s.DeadLettered)
	assert.Zero(t, s.Depth+s.InFlight+s.Scheduled)
	t.Logf("handled %d, dead letters by reason %v", s.Handled, reasons)
}
