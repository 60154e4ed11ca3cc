package worker

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/courierbus/courier"
	"github.com/courierbus/courier/examples/scaleout/internal/console"
	"github.com/courierbus/courier/examples/scaleout/orders"
)

// retryPolicy is the orders queue's: three attempts, 50 ms apart at first.
var retryPolicy = courier.RetryPolicy{MaxAttempts: 3, InitialInterval: 50 * time.Millisecond}

// bulkQty is the quantity from which the inventory service, in this story,
// times out on an order's first attempt.
const bulkQty = 3

// errInventoryTimeout is a transient failure: the bus retries it.
var errInventoryTimeout = errors.New("inventory service timed out")

// subscribers are the worker's subscriptions of order-placed, each with what
// it does with an order.
var subscribers = []struct{ name, does string }{
	{"billing", "invoiced"},
	{"shipping", "packed"},
}

// service handles the orders queue and the worker's subscriptions.
type service struct {
	out    *console.Console
	placed *courier.Topic[orders.OrderPlaced]
}

// handleOrder accepts an order and publishes OrderPlaced. A malformed order
// fails permanently, so it is dead-lettered at once; a bulk order fails its
// first attempt, so it is retried. It publishes with its own ctx, so the
// event keeps the order's correlation ID.
func (s *service) handleOrder(ctx context.Context, m *courier.Message[orders.Order]) error {
	o := m.Body
	if o.Qty <= 0 {
		s.out.Printf("[orders]   %s attempt %d: rejected, quantity %d", o.ID, m.Attempt, o.Qty)
		return courier.Permanent(fmt.Errorf("order %s: quantity %d is not positive", o.ID, o.Qty))
	}
	if o.Qty >= bulkQty && m.Attempt == 1 {
		s.out.Printf("[orders]   %s attempt %d: %v, will retry", o.ID, m.Attempt, errInventoryTimeout)
		return errInventoryTimeout
	}
	s.out.Printf("[orders]   %s attempt %d: accepted %d × %s for %s  correlation=%s",
		o.ID, m.Attempt, o.Qty, o.SKU, o.Customer, m.CorrelationID)
	return s.placed.Publish(ctx, orders.OrderPlaced{OrderID: o.ID, Customer: o.Customer, SKU: o.SKU, Qty: o.Qty})
}

// subscriber returns the handler of one of the worker's subscriptions.
func (s *service) subscriber(name, does string) courier.Handler[orders.OrderPlaced] {
	return func(_ context.Context, m *courier.Message[orders.OrderPlaced]) error {
		p := m.Body
		s.out.Printf("[%s]%*s %s %s %d × %s  correlation=%s", name, 9-len(name), "", p.OrderID, does, p.Qty, p.SKU, m.CorrelationID)
		return nil
	}
}
