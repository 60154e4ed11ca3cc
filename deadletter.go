package courier

import (
	"context"
	"time"
)

// Reason says why a message was dead-lettered.
type Reason string

// The reasons a message ends in a dead-letter queue.
const (
	// ReasonMaxAttempts: every attempt the retry policy allows failed.
	ReasonMaxAttempts Reason = "max_attempts"
	// ReasonPermanent: the handler returned an error marked by [Permanent].
	ReasonPermanent Reason = "permanent"
	// ReasonExpired: the message's time to live ran out before it was handled.
	ReasonExpired Reason = "expired"
	// ReasonOverflow: the queue was full and its [Overflow] policy dropped
	// the message.
	ReasonOverflow Reason = "overflow"
	// ReasonShutdown: the bus stopped before the message could be delivered.
	ReasonShutdown Reason = "shutdown"
)

// DeadLetterInfo describes one dead letter without its typed body. The bus
// hook ([WithDeadLetterHook]) receives it; [DeadLetter] embeds it.
type DeadLetterInfo struct {
	// Metadata is the message's metadata when it was dead-lettered: Attempt
	// is its last attempt, Headers its headers.
	Metadata
	// Reason says why the message was dead-lettered.
	Reason Reason
	// Err is the last error: the handler's for ReasonMaxAttempts and
	// ReasonPermanent, [ErrExpired], [ErrAbandoned], or nil when no attempt
	// failed.
	Err error
	// Attempts is how many delivery attempts were made.
	Attempts int
	// FirstAttemptAt and LastAttemptAt are when the first and the last
	// failed attempts ended (for a handler abandoned at shutdown, when it was
	// abandoned); zero when no attempt failed. Successful attempts are not
	// timed: reading the clock costs the hot path more than the rest of a
	// hand-over.
	FirstAttemptAt, LastAttemptAt time.Time
	// DeadLetteredAt is when the message entered the dead-letter queue.
	DeadLetteredAt time.Time

	env Envelope
	mb  *mailbox // the mailbox that dead-lettered it
}

// Payload returns the dead letter's body as an any.
func (d DeadLetterInfo) Payload() any { return d.env.Payload() }

// Description is a sentence for logs and dashboards, like Azure Service Bus's
// DeadLetterErrorDescription.
func (d DeadLetterInfo) Description() string {
	where := d.Destination
	if d.Subscription != "" {
		where += "/" + d.Subscription
	}
	s := "message " + d.ID + " on " + where + " dead-lettered (" + string(d.Reason) + ")"
	if d.Err != nil {
		s += ": " + d.Err.Error()
	}
	return s
}

// DeadLetter is a dead letter with its typed body.
type DeadLetter[T any] struct {
	DeadLetterInfo
	// Body is the message body.
	Body T
}

// DeadLetterQueue is the typed view of one queue's or subscription's dead
// letters. Its methods are safe for concurrent use.
//
// Over a [Transport] the dead letters are in the broker: each call reads or
// changes them there, and List and Count log a broker error and return what
// they have.
type DeadLetterQueue[T any] struct {
	s dlqStore
}

// List returns the dead letters, oldest first.
func (q *DeadLetterQueue[T]) List() []DeadLetter[T] {
	infos := q.s.deadLetters()
	out := make([]DeadLetter[T], len(infos))
	for i, info := range infos {
		out[i] = typedDeadLetter[T](info)
	}
	return out
}

// Count returns how many dead letters the queue holds.
func (q *DeadLetterQueue[T]) Count() int { return q.s.deadLetterCount() }

// Replay sends every dead letter back to its queue or subscription, oldest
// first, and returns how many it sent. See [DeadLetterQueue.ReplayIf].
func (q *DeadLetterQueue[T]) Replay(ctx context.Context) (int, error) {
	return q.ReplayIf(ctx, nil)
}

// ReplayIf sends the dead letters for which keep returns true (all of them
// when keep is nil) back to their queue or subscription, oldest first, and
// returns how many it sent.
//
// A replayed message keeps its ID, correlation IDs, key and headers; its
// attempts start again from zero, and its delay and time to live are cleared.
// It does not pass through send middleware: it is the same message, not a new
// send. Replay blocks like Send when the destination is full; if ctx ends or
// the bus closes first, the letters not yet replayed stay in the dead-letter
// queue and the error says why.
func (q *DeadLetterQueue[T]) ReplayIf(ctx context.Context, keep func(DeadLetter[T]) bool) (int, error) {
	var pred func(DeadLetterInfo) bool
	if keep != nil {
		pred = func(info DeadLetterInfo) bool { return keep(typedDeadLetter[T](info)) }
	}
	return q.s.replay(ctx, pred)
}

// Purge removes every dead letter and returns how many it removed.
func (q *DeadLetterQueue[T]) Purge() int { return q.PurgeIf(nil) }

// PurgeIf removes the dead letters for which keep returns true (all when
// keep is nil) and returns how many it removed.
func (q *DeadLetterQueue[T]) PurgeIf(match func(DeadLetter[T]) bool) int {
	var pred func(DeadLetterInfo) bool
	if match != nil {
		pred = func(info DeadLetterInfo) bool { return match(typedDeadLetter[T](info)) }
	}
	return len(q.s.takeDeadLetters(pred))
}

func typedDeadLetter[T any](info DeadLetterInfo) DeadLetter[T] {
	d := DeadLetter[T]{DeadLetterInfo: info}
	if m, ok := info.env.(*Message[T]); ok {
		d.Body = m.Body
	}
	return d
}
