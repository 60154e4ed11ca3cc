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

func ExampleNewIdempotency() {
	ctx := context.Background()
	bus := courier.New(courier.WithLogger(slog.New(slog.DiscardHandler)))

	store := middleware.NewMemoryStore(middleware.MemoryStoreOptions{})
	idem, err := middleware.NewIdempotency(store, middleware.IdempotencyOptions{SendWindow: 10 * time.Minute})
	if err != nil {
		panic(err)
	}
	bus.Use(idem.Middleware())

	// Each charge's key is its order ID.
	type Charge struct {
		OrderID string
		Cents   int64
	}
	charges, err := courier.NewQueue[Charge](bus, "charges",
		courier.IdempotencyKey(func(c Charge) string { return c.OrderID }))
	if err != nil {
		panic(err)
	}
	// A client that retries its request sends the same charge twice.
	for range 2 {
		err := charges.Send(ctx, Charge{OrderID: "O-1", Cents: 4200})
		if errors.Is(err, courier.ErrDuplicate) {
			fmt.Println("duplicate turned away:", err)
		} else if err != nil {
			panic(err)
		}
	}

	// The payment service starts after the sends: only one charge waits.
	err = charges.Consume(func(ctx context.Context, m *courier.Message[Charge]) error {
		fmt.Printf("charged %s: %d cents\n", m.Body.OrderID, m.Body.Cents)
		return nil
	})
	if err != nil {
		panic(err)
	}

	if err := bus.Shutdown(ctx); err != nil {
		panic(err)
	}
	st := idem.Stats()
	fmt.Printf("duplicate sends %d, keys done %d\n", st.DuplicateSends, st.Committed)
	// Output:
	// duplicate turned away: courier: duplicate message: idempotency key "O-1" already sent to "charges"
	// charged O-1: 4200 cents
	// duplicate sends 1, keys done 1
}
