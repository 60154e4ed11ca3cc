package courier_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"

	"github.com/courierbus/courier"
)

func ExampleRequestQueue_Request() {
	ctx := context.Background()
	bus := courier.New(courier.WithLogger(slog.New(slog.DiscardHandler)))

	// Requests are product names; replies are prices in cents.
	prices, err := courier.NewRequestQueue[string, int](bus, "prices")
	if err != nil {
		panic(err)
	}
	err = prices.Serve(func(ctx context.Context, m *courier.Message[string]) (int, error) {
		if m.Body == "unicorn" {
			// Retrying cannot help: the caller gets the error at once.
			return 0, courier.Permanent(errors.New("not for sale"))
		}
		return 100 * len(m.Body), nil
	})
	if err != nil {
		panic(err)
	}

	// Request blocks until the reply, the request's final failure, or the
	// end of ctx.
	cents, err := prices.Request(ctx, "apple")
	if err != nil {
		panic(err)
	}
	fmt.Println("apple:", cents, "cents")

	_, err = prices.Request(ctx, "unicorn")
	var re *courier.RequestError
	if errors.As(err, &re) {
		fmt.Printf("unicorn: %s after %d attempt(s): %v\n", re.Reason, re.Attempts, re.Err)
	}

	if err := bus.Shutdown(ctx); err != nil {
		panic(err)
	}
	// Output:
	// apple: 500 cents
	// unicorn: permanent after 1 attempt(s): not for sale
}

func ExampleOperations() {
	ctx := context.Background()
	bus := courier.New(courier.WithLogger(slog.New(slog.DiscardHandler)))

	reports, err := courier.NewRequestQueue[string, string](bus, "reports")
	if err != nil {
		panic(err)
	}
	ops, err := courier.NewOperations(reports, courier.OperationOptions{}) // keeps results an hour
	if err != nil {
		panic(err)
	}

	// Submit returns at once with the operation's ID. Nobody serves yet, so
	// the operation is pending.
	id, err := ops.Submit(ctx, "q3 sales", courier.WithIdempotencyKey("report-q3"))
	if err != nil {
		panic(err)
	}
	op, _ := ops.Status(id)
	fmt.Println("after submit:", op.State)

	// Submitting the same idempotency key again names the same operation.
	again, _ := ops.Submit(ctx, "q3 sales", courier.WithIdempotencyKey("report-q3"))
	fmt.Println("resubmitted, same operation:", again == id)

	err = reports.Serve(func(ctx context.Context, m *courier.Message[string]) (string, error) {
		return "REPORT: " + strings.ToUpper(m.Body), nil
	})
	if err != nil {
		panic(err)
	}
	report, err := ops.Wait(ctx, id)
	if err != nil {
		panic(err)
	}
	op, _ = ops.Status(id)
	fmt.Println("after wait:", op.State)
	fmt.Println(report)

	if err := bus.Shutdown(ctx); err != nil {
		panic(err)
	}
	fmt.Println("requests handled:", reports.Stats().Handled)
	// Output:
	// after submit: pending
	// resubmitted, same operation: true
	// after wait: succeeded
	// REPORT: Q3 SALES
	// requests handled: 1
}
