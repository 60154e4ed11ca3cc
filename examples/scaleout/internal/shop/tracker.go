package shop

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"

	"github.com/courierbus/courier"
	"github.com/courierbus/courier/examples/scaleout/internal/console"
	"github.com/courierbus/courier/examples/scaleout/orders"
)

// tracker records the confirmations of the orders the shop waits for. Its
// handler never blocks, so the bus can always settle a confirmation,
// including those of earlier runs left in the durable subscription.
type tracker struct {
	out  *console.Console
	done chan struct{} // closed once nothing is pending

	mu       sync.Mutex
	sent     map[string]string   // order ID → correlation ID, for the orders to be confirmed
	pending  map[string]struct{} // the orders not yet confirmed
	problems []error
}

func newTracker(out *console.Console, placed []placedOrder) *tracker {
	t := &tracker{out: out, done: make(chan struct{}), sent: make(map[string]string), pending: make(map[string]struct{})}
	for i, p := range placed {
		if i != poisonIndex(len(placed)) {
			t.sent[p.ID] = p.correlationID
			t.pending[p.ID] = struct{}{}
		}
	}
	if len(t.pending) == 0 {
		close(t.done)
	}
	return t
}

// confirm is the handler of the shop's subscription of order-placed.
func (t *tracker) confirm(_ context.Context, m *courier.Message[orders.OrderPlaced]) error {
	id := m.Body.OrderID
	t.mu.Lock()
	defer t.mu.Unlock()
	want, ok := t.sent[id]
	if !ok {
		t.out.Printf("  (ignoring the confirmation of %s, not sent by this run)", id)
		return nil
	}
	if _, ok := t.pending[id]; !ok {
		t.out.Printf("  (ignoring a second confirmation of %s: delivery is at least once)", id)
		return nil
	}
	delete(t.pending, id)
	t.out.Printf("  confirmed %s  correlation=%s", id, m.CorrelationID)
	if m.CorrelationID != want {
		t.problems = append(t.problems, fmt.Errorf("confirmation of %s has correlation ID %q, want %q", id, m.CorrelationID, want))
	}
	if len(t.pending) == 0 {
		close(t.done)
	}
	return nil
}

// wait waits until every order is confirmed or ctx ends.
func (t *tracker) wait(ctx context.Context) error {
	select {
	case <-t.done:
		return nil
	case <-ctx.Done():
		t.mu.Lock()
		defer t.mu.Unlock()
		missing := slices.Sorted(maps.Keys(t.pending))
		return fmt.Errorf("%d order(s) not confirmed (%s): %w", len(missing), strings.Join(missing, ", "), ctx.Err())
	}
}

// problem returns what went wrong with the confirmations received.
func (t *tracker) problem() error {
	t.mu.Lock()
	defer t.mu.Unlock()
	return errors.Join(t.problems...)
}
