package courier

import (
	"fmt"
	"reflect"
	"time"
)

// Defaults for the options of queues and subscriptions.
const (
	// DefaultCapacity bounds how many messages a queue or subscription holds:
	// ready, scheduled (delayed or waiting for a retry) and being handled.
	DefaultCapacity = 1024
	// DefaultWorkers is the number of goroutines a Consume or Subscribe call
	// starts.
	DefaultWorkers = 1
	// DefaultDeadLetterCapacity bounds each dead-letter queue; when it is
	// full the oldest dead letter is evicted and counted in
	// [Stats.DeadLettersEvicted].
	DefaultDeadLetterCapacity = 10_000
)

// Overflow says what a full queue or subscription does with one more message.
type Overflow int

const (
	// Block makes Send and Publish wait for room (or for their context to
	// end), and TrySend and TryPublish fail with [ErrFull]. The default.
	Block Overflow = iota
	// DropNewest dead-letters the new message with reason [ReasonOverflow]:
	// Send returns [ErrOverflow], while Publish delivers the message to the
	// topic's other subscriptions and returns nil.
	DropNewest
	// DropOldest dead-letters the oldest ready message with reason
	// [ReasonOverflow] to make room. When no message is ready to evict (all are
	// being handled or scheduled), the new one is dead-lettered instead, as
	// with DropNewest.
	DropOldest
)

func (o Overflow) String() string {
	switch o {
	case Block:
		return "block"
	case DropNewest:
		return "drop-newest"
	case DropOldest:
		return "drop-oldest"
	}
	return fmt.Sprintf("Overflow(%d)", int(o))
}

// scope is where an option is being applied.
type scope uint8

const (
	scopeQueue        scope = iota // NewQueue
	scopeTopic                     // NewTopic: defaults for its subscriptions
	scopeSubscription              // Subscribe
	scopeConsumer                  // Consume
)

func (s scope) String() string {
	return [...]string{"NewQueue", "NewTopic", "Subscribe", "Consume"}[s]
}

// config collects the options of a queue, topic, subscription or consumer.
type config struct {
	scope       scope
	workers     int
	capacity    int
	capacitySet bool // Capacity was given, not defaulted
	overflow    Overflow
	retry       RetryPolicy
	retrySet    bool
	dlqCap      int
	middleware  []Middleware
	filter      func(Envelope) bool
	filterType  reflect.Type
	keyFn       func(Envelope) string // IdempotencyKey
	keyType     reflect.Type
}

// Option configures a queue (NewQueue), a topic's subscriptions (NewTopic,
// whose options are defaults for every Subscribe), a subscription (Subscribe)
// or a consumer (Consume). An option given where it does not apply, or with a
// bad value, makes the call fail with an error wrapping [ErrInvalidOption].
type Option func(*config) error

func (c *config) only(name string, scopes ...scope) error {
	for _, s := range scopes {
		if c.scope == s {
			return nil
		}
	}
	return invalidOption("%s does not apply to %s", name, c.scope)
}

// Workers sets how many goroutines handle messages concurrently for one
// Consume or Subscribe call; given to NewQueue or NewTopic it sets the default
// for those calls. Default 1, which with no other consumer gives FIFO order.
func Workers(n int) Option {
	return func(c *config) error {
		if n < 1 {
			return invalidOption("Workers(%d): need at least 1", n)
		}
		c.workers = n
		return nil
	}
}

// Capacity bounds how many messages a queue or subscription holds, counting
// ready, scheduled and in-flight ones; what happens when it is reached is the
// [Overflow] policy's. Default [DefaultCapacity]. Not for Consume.
func Capacity(n int) Option {
	return func(c *config) error {
		if err := c.only("Capacity", scopeQueue, scopeTopic, scopeSubscription); err != nil {
			return err
		}
		if n < 1 {
			return invalidOption("Capacity(%d): need at least 1", n)
		}
		c.capacity, c.capacitySet = n, true
		return nil
	}
}

// WithOverflow sets what a full queue or subscription does; default [Block].
// Not for Consume.
func WithOverflow(o Overflow) Option {
	return func(c *config) error {
		if err := c.only("WithOverflow", scopeQueue, scopeTopic, scopeSubscription); err != nil {
			return err
		}
		if o < Block || o > DropOldest {
			return invalidOption("WithOverflow(%v): unknown policy", o)
		}
		c.overflow = o
		return nil
	}
}

// WithRetry sets the retry policy of a queue or subscription; without it the
// bus default applies ([WithDefaultRetry], else the [RetryPolicy] zero value's
// defaults). Not for Consume: every consumer of a queue shares its policy.
func WithRetry(p RetryPolicy) Option {
	return func(c *config) error {
		if err := c.only("WithRetry", scopeQueue, scopeTopic, scopeSubscription); err != nil {
			return err
		}
		if err := p.validate(); err != nil {
			return err
		}
		c.retry, c.retrySet = p, true
		return nil
	}
}

// DeadLetterCapacity bounds the dead-letter queue of a queue or
// subscription. Default [DefaultDeadLetterCapacity]. Not for Consume.
func DeadLetterCapacity(n int) Option {
	return func(c *config) error {
		if err := c.only("DeadLetterCapacity", scopeQueue, scopeTopic, scopeSubscription); err != nil {
			return err
		}
		if n < 1 {
			return invalidOption("DeadLetterCapacity(%d): need at least 1", n)
		}
		c.dlqCap = n
		return nil
	}
}

// WithMiddleware adds middleware at the level of the call it is given to:
// queue or topic (send and handling paths), subscription or consumer (handling
// path). See [Middleware] for the order.
func WithMiddleware(mws ...Middleware) Option {
	return func(c *config) error {
		c.middleware = append(c.middleware, mws...)
		return nil
	}
}

// WithFilter makes a subscription receive only the messages for which keep
// returns true; the others are counted in [Stats.Filtered] and never enter the
// subscription. keep runs on the publisher's goroutine, before the message is
// copied for the subscription, and must not change the message. Only for
// Subscribe, with the topic's message type.
func WithFilter[T any](keep func(m *Message[T]) bool) Option {
	return func(c *config) error {
		if err := c.only("WithFilter", scopeSubscription); err != nil {
			return err
		}
		if keep == nil {
			return invalidOption("WithFilter(nil)")
		}
		c.filterType = reflect.TypeFor[T]()
		c.filter = func(env Envelope) bool {
			m, ok := env.(*Message[T])
			return ok && keep(m)
		}
		return nil
	}
}

// IdempotencyKey derives the idempotency key of every message sent to a queue
// or published to a topic from its body, for messages sent without
// [WithIdempotencyKey]. Only for NewQueue and NewTopic, with their message
// type; key runs on the sender's goroutine and must not change the body. An
// empty result means no key.
func IdempotencyKey[T any](key func(body T) string) Option {
	return func(c *config) error {
		if err := c.only("IdempotencyKey", scopeQueue, scopeTopic); err != nil {
			return err
		}
		if key == nil {
			return invalidOption("IdempotencyKey(nil)")
		}
		c.keyType = reflect.TypeFor[T]()
		c.keyFn = func(env Envelope) string {
			if m, ok := env.(*Message[T]); ok {
				return key(m.Body)
			}
			return ""
		}
		return nil
	}
}

// checkKeyType fails when an IdempotencyKey option was given for another
// type than the destination's.
func (c *config) checkKeyType(name string, typ reflect.Type) error {
	if c.keyType != nil && c.keyType != typ {
		return invalidOption("IdempotencyKey for %v on %q of %v", c.keyType, name, typ)
	}
	return nil
}

func (c *config) apply(opts []Option) error {
	for _, o := range opts {
		if o == nil {
			return invalidOption("nil Option")
		}
		if err := o(c); err != nil {
			return err
		}
	}
	return nil
}

// SendOption adjusts one Send or Publish. SendOptions are plain values, so
// passing them costs no allocation.
type SendOption struct {
	kind sendKind
	a, b string
	d    time.Duration
	t    time.Time
}

type sendKind uint8

const (
	sendNone sendKind = iota
	sendKey
	sendDelay
	sendAt
	sendTTL
	sendHeader
	sendIdem
)

// WithKey sets the message's ordering key: messages with the same key are
// handled one at a time, in the order they became due, even with many
// workers, and one waiting for a retry holds back the later ones. An empty key
// means no key.
func WithKey(key string) SendOption { return SendOption{kind: sendKey, a: key} }

// WithDelay makes the message due d from now instead of at once. d must not
// be negative.
func WithDelay(d time.Duration) SendOption { return SendOption{kind: sendDelay, d: d} }

// WithDeliverAt makes the message due at t; a time in the past means at once.
func WithDeliverAt(t time.Time) SendOption { return SendOption{kind: sendAt, t: t} }

// WithTTL gives the message a time to live, counted from the send: if it has
// not been handled successfully by then, it is dead-lettered with reason
// [ReasonExpired]. The handler's context carries the same deadline. d must be
// positive.
func WithTTL(d time.Duration) SendOption { return SendOption{kind: sendTTL, d: d} }

// WithHeader sets a string header on the message. key must not be empty.
func WithHeader(key, value string) SendOption {
	return SendOption{kind: sendHeader, a: key, b: value}
}

// WithIdempotencyKey sets the message's idempotency key ([Metadata.IdempotencyKey]),
// which overrides one derived by an [IdempotencyKey] option. The key is what
// duplicate detection and effectively-once handling (see the middleware
// package) recognise; without such middleware it is only carried along.
func WithIdempotencyKey(key string) SendOption { return SendOption{kind: sendIdem, a: key} }

func applySendOptions(md *Metadata, opts []SendOption) error {
	for i := range opts {
		o := &opts[i]
		switch o.kind {
		case sendKey:
			md.Key = o.a
		case sendDelay:
			if o.d < 0 {
				return invalidOption("WithDelay(%v): negative", o.d)
			}
			md.DeliverAt = md.SentAt.Add(o.d)
		case sendAt:
			md.DeliverAt = o.t
		case sendTTL:
			if o.d <= 0 {
				return invalidOption("WithTTL(%v): must be positive", o.d)
			}
			md.ExpiresAt = md.SentAt.Add(o.d)
		case sendIdem:
			md.IdempotencyKey = o.a
		case sendHeader:
			if o.a == "" {
				return invalidOption("WithHeader: empty key")
			}
			md.SetHeader(o.a, o.b)
		default:
			return invalidOption("zero SendOption")
		}
	}
	if !md.DeliverAt.IsZero() && !md.DeliverAt.After(md.SentAt) {
		md.DeliverAt = time.Time{}
	}
	return nil
}
