package courier_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/courierbus/courier"
)

// A queue, a consumer, a send: Shutdown waits until the message is handled.
func Example() {
	ctx := context.Background()
	bus := courier.New(courier.WithLogger(slog.New(slog.DiscardHandler)))

	greetings, err := courier.NewQueue[string](bus, "greetings")
	if err != nil {
		panic(err)
	}
	err = greetings.Consume(func(ctx context.Context, m *courier.Message[string]) error {
		fmt.Println("handled:", m.Body)
		return nil
	})
	if err != nil {
		panic(err)
	}
	if err := greetings.Send(ctx, "hello, courier"); err != nil {
		panic(err)
	}

	// Shutdown stops intake, then drains: it returns once every accepted
	// message has been handled (or dead-lettered).
	if err := bus.Shutdown(ctx); err != nil {
		panic(err)
	}
	fmt.Println("handled in all:", greetings.Stats().Handled)
	// Output:
	// handled: hello, courier
	// handled in all: 1
}

func ExampleNewQueue() {
	type Email struct{ To, Subject string }

	ctx := context.Background()
	bus := courier.New(courier.WithLogger(slog.New(slog.DiscardHandler)))

	// One worker, no other consumer: messages are handled one at a time, in
	// the order they were sent. A failed attempt is retried up to 3 attempts
	// in all.
	emails, err := courier.NewQueue[Email](bus, "emails",
		courier.Workers(1),
		courier.WithRetry(courier.RetryPolicy{MaxAttempts: 3, InitialInterval: 10 * time.Millisecond}))
	if err != nil {
		panic(err)
	}
	err = emails.Consume(func(ctx context.Context, m *courier.Message[Email]) error {
		fmt.Printf("to %s: %s\n", m.Body.To, m.Body.Subject)
		return nil
	})
	if err != nil {
		panic(err)
	}
	for _, to := range []string{"ada@example.com", "grace@example.com", "edsger@example.com"} {
		if err := emails.Send(ctx, Email{To: to, Subject: "Welcome"}); err != nil {
			panic(err)
		}
	}

	if err := bus.Shutdown(ctx); err != nil {
		panic(err)
	}
	st := emails.Stats()
	fmt.Printf("sent %d, handled %d\n", st.Sent, st.Handled)
	// Output:
	// to ada@example.com: Welcome
	// to grace@example.com: Welcome
	// to edsger@example.com: Welcome
	// sent 3, handled 3
}

func ExampleNewTopic() {
	type PaymentCompleted struct {
		OrderID string
		Cents   int64
	}

	ctx := context.Background()
	bus := courier.New(courier.WithLogger(slog.New(slog.DiscardHandler)))

	payments, err := courier.NewTopic[PaymentCompleted](bus, "payments.completed")
	if err != nil {
		panic(err)
	}

	// Each subscription is a queue of its own, handled on its own goroutines:
	// their lines would interleave, so each one reports on its own channel,
	// and the results are printed in a fixed order below.
	ledger := make(chan string, 10)
	shipping := make(chan string, 10)
	err = payments.Subscribe("accounting", func(ctx context.Context, m *courier.Message[PaymentCompleted]) error {
		ledger <- fmt.Sprintf("accounting: booked %d cents for %s", m.Body.Cents, m.Body.OrderID)
		return nil
	})
	if err != nil {
		panic(err)
	}
	err = payments.Subscribe("fulfillment", func(ctx context.Context, m *courier.Message[PaymentCompleted]) error {
		shipping <- fmt.Sprintf("fulfillment: shipping %s", m.Body.OrderID)
		return nil
	})
	if err != nil {
		panic(err)
	}

	// Every subscription receives every message published from now on.
	for _, p := range []PaymentCompleted{{"O-1", 4200}, {"O-2", 1750}} {
		if err := payments.Publish(ctx, p); err != nil {
			panic(err)
		}
	}

	if err := bus.Shutdown(ctx); err != nil { // drains both subscriptions
		panic(err)
	}
	close(ledger)
	close(shipping)
	for line := range ledger {
		fmt.Println(line)
	}
	for line := range shipping {
		fmt.Println(line)
	}
	fmt.Println("published:", payments.Stats().Published)
	// Output:
	// accounting: booked 4200 cents for O-1
	// accounting: booked 1750 cents for O-2
	// fulfillment: shipping O-1
	// fulfillment: shipping O-2
	// published: 2
}

func ExampleDeadLetterQueue_Replay() {
	ctx := context.Background()

	// The hook tells when a message has been dead-lettered.
	deadLettered := make(chan struct{}, 1)
	bus := courier.New(
		courier.WithLogger(slog.New(slog.DiscardHandler)),
		courier.WithDeadLetterHook(func(courier.DeadLetterInfo) {
			select {
			case deadLettered <- struct{}{}:
			default:
			}
		}),
	)

	invoices, err := courier.NewQueue[string](bus, "invoices")
	if err != nil {
		panic(err)
	}
	var fixed atomic.Bool // a bug fix, deployed below
	err = invoices.Consume(func(ctx context.Context, m *courier.Message[string]) error {
		if !fixed.Load() {
			// Retrying cannot help: Permanent sends the message straight to
			// the dead-letter queue.
			return courier.Permanent(errors.New("invoice template missing"))
		}
		fmt.Println("sent invoice", m.Body)
		return nil
	})
	if err != nil {
		panic(err)
	}
	if err := invoices.Send(ctx, "INV-7"); err != nil {
		panic(err)
	}
	<-deadLettered

	for _, d := range invoices.DeadLetters().List() {
		fmt.Printf("dead letter %s: reason %s after %d attempt(s): %v\n", d.Body, d.Reason, d.Attempts, d.Err)
	}

	fixed.Store(true)
	n, err := invoices.DeadLetters().Replay(ctx)
	if err != nil {
		panic(err)
	}
	fmt.Println("replayed:", n)

	if err := bus.Shutdown(ctx); err != nil {
		panic(err)
	}
	fmt.Println("dead letters left:", invoices.DeadLetters().Count())
	// Output:
	// dead letter INV-7: reason permanent after 1 attempt(s): invoice template missing
	// replayed: 1
	// sent invoice INV-7
	// dead letters left: 0
}

func ExampleWithKey() {
	ctx := context.Background()
	bus := courier.New(courier.WithLogger(slog.New(slog.DiscardHandler)))

	// Four workers handle messages concurrently, but messages that share a key
	// are handled one at a time, in the order they were sent.
	steps, err := courier.NewQueue[string](bus, "steps", courier.Workers(4))
	if err != nil {
		panic(err)
	}
	var mu sync.Mutex
	seen := make(map[string][]string) // key → bodies in the order handled
	err = steps.Consume(func(ctx context.Context, m *courier.Message[string]) error {
		mu.Lock()
		defer mu.Unlock()
		seen[m.Key] = append(seen[m.Key], m.Body)
		return nil
	})
	if err != nil {
		panic(err)
	}
	for i := 1; i <= 4; i++ {
		for _, customer := range []string{"alice", "bob"} {
			body := fmt.Sprintf("%s-%d", customer, i)
			if err := steps.Send(ctx, body, courier.WithKey(customer)); err != nil {
				panic(err)
			}
		}
	}

	if err := bus.Shutdown(ctx); err != nil {
		panic(err)
	}
	// Lines of different keys could interleave in any order; those of one
	// key cannot.
	fmt.Println("alice:", strings.Join(seen["alice"], " "))
	fmt.Println("bob:  ", strings.Join(seen["bob"], " "))
	// Output:
	// alice: alice-1 alice-2 alice-3 alice-4
	// bob:   bob-1 bob-2 bob-3 bob-4
}

func ExampleCorrelationIDFromContext() {
	type Order struct{ ID string }
	type Receipt struct{ OrderID string }

	ctx := context.Background()
	bus := courier.New(courier.WithLogger(slog.New(slog.DiscardHandler)))

	receipts, err := courier.NewQueue[Receipt](bus, "receipts")
	if err != nil {
		panic(err)
	}
	orders, err := courier.NewQueue[Order](bus, "orders")
	if err != nil {
		panic(err)
	}

	var orderMsgID string // read after Shutdown, once both handlers are done
	err = orders.Consume(func(ctx context.Context, m *courier.Message[Order]) error {
		orderMsgID = m.ID
		fmt.Println("orders:   correlation", courier.CorrelationIDFromContext(ctx))
		// Sent with the handler's ctx, the receipt inherits the order
		// message's correlation ID, and names the order message as its cause.
		return receipts.Send(ctx, Receipt{OrderID: m.Body.ID})
	})
	if err != nil {
		panic(err)
	}
	var causedByOrder bool
	err = receipts.Consume(func(ctx context.Context, m *courier.Message[Receipt]) error {
		fmt.Println("receipts: correlation", m.CorrelationID)
		causedByOrder = m.CausationID == orderMsgID
		return nil
	})
	if err != nil {
		panic(err)
	}

	// Outside any handler, WithCorrelationID ties a send to an existing
	// conversation, here an HTTP request.
	reqCtx := courier.WithCorrelationID(ctx, "request-42")
	fmt.Println("request:  correlation", courier.CorrelationIDFromContext(reqCtx))
	if err := orders.Send(reqCtx, Order{ID: "O-1"}); err != nil {
		panic(err)
	}

	if err := bus.Shutdown(ctx); err != nil { // waits for the receipt too
		panic(err)
	}
	fmt.Println("receipt caused by the order message:", causedByOrder)
	// Output:
	// request:  correlation request-42
	// orders:   correlation request-42
	// receipts: correlation request-42
	// receipt caused by the order message: true
}

func ExampleMessageFromContext() {
	ctx := context.Background()
	bus := courier.New(courier.WithLogger(slog.New(slog.DiscardHandler)))

	jobs, err := courier.NewQueue[string](bus, "jobs",
		courier.WithRetry(courier.RetryPolicy{MaxAttempts: 2, InitialInterval: time.Millisecond}))
	if err != nil {
		panic(err)
	}

	// describe sits deep in application code, with only a context: it finds
	// the message being handled there.
	describe := func(ctx context.Context) string {
		env, ok := courier.MessageFromContext(ctx)
		if !ok {
			return "not in a handler"
		}
		md := env.Meta()
		return fmt.Sprintf("%s, attempt %d", md.Destination, md.Attempt)
	}

	err = jobs.Consume(func(ctx context.Context, m *courier.Message[string]) error {
		fmt.Println(m.Body+":", describe(ctx))
		if m.Attempt == 1 {
			return errors.New("flaky") // retried once
		}
		return nil
	})
	if err != nil {
		panic(err)
	}
	fmt.Println("main:", describe(ctx))
	if err := jobs.Send(ctx, "resize"); err != nil {
		panic(err)
	}

	if err := bus.Shutdown(ctx); err != nil { // waits for the retry too
		panic(err)
	}
	// Output:
	// main: not in a handler
	// resize: jobs, attempt 1
	// resize: jobs, attempt 2
}
