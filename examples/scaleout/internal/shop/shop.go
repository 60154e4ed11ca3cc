// Package shop is the storefront of the scale-out example: it connects to
// the worker's NATS server, sends orders, waits for their confirmations on
// the order-placed topic and shows the dead letters of the orders queue.
package shop

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"time"

	"github.com/courierbus/courier"
	"github.com/courierbus/courier/examples/scaleout/internal/console"
	"github.com/courierbus/courier/examples/scaleout/orders"
	"github.com/courierbus/courier/transport/natsjs"
)

// Config configures [Run].
type Config struct {
	// URL is the worker's NATS server.
	URL string
	// N is how many orders to send, one of them malformed. At least 1.
	N int
	// Timeout bounds the wait for the confirmations and the dead letter.
	Timeout time.Duration
	// Logger receives the bus's and the transport's warnings and errors.
	// Default slog.Default().
	Logger *slog.Logger
}

// deadLetterPoll is how often the shop asks the broker whether the worker
// has dead-lettered the malformed order: the worker's dead-letter hook runs
// in the other process, so the shop reads the dead-letter stream.
const deadLetterPoll = 100 * time.Millisecond

// Run sends cfg.N orders and returns nil once every well-formed one is
// confirmed and the malformed one is dead-lettered. An error wrapping
// natsjs.ErrUnreachable means no server answered at cfg.URL.
func Run(ctx context.Context, cfg Config, out io.Writer) error {
	if cfg.N < 1 {
		return fmt.Errorf("need at least 1 order, not %d", cfg.N)
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	con := console.New(out)

	nc, err := natsjs.Connect(cfg.URL, natsjs.ConnectOptions{Name: "shop"})
	if err != nil {
		return err
	}
	defer nc.Close()
	tr, err := natsjs.New(nc, natsjs.Options{Logger: cfg.Logger})
	if err != nil {
		return err
	}
	bus := courier.New(courier.WithTransport(tr), courier.WithLogger(cfg.Logger))
	defer bus.Close()
	q, tp, err := orders.Declare(bus)
	if err != nil {
		return err
	}

	placed := newOrders(cfg.N)
	waiting := newTracker(con, placed)
	// Subscribe before sending: a new subscription only receives what is
	// published after it was created.
	if err := tp.Subscribe(orders.ShopConfirmations, waiting.confirm); err != nil {
		return err
	}

	con.Printf("shop: sending %d orders to %s", len(placed), cfg.URL)
	for _, p := range placed {
		checkout := courier.WithCorrelationID(ctx, p.correlationID)
		if err := q.Send(checkout, p.Order, courier.WithKey(p.Customer)); err != nil {
			return fmt.Errorf("sending %s: %w", p.ID, err)
		}
		con.Printf("  sent      %s %-5s %d × %-8s correlation=%s", p.ID, p.Customer, p.Qty, p.SKU, p.correlationID)
	}

	wctx, cancel := context.WithTimeout(ctx, cfg.Timeout)
	defer cancel()
	if err := waiting.wait(wctx); err != nil {
		return err
	}
	poison := placed[poisonIndex(len(placed))].ID
	if err := awaitDeadLetter(wctx, q.DeadLetters(), poison); err != nil {
		return err
	}
	printDeadLetters(con, q.DeadLetters().List(), poison)

	sctx, scancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer scancel()
	if err := bus.Shutdown(sctx); err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	return errors.Join(waiting.problem(), con.Err())
}

// awaitDeadLetter waits until the dead-letter queue holds order id.
func awaitDeadLetter(ctx context.Context, dlq *courier.DeadLetterQueue[orders.Order], id string) error {
	t := time.NewTicker(deadLetterPoll)
	defer t.Stop()
	for {
		if slices.ContainsFunc(dlq.List(), func(d courier.DeadLetter[orders.Order]) bool { return d.Body.ID == id }) {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("order %s was not dead-lettered: %w", id, ctx.Err())
		case <-t.C:
		}
	}
}

// printDeadLetters prints the dead letters of the orders queue, this run's
// and earlier runs' alike.
func printDeadLetters(con *console.Console, list []courier.DeadLetter[orders.Order], poison string) {
	con.Printf("shop: dead letters of queue %q: %d", orders.Queue, len(list))
	for _, d := range list {
		mark := ""
		if d.Body.ID == poison {
			mark = "  (this run)"
		}
		con.Printf("  %s reason=%s attempts=%d err=%q body=%+v%s", d.Body.ID, d.Reason, d.Attempts, d.Err, d.Body, mark)
	}
}

// placedOrder is an order the shop sends, with its checkout's correlation
// ID.
type placedOrder struct {
	orders.Order
	correlationID string
}

// newOrders returns n orders with IDs of their own (the streams outlive a
// run); the one at poisonIndex has a quantity of 0.
func newOrders(n int) []placedOrder {
	run := rand.Text()[:6]
	customers := []string{"alice", "bob", "carol"}
	skus := []string{"KETTLE", "TEAPOT", "MUG", "SPOON"}
	out := make([]placedOrder, n)
	for i := range out {
		qty := 1 + 2*i%5 // 1, 3, 5, 2, 4, …: some bulk orders, retried once
		if i == poisonIndex(n) {
			qty = 0
		}
		out[i] = placedOrder{
			Order: orders.Order{
				ID:       fmt.Sprintf("O-%s-%d", run, i+1),
				Customer: customers[i%len(customers)],
				SKU:      skus[i%len(skus)],
				Qty:      qty,
			},
			correlationID: fmt.Sprintf("checkout-%s-%d", run, i+1),
		}
	}
	return out
}

// poisonIndex is the index of the malformed order among n.
func poisonIndex(n int) int { return n / 2 }
