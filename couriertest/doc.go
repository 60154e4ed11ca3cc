// Package couriertest makes event flows built on Courier quick, deterministic
// and readable to test, in the spirit of net/http/httptest.
//
// [New] gives a test a bus wrapped in a [Harness]. The harness records every
// message sent, published, handled, failed, retried and dead-lettered;
// [Harness.Settle] waits until the whole bus is idle; typed accessors
// ([Sent], [Consumed], [DeadLettered], …) and assertions ([RequireConsumed],
// [RequireDeadLettered], …) read the record and print the whole flow when
// they fail. When the test ends the harness shuts the bus down and fails the
// test for a dead letter it did not expect, a handler that never returned,
// or (outside a synctest bubble) a goroutine left behind.
//
// # Virtual time
//
// Run the test body in a [testing/synctest] bubble and create the harness
// inside it. Delays, retry backoff and time-to-live then pass in virtual
// time: a flow whose retries back off for minutes settles in microseconds,
// and no test needs a sleep.
//
//	func TestPoisonOrder(t *testing.T) {
//		synctest.Test(t, func(t *testing.T) {
//			h := couriertest.New(t)
//			orders, _ := courier.NewQueue[Order](h.Bus, "orders",
//				courier.WithRetry(courier.RetryPolicy{MaxAttempts: 5, MaxInterval: time.Minute}))
//			_ = orders.Consume(charge)
//			_ = orders.Send(t.Context(), Order{ID: "O-1", Amount: 0})
//			couriertest.RequireDeadLettered(t, h, func(o Order) bool { return o.ID == "O-1" })
//		})
//	}
//
// Outside a bubble everything works the same in real time, and Settle gives
// up after [SettleTimeout] with an error that says what is still pending.
//
// # Fault injection
//
// [FailFirst], [FailWhen], [PanicWhen], [Latency] and [DeliverTwice] are
// middleware that make handlers fail, panic, slow down, or receive every
// message twice, so a test can prove that retries, dead-lettering and
// idempotency hold.
//
// Package conformance, below this one, holds the semantics every Courier
// transport must keep, as a test suite to run against any bus constructor.
package couriertest
