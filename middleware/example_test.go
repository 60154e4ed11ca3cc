package middleware_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/courierbus/courier"
	"github.com/courierbus/courier/middleware"
)

// The usual setup: recover panics, bound handlers, log what happens.
func Example() {
	bus := courier.New()
	defer bus.Close()
	bus.Use(middleware.Recover(), middleware.Timeout(5*time.Second), middleware.Logging(nil))
}

func ExampleRecover() {
	bus := courier.New(courier.WithLogger(slog.New(slog.DiscardHandler)))

	// A middleware registered before Recover sees the panic as an error.
	report := courier.Middleware{
		Name: "report",
		Handle: func(next courier.HandlerFunc) courier.HandlerFunc {
			return func(ctx context.Context, env courier.Envelope) error {
				err := next(ctx, env)
				if err != nil {
					fmt.Println("handler failed:", err)
				}
				return err
			}
		},
	}
	bus.Use(report, middleware.Recover())

	q, _ := courier.NewQueue[string](bus, "jobs", courier.WithRetry(courier.RetryPolicy{MaxAttempts: 1}))
	_ = q.Consume(func(_ context.Context, m *courier.Message[string]) error {
		panic("cannot handle " + m.Body)
	})
	_ = q.Send(context.Background(), "job-42")
	_ = bus.Shutdown(context.Background())

	for _, d := range q.DeadLetters().List() {
		var pe *courier.PanicError
		if errors.As(d.Err, &pe) {
			fmt.Println("dead letter:", d.Reason, pe.Value)
		}
	}
	// Output:
	// handler failed: courier: handler panic: cannot handle job-42
	// dead letter: max_attempts cannot handle job-42
}
