// Package orders holds what the worker and the shop of the scale-out example
// share: the message types and the names of the queue and topic. Over a
// transport, every process must declare a name with the same message type,
// so both programs declare them through [Declare].
package orders

import (
	"fmt"

	"github.com/courierbus/courier"
)

// Names of the queue, the topic and the shop's subscription.
const (
	Queue             = "orders"
	Topic             = "order-placed"
	ShopConfirmations = "shop-confirmations"
)

// Order asks for Qty items of SKU to be sold to Customer. An order with a
// Qty of zero or less is malformed: the worker dead-letters it.
type Order struct {
	ID       string
	Customer string
	SKU      string
	Qty      int
}

// OrderPlaced is published once the worker has accepted an order.
type OrderPlaced struct {
	OrderID  string
	Customer string
	SKU      string
	Qty      int
}

// Declare declares the orders queue and the order-placed topic on bus.
// queueOpts are this process's options of the queue, such as the worker's
// retry policy. Options that shape the broker's stream, such as Capacity,
// must be the same in every process: each declaration updates the stream.
func Declare(bus *courier.Bus, queueOpts ...courier.Option) (*courier.Queue[Order], *courier.Topic[OrderPlaced], error) {
	q, err := courier.NewQueue[Order](bus, Queue, queueOpts...)
	if err != nil {
		return nil, nil, fmt.Errorf("declaring queue %s: %w", Queue, err)
	}
	tp, err := courier.NewTopic[OrderPlaced](bus, Topic)
	if err != nil {
		return nil, nil, fmt.Errorf("declaring topic %s: %w", Topic, err)
	}
	return q, tp, nil
}
