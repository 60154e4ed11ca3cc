// Package courier is asynchronous messaging inside one process: typed
// point-to-point queues ([Queue]) and publish-subscribe topics ([Topic]) on
// one [Bus], with retries and backoff, dead-letter queues that code can
// inspect and replay, ordering keys, bounded buffers with backpressure,
// correlation IDs, and a graceful shutdown that accounts for every message.
//
//	bus := courier.New()
//	defer bus.Shutdown(ctx)
//
//	orders, _ := courier.NewQueue[Order](bus, "orders", courier.Workers(8))
//	_ = orders.Consume(func(ctx context.Context, m *courier.Message[Order]) error {
//		return charge(ctx, m.Body) // nil acknowledges; an error retries
//	})
//	_ = orders.Send(ctx, Order{ID: "o-1"}, courier.WithKey("customer-42"))
//
// # Delivery
//
// Delivery is at least once. A message is done when a handler returns nil.
// An error fails the attempt and schedules another after an exponential
// backoff with jitter ([RetryPolicy]); an error wrapped by [Permanent] skips
// the retries. A panic in a handler or middleware is recovered and fails the
// attempt with a [*PanicError] that carries the stack. A message waiting for
// its retry holds no worker, goroutine or timer: one scheduler per bus keeps
// every waiting message in one heap.
//
// The handler's context is cancelled when the bus stops, and carries the
// message's expiry when it has a time to live. Pass it on to sends made from
// the handler: they inherit the correlation ID.
//
// # Dead letters
//
// A message is dead-lettered, never dropped, when its attempts run out
// ([ReasonMaxAttempts]), its handler returns a permanent error
// ([ReasonPermanent]), its time to live runs out ([ReasonExpired]), the
// overflow policy drops it ([ReasonOverflow]), or the bus stops before it
// could be delivered ([ReasonShutdown]). Each queue and each subscription has
// its own [DeadLetterQueue], bounded by [DeadLetterCapacity] (the oldest is
// evicted and counted). A dead letter keeps the typed body, the reason, the
// last error, the attempts, the first and last attempt times and the headers;
// List, Count, Replay, ReplayIf, Purge and PurgeIf act on them. A replayed
// message keeps its ID and starts its attempts over. [WithDeadLetterHook]
// tells one function of every dead letter of the bus, and the bus logs each
// at Error.
//
// # Queues, workers and topics
//
// [Workers] sets how many goroutines of a Consume call handle messages at
// once; several Consume calls on one queue compete for its messages. A topic
// delivers each published message to every subscription; each subscription
// is a queue of its own, with its own workers, retry policy, capacity and
// dead letters, so a slow or failing subscription never delays another.
// [WithFilter] narrows what a subscription receives. Publishing to a topic
// with no subscription is not an error; it is counted in
// [TopicStats.Unrouted].
//
// # Ordering
//
// A queue with one worker and one consumer is FIFO. Messages sent with the
// same [WithKey] are handled one at a time, in the order they became due,
// whatever the number of workers; a message of the key that waits for a retry
// holds back the later ones of its key, as Azure Service Bus sessions and
// Kafka partition keys do. Messages without a key, or of other keys, run in
// parallel. A delayed message joins its key's line when it becomes due.
//
// # Backpressure
//
// Every queue and subscription is bounded by [Capacity] (default
// [DefaultCapacity]), counting ready, scheduled and in-flight messages; a
// retrying message keeps its slot, so retries never wait for room. When it is
// full, the [Overflow] policy decides: [Block] (the default) makes Send wait
// for room or for its context, and TrySend return [ErrFull]; [DropNewest] and
// [DropOldest] dead-letter the victim with reason [ReasonOverflow].
//
// A handler that sends to its own full queue, with every worker doing the
// same, waits forever: give such a queue room, use TrySend, or a drop policy.
//
// # Time
//
// [WithDelay] and [WithDeliverAt] schedule a message for later. [WithTTL]
// gives it a time to live: not handled by then, it is dead-lettered with
// reason [ReasonExpired]. Every wait in Courier uses the time package, so in a
// testing/synctest bubble delays, backoff and time to live pass in virtual
// time.
//
// # Correlation
//
// Every message has an ID (a UUID version 7), a correlation ID and a
// causation ID (see [Metadata]). A message sent with a handler's context
// takes the handled message's correlation ID and names it as its cause;
// outside a handler, [WithCorrelationID] sets the correlation ID, which
// otherwise is the message's own ID. [MessageFromContext] and
// [CorrelationIDFromContext] read them anywhere below a handler.
//
// # Request-reply
//
// [NewRequestQueue] declares a queue whose handler ([RequestQueue.Serve])
// answers each request with a response. [RequestQueue.Request] waits for it,
// for the request's final failure as a [*RequestError] (it is dead-lettered:
// retries exhausted, [Permanent], expired, shut down), or for its context.
// [Operations] runs requests asynchronously: Submit returns an ID at once,
// Status and Wait follow it, and completed operations are kept for a
// retention. Idempotency keys ([WithIdempotencyKey], [IdempotencyKey]) make a
// resubmission return the existing operation; middleware.NewIdempotency
// turns away duplicate sends and handles each key effectively once.
//
// # Middleware
//
// A [Middleware] can wrap the handling path, the send path, or both. [Bus.Use]
// applies it to every queue and subscription; [WithMiddleware] adds it to one
// queue, topic, subscription or consumer. The first registered runs
// outermost; the chain is bus, queue or topic, subscription, consumer,
// handler. Package middleware has ready ones: Recover, Timeout, Logging.
//
// # Lifecycle
//
// [Bus.Shutdown] stops intake (sends return [ErrClosed], except from the bus's
// own handlers, so work in progress can be passed on), waits for every
// accepted message to be handled or dead-lettered, and stops every goroutine
// of the bus. When its context ends first, it cancels the handlers, dead-letters
// what is left with reason [ReasonShutdown] and returns a [*ShutdownError]
// with the count. [Bus.Close] does the same at once. Both are idempotent.
//
// # Errors
//
// Bad input gets a sentinel error to test with errors.Is: [ErrNilBus],
// [ErrEmptyName], [ErrNilHandler], [ErrTypeMismatch] (a name reused with
// another type), [ErrDuplicateSubscription], [ErrUnknownSubscription],
// [ErrInvalidOption], [ErrClosed], [ErrFull], [ErrOverflow].
//
// # Introspection
//
// Queue.Stats, Subscription.Stats, Topic.Stats and [Bus.Stats] report depth,
// in flight, scheduled, handled, failed attempts, retried, dead-lettered,
// dropped, expired, replayed and filtered counts. [WithDeadLetterHook] and
// [WithRetryHook] report each dead letter and each scheduled retry as it
// happens; [WillRetry] and [FailureOutcome] tell middleware whether a failing
// attempt will be retried, and if not, why. [Bus.WaitIdle] waits until nothing is ready, in flight or
// scheduled and every hook has returned.
//
// # Transports
//
// By default a bus keeps its messages in memory. [WithTransport] puts them in
// a broker instead (package transport/natsjs, a module of its own, runs them
// on NATS JetStream) with no other change to the code: the bus still runs
// the middleware, decides retries by the [RetryPolicy], checks times to live
// and calls the hooks, while the broker stores the messages durably, shares
// a queue among processes and keeps dead letters. Over a transport, sends
// wait for the broker; Stats counters count this bus's work while gauges are
// the broker's; Shutdown leaves what it could not handle in the broker for
// the next consumer ([ShutdownError.Returned]); request-reply crosses
// processes, each requesting bus consuming a reply queue of its own; and what
// the broker cannot do fails at declaration with [ErrUnsupported].
//
// # Testing
//
// Package couriertest wraps a bus for tests: it records the flow, settles
// the bus without sleeping (in virtual time inside a testing/synctest
// bubble), asserts on what was consumed or dead-lettered, injects faults, and
// holds the conformance suite every transport must pass.
package courier
