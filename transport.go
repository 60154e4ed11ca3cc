package courier

import (
	"context"
	"time"
)

// Transport is a message broker that stores and delivers the messages of a
// bus's queues and topics in place of the in-memory engine: give one to
// [New] with [WithTransport], and the same Queue, Topic, middleware, retry
// policies and dead-letter queues run over it. Package
// github.com/courierbus/courier/transport/natsjs implements it over NATS
// JetStream.
//
// The bus keeps the semantics: it runs the middleware chain and the handler,
// applies the retry policy (a failed attempt is handed back with the delay
// the policy draws, or dead-lettered with its reason), checks times to live,
// counts, and calls the hooks. A transport supplies storage and delivery:
// durable sends, competing receivers, per-key order, delays, redelivery after
// a delay, and a dead-letter store per queue or subscription. A transport
// that cannot give a semantic a declaration asks for returns an error
// wrapping [ErrUnsupported] from Declare, so the gap shows when the queue is
// declared, not when a message needs it.
//
// Methods may be called from many goroutines at once.
type Transport interface {
	// Declare creates the destination spec describes, or opens it when it
	// exists (in this process or another), and returns it. NewQueue and
	// NewTopic call it once per name and bus.
	Declare(ctx context.Context, spec DestinationSpec) (Destination, error)
}

// DestinationSpec describes a queue or topic to a [Transport].
type DestinationSpec struct {
	// Name is the queue's or topic's name.
	Name string
	// Topic is true for a topic: every subscription receives a copy of a
	// message sent to it.
	Topic bool
	// Capacity bounds how many messages a queue, or each subscription of a
	// topic, holds; 0 means the transport's own limits. It is set only when
	// the declaration gave [Capacity].
	Capacity int
	// Overflow is what a full destination does with one more message.
	Overflow Overflow
	// DeadLetterCapacity bounds each dead-letter store; the oldest dead
	// letter is evicted to make room.
	DeadLetterCapacity int
}

// Destination is a declared queue or topic on a [Transport].
type Destination interface {
	// Send stores env. It returns nil only once the message is stored as
	// durably as the transport promises; a topic stores one message that
	// every subscription receives. When the destination is full it returns
	// [ErrFull] at once if wait is false, else waits for room until ctx ends.
	// A message the transport recognises as a duplicate (same ID or
	// idempotency key within its window) returns an error wrapping
	// [ErrDuplicate]. Send reads env; it must not keep it.
	Send(ctx context.Context, env Envelope, wait bool) error
	// Inbox opens the inbox of a queue (subscription "") or of one
	// subscription of a topic, creating its durable state when it does not
	// exist. A subscription receives the messages sent after it was first
	// created.
	Inbox(ctx context.Context, subscription string) (Inbox, error)
}

// Inbox is what one queue, or one subscription of a topic, holds: messages
// to deliver and dead letters.
type Inbox interface {
	// Receive starts a receiver that competes with every other receiver of
	// the inbox, in this process or another. prefetch is how many messages
	// it may hold before Next takes them.
	Receive(ctx context.Context, decode Decoder, prefetch int) (Receiver, error)
	// Redeliver stores env in this inbox alone, for a replayed dead letter.
	Redeliver(ctx context.Context, env Envelope) error
	// DeadLetter stores info, whose Payload is the delivery's message, in
	// the inbox's dead-letter store, and only then settles d so that it is
	// not delivered again.
	DeadLetter(ctx context.Context, d Delivery, info DeadLetterInfo) error
	// DeadLetters returns the stored dead letters, oldest first.
	DeadLetters(ctx context.Context, decode Decoder) ([]StoredDeadLetter, error)
	// RemoveDeadLetter deletes one dead letter by its Ref.
	RemoveDeadLetter(ctx context.Context, ref string) error
	// Stats reads the inbox's gauges from the broker.
	Stats(ctx context.Context) (InboxStats, error)
}

// Receiver hands an inbox's messages to the bus's workers.
type Receiver interface {
	// Next blocks until a message is delivered or ctx ends. After Close it
	// returns [ErrClosed].
	Next(ctx context.Context) (Delivery, error)
	// Close stops receiving and hands back every message received but not
	// yet returned by Next, so another receiver gets it at once.
	Close() error
}

// Delivery is one delivery attempt of a message from a [Receiver].
type Delivery interface {
	// Message is the decoded message; its Attempt counts this delivery.
	Message() Envelope
	// Ack settles the message as handled.
	Ack(ctx context.Context) error
	// Nak hands the message back to be delivered again after delay.
	Nak(ctx context.Context, delay time.Duration) error
}

// Decoder builds the typed message a transport delivers, from its metadata
// and a function that decodes the body into the pointer it is given. The
// bus passes one to [Inbox.Receive] and [Inbox.DeadLetters].
type Decoder func(md Metadata, decodeBody func(into any) error) (Envelope, error)

// StoredDeadLetter is one dead letter read back from an [Inbox]: Ref names
// it for RemoveDeadLetter, Message is its decoded message, and Info what was
// stored with it (Info.Err keeps only the error's text).
type StoredDeadLetter struct {
	Ref     string
	Info    DeadLetterInfo
	Message Envelope
}

// InboxStats are an inbox's gauges as the broker sees them.
type InboxStats struct {
	// Depth counts messages not yet delivered.
	Depth int
	// InFlight counts messages delivered and not yet settled, retries
	// waiting for their delay included.
	InFlight int
	// Scheduled counts messages waiting for their delivery time.
	Scheduled int
	// DeadLetters counts the dead letters stored.
	DeadLetters int
}

// WithTransport makes the bus store and deliver every queue and topic on t
// instead of in memory. See [Transport] for what changes: sends wait for the
// broker, counters in Stats count this process's work while gauges are the
// broker's, Shutdown leaves what it could not handle in the broker, and a
// request queue's replies travel back through the broker (see [WithName]).
func WithTransport(t Transport) BusOption {
	return func(b *Bus) { b.transport = t }
}

// decodeMessage is the [Decoder] of messages of type T.
func decodeMessage[T any](md Metadata, decodeBody func(into any) error) (Envelope, error) {
	m := &Message[T]{Metadata: md}
	if err := decodeBody(&m.Body); err != nil {
		return nil, err
	}
	return m, nil
}

// dlqStore is what a [DeadLetterQueue] works on: a mailbox, or a transport's
// inbox.
type dlqStore interface {
	deadLetters() []DeadLetterInfo
	deadLetterCount() int
	takeDeadLetters(match func(DeadLetterInfo) bool) []DeadLetterInfo
	replay(ctx context.Context, match func(DeadLetterInfo) bool) (int, error)
	snapshot() Stats
}

var (
	_ dlqStore = (*mailbox)(nil)
	_ dlqStore = (*remoteInbox)(nil)
)
