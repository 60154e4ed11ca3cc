// Command orders tells the order flow of a small web shop, run on one
// in-process Courier bus:
//
//   - orders wait in the orders queue until the order service starts;
//   - four workers charge them, one customer's orders one at a time and in the
//     order they were placed (they are sent with courier.WithKey);
//   - each charge is published as a PaymentCompleted event to the topic
//     payments.completed, which accounting, analytics and fulfillment
//     receive independently, each with the order's correlation ID;
//   - an order the payment code cannot handle fails every attempt and ends in
//     the dead-letter queue; once a fix is deployed, replaying the dead-letter
//     queue sends it through the whole flow.
//
// Run it with
//
//	go run ./examples/orders
//
// The story goes to stdout; the bus logs warnings and errors (the dead letter)
// to stderr.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/courierbus/courier"
)

// Order asks for a customer to be charged.
type Order struct {
	ID       string
	Customer string
	Amount   int64 // cents
}

// PaymentCompleted is the event published once an order is paid.
type PaymentCompleted struct {
	OrderID string
	Amount  int64 // cents
}

// The retry policy of the orders queue, and its worker count.
const (
	maxAttempts = 3
	workers     = 4
)

// errZeroAmount is what the payment gateway says to a charge of nothing. A
// plain error: the bus retries it, as it would a network hiccup.
var errZeroAmount = errors.New("payment gateway: amount must be positive")

// subscribers are the subscriptions of payments.completed, in the order the
// story introduces them, each with what it does with a payment.
var subscribers = []struct{ name, does string }{
	{"accounting", "booked %s in the ledger"},
	{"analytics", "counted %s of revenue"},
	{"fulfillment", "sent to the warehouse (%s paid)"},
}

func main() {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	err := run(ctx, os.Stdout)
	cancel()
	if err != nil {
		fmt.Fprintln(os.Stderr, "orders:", err)
		os.Exit(1)
	}
}

// run tells the story on stdout. It returns an error when something does not go
// as told, or when ctx ends before the story does.
func run(ctx context.Context, stdout io.Writer) error {
	out := &console{w: stdout}
	deadLetters := make(chan courier.DeadLetterInfo, 8)
	bus := courier.New(
		courier.WithLogger(slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))),
		courier.WithDeadLetterHook(func(d courier.DeadLetterInfo) {
			select {
			case deadLetters <- d:
			default: // a hook must not block; the story expects one dead letter
			}
		}),
	)
	// Once Shutdown has run, Close only returns its result; before, after a
	// failure, it stops the bus so that no goroutine outlives run.
	defer bus.Close()

	orders, err := courier.NewQueue[Order](bus, "orders",
		courier.Workers(workers),
		courier.WithRetry(courier.RetryPolicy{MaxAttempts: maxAttempts, InitialInterval: 20 * time.Millisecond}))
	if err != nil {
		return err
	}
	payments, err := courier.NewTopic[PaymentCompleted](bus, "payments.completed")
	if err != nil {
		return err
	}
	s := newShop(out, payments)

	names := make([]string, len(subscribers))
	for i, sub := range subscribers {
		names[i] = sub.name
	}
	out.printf("== subscribing %s to %s ==\n", strings.Join(names, ", "), payments.Name())
	for _, sub := range subscribers {
		if err := payments.Subscribe(sub.name, s.subscriber(sub.name, sub.does)); err != nil {
			return err
		}
	}

	placed := []Order{
		{ID: "O-1001", Customer: "alice", Amount: 4200},
		{ID: "O-1002", Customer: "bob", Amount: 1750},
		{ID: "O-1003", Customer: "alice", Amount: 899},
		{ID: "O-1004", Customer: "carol", Amount: 0}, // fully discounted: the poison order
		{ID: "O-1005", Customer: "alice", Amount: 12000},
	}
	out.printf("\n== sending %d orders (no order service yet: they wait in the queue) ==\n", len(placed))
	for i, o := range placed {
		// Each order comes from its own checkout request, whose ID becomes the
		// correlation ID of every message of the order's flow.
		checkout := courier.WithCorrelationID(ctx, fmt.Sprintf("checkout-%d", 71+i))
		if err := orders.Send(checkout, o, courier.WithKey(o.Customer)); err != nil {
			return err
		}
		out.printf("  sent %s  %-5s %8s  correlation=%s\n", o.ID, o.Customer, dollars(o.Amount), courier.CorrelationIDFromContext(checkout))
	}

	out.printf("\n== starting the order service: %d workers, %d attempts per order ==\n", workers, maxAttempts)
	if err := orders.Consume(s.handleOrder); err != nil {
		return err
	}
	good := len(placed) - 1
	dead, err := s.await(ctx, good*len(subscribers), deadLetters, 1)
	if err != nil {
		return err
	}
	if d := dead[0]; d.Destination != orders.Name() || d.Reason != courier.ReasonMaxAttempts {
		return fmt.Errorf("unexpected dead letter: %s", d.Description())
	}

	list := orders.DeadLetters().List()
	out.printf("\n== dead-letter queue of %s: %d message(s) ==\n", orders.Name(), len(list))
	for _, d := range list {
		out.printf("  %s %-5s %8s  message=…%s reason=%s attempts=%d err=%q\n",
			d.Body.ID, d.Body.Customer, dollars(d.Body.Amount), short(d.ID), d.Reason, d.Attempts, d.Err)
	}
	if len(list) != 1 {
		return fmt.Errorf("dead-letter queue holds %d messages, want 1", len(list))
	}
	poison := list[0].Body

	out.printf("\n== deploying the fix: fully discounted orders skip the gateway ==\n")
	s.fixDeployed.Store(true)

	out.printf("\n== replaying the dead-letter queue ==\n")
	n, err := orders.DeadLetters().Replay(ctx)
	if err != nil {
		return fmt.Errorf("replay: %w", err)
	}
	out.printf("  replayed %d message(s); %d left in the dead-letter queue\n", n, orders.DeadLetters().Count())
	if _, err := s.await(ctx, len(subscribers), deadLetters, 0); err != nil {
		return err
	}

	out.printf("\n== checking the flow ==\n")
	s.checkOrder(placed)
	for _, sub := range subscribers {
		if got := s.receivedBy(sub.name); !slices.Contains(got, poison.ID) {
			s.problem(fmt.Errorf("%s never received the replayed order %s", sub.name, poison.ID))
		}
	}
	if len(s.problems) == 0 {
		out.printf("  every payment event carried its order's correlation ID and named the order message as its cause\n")
	}

	out.printf("\n== shutting down ==\n")
	if err := bus.Shutdown(ctx); err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	out.printf("  every accepted message was handled; the workers and the scheduler have stopped\n")
	out.printf("\n== bus stats ==\n")
	printStats(out, bus.Stats(), orders.Name(), payments.Name())

	if err := errors.Join(s.problems...); err != nil {
		return err
	}
	return out.err
}

// shop holds the services of the story.
type shop struct {
	out         *console
	payments    *courier.Topic[PaymentCompleted]
	fixDeployed atomic.Bool         // the bug fix for fully discounted orders
	receipts    chan receipt        // one per payment event a subscriber handled
	problems    []error             // what did not go as told; only run's goroutine touches it
	mu          sync.Mutex          // guards the maps below
	orderMsgs   map[string]orderMsg // order ID → the order message that was charged
	charged     map[string][]string // customer → order IDs in the order they were charged
	received    map[string][]string // subscriber → order IDs it received
}

func newShop(out *console, payments *courier.Topic[PaymentCompleted]) *shop {
	return &shop{
		out:       out,
		payments:  payments,
		receipts:  make(chan receipt, 32),
		orderMsgs: make(map[string]orderMsg),
		charged:   make(map[string][]string),
	}
}

// orderMsg is what a payment event's subscribers check their message against.
type orderMsg struct{ id, correlationID string }

// receipt tells run that subscriber handled the payment of order.
type receipt struct {
	subscriber, order string
	problem           error
}

// handleOrder charges an order and publishes its payment. It publishes with
// its own ctx, so the event inherits the order message's correlation ID and
// names the order message as its cause.
func (s *shop) handleOrder(ctx context.Context, m *courier.Message[Order]) error {
	o := m.Body
	if err := s.charge(ctx, o); err != nil {
		s.out.printf("  [orders]      %s %-5s attempt %d/%d failed: %v\n", o.ID, o.Customer, m.Attempt, maxAttempts, err)
		return err
	}
	s.mu.Lock()
	s.orderMsgs[o.ID] = orderMsg{id: m.ID, correlationID: m.CorrelationID}
	s.charged[o.Customer] = append(s.charged[o.Customer], o.ID)
	s.mu.Unlock()
	what := "charged " + dollars(o.Amount)
	if o.Amount == 0 {
		what = "free order, nothing to charge"
	}
	s.out.printf("  [orders]      %s %-5s %-32s message=…%s correlation=%s\n", o.ID, o.Customer, what, short(m.ID), m.CorrelationID)
	return s.payments.Publish(ctx, PaymentCompleted{OrderID: o.ID, Amount: o.Amount})
}

// charge calls the payment gateway, which takes a moment and rejects a charge
// of nothing. Until the fix is deployed, fully discounted orders are sent to it.
func (s *shop) charge(ctx context.Context, o Order) error {
	if o.Amount == 0 && s.fixDeployed.Load() {
		return nil
	}
	if o.Amount <= 0 {
		return errZeroAmount
	}
	t := time.NewTimer(5 * time.Millisecond) // the gateway's latency
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// subscriber returns the handler of one subscription of payments.completed.
// It checks the event's correlation and causation IDs against the order
// message's, prints a line, and tells run.
func (s *shop) subscriber(name, does string) courier.Handler[PaymentCompleted] {
	return func(ctx context.Context, m *courier.Message[PaymentCompleted]) error {
		p := m.Body
		s.mu.Lock()
		order, ok := s.orderMsgs[p.OrderID]
		s.mu.Unlock()
		var problem error
		switch {
		case !ok:
			problem = fmt.Errorf("%s: payment of unknown order %s", name, p.OrderID)
		case m.CorrelationID != order.correlationID:
			problem = fmt.Errorf("%s: payment of %s has correlation ID %q, its order %q", name, p.OrderID, m.CorrelationID, order.correlationID)
		case m.CausationID != order.id:
			problem = fmt.Errorf("%s: payment of %s was caused by %q, not by its order message %q", name, p.OrderID, m.CausationID, order.id)
		}
		s.out.printf("  %-13s %s %-38s causation=…%s correlation=%s\n",
			"["+name+"]", p.OrderID, fmt.Sprintf(does, dollars(p.Amount)), short(m.CausationID), m.CorrelationID)
		select {
		case s.receipts <- receipt{subscriber: name, order: p.OrderID, problem: problem}:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// await waits until subscribers have handled n payment events and the hook
// has told of wantDead dead letters, which it returns, or until ctx ends.
func (s *shop) await(ctx context.Context, n int, deadLetters <-chan courier.DeadLetterInfo, wantDead int) ([]courier.DeadLetterInfo, error) {
	var dead []courier.DeadLetterInfo
	for n > 0 || len(dead) < wantDead {
		select {
		case r := <-s.receipts:
			n--
			s.mu.Lock()
			if s.received == nil {
				s.received = make(map[string][]string)
			}
			s.received[r.subscriber] = append(s.received[r.subscriber], r.order)
			s.mu.Unlock()
			if r.problem != nil {
				s.problem(r.problem)
			}
		case d := <-deadLetters:
			if len(dead) == wantDead {
				return nil, fmt.Errorf("unexpected dead letter: %s", d.Description())
			}
			dead = append(dead, d)
		case <-ctx.Done():
			return nil, fmt.Errorf("still waiting for %d payment event(s) and %d dead letter(s): %w", n, wantDead-len(dead), ctx.Err())
		}
	}
	return dead, nil
}

func (s *shop) receivedBy(subscriber string) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.received[subscriber])
}

func (s *shop) problem(err error) {
	s.problems = append(s.problems, err)
	s.out.printf("  PROBLEM: %v\n", err)
}

// checkOrder checks that each customer's orders were charged in the order they
// were placed, and prints the customers who placed more than one.
func (s *shop) checkOrder(placed []Order) {
	want := make(map[string][]string)
	var customers []string
	for _, o := range placed {
		if want[o.Customer] == nil {
			customers = append(customers, o.Customer)
		}
		want[o.Customer] = append(want[o.Customer], o.ID)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, c := range customers {
		got := s.charged[c]
		if !slices.Equal(got, want[c]) {
			s.problem(fmt.Errorf("%s's orders were charged in the order %v, not %v", c, got, want[c]))
			continue
		}
		if len(got) > 1 {
			s.out.printf("  %s's %d orders were charged one at a time, in the order placed: %s\n", c, len(got), strings.Join(got, ", "))
		}
	}
}

// printStats prints the bus's counters: the total, then each queue and
// subscription.
func printStats(out *console, st courier.BusStats, queue, topic string) {
	t := st.Total
	out.printf("  bus total: handled=%d retried=%d dead-lettered=%d replayed=%d failed-attempts=%d\n",
		t.Handled, t.Retried, t.DeadLettered, t.Replayed, t.FailedAttempts)
	line := func(name string, s courier.Stats) {
		out.printf("  %-31s sent=%d handled=%d retried=%d dead-lettered=%d replayed=%d\n",
			name, s.Sent, s.Handled, s.Retried, s.DeadLettered, s.Replayed)
	}
	line(queue, st.Queues[queue])
	subs := st.Topics[topic].Subscriptions
	for _, sub := range subscribers {
		line(topic+"/"+sub.name, subs[sub.name])
	}
}

// console serialises the lines that handlers on several goroutines print, and
// keeps the first write error.
type console struct {
	mu  sync.Mutex
	w   io.Writer
	err error
}

func (c *console) printf(format string, args ...any) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.err == nil {
		_, c.err = fmt.Fprintf(c.w, format, args...)
	}
}

// dollars formats cents.
func dollars(cents int64) string { return fmt.Sprintf("$%d.%02d", cents/100, cents%100) }

// short returns the end of a message ID: the random part of a UUIDv7, enough
// to tell the IDs of one run apart (its start is the send time).
func short(id string) string { return id[max(0, len(id)-8):] }
