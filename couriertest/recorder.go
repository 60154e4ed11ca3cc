package couriertest

import (
	"context"
	"maps"
	"time"

	"github.com/courierbus/courier"
)

// Kind says what happened to a message in an [Event].
type Kind string

// The kinds of event the harness records.
const (
	// KindSent is a send or publish; Err is set when it was refused.
	KindSent Kind = "sent"
	// KindHandled is a delivery attempt whose handler chain returned nil.
	KindHandled Kind = "handled"
	// KindFailed is a delivery attempt that returned an error or panicked.
	KindFailed Kind = "failed"
	// KindRetried is a failed attempt the retry policy scheduled again.
	KindRetried Kind = "retried"
	// KindDeadLettered is a message that entered a dead-letter queue.
	KindDeadLettered Kind = "dead-lettered"
)

// Event is one recorded step of the flow.
type Event struct {
	Kind Kind
	// At is when it happened (virtual time in a synctest bubble).
	At time.Time
	// Meta is the message's metadata at that moment, with its own copy of
	// the headers. Meta.Attempt is the attempt's number for handled and
	// failed events.
	Meta courier.Metadata
	// Body is the message body.
	Body any
	// Err is the handler's error (failed, retried, dead-lettered) or the
	// send's (sent).
	Err error
	// Final is set on a failed attempt that will not be retried.
	Final bool
	// Delay is the backoff before the next attempt of a retried message.
	Delay time.Duration
	// Reason is why a message was dead-lettered.
	Reason courier.Reason

	deadLetter courier.DeadLetterInfo
}

// Events returns every recorded event in the order they happened.
func (h *Harness) Events() []Event {
	h.mu.Lock()
	defer h.mu.Unlock()
	out := make([]Event, len(h.events))
	for i, e := range h.events {
		out[i] = *e
	}
	return out
}

func (h *Harness) record(e *Event) {
	e.At = time.Now()
	h.mu.Lock()
	h.events = append(h.events, e)
	h.mu.Unlock()
}

func snapshot(md *courier.Metadata) courier.Metadata {
	c := *md
	c.Headers = maps.Clone(md.Headers)
	return c
}

// recorder is the bus middleware, outermost, that records sends and attempts.
func (h *Harness) recorder() courier.Middleware {
	return courier.Middleware{
		Name: "couriertest.recorder",
		Send: func(next courier.SendFunc) courier.SendFunc {
			return func(ctx context.Context, env courier.Envelope) error {
				// Read the message before next: once it is accepted a worker
				// may be handling it.
				// Record first, so the send precedes its handling in the flow.
				e := &Event{Kind: KindSent, Meta: snapshot(env.Meta()), Body: env.Payload()}
				h.record(e)
				err := next(ctx, env)
				if err != nil {
					h.mu.Lock()
					e.Err = err
					h.mu.Unlock()
				}
				return err
			}
		},
		Handle: func(next courier.HandlerFunc) courier.HandlerFunc {
			return func(ctx context.Context, env courier.Envelope) (err error) {
				e := &Event{Kind: KindHandled, Meta: snapshot(env.Meta()), Body: env.Payload()}
				defer func() {
					// Record a panic too; the engine turns it into a failure.
					if r := recover(); r != nil {
						err = courier.NewPanicError(r)
					}
					if err != nil {
						e.Kind, e.Err, e.Final = KindFailed, err, !courier.WillRetry(ctx, err)
					}
					h.record(e)
				}()
				return next(ctx, env)
			}
		},
	}
}

func (h *Harness) recordDeadLetter(d courier.DeadLetterInfo) {
	e := &Event{
		Kind: KindDeadLettered, Meta: d.Metadata, Body: d.Payload(),
		Err: d.Err, Reason: d.Reason, deadLetter: d,
	}
	e.Meta.Attempt = d.Attempts
	h.record(e)
}

func (h *Harness) recordRetry(r courier.RetryInfo) {
	h.record(&Event{Kind: KindRetried, Meta: r.Metadata, Err: r.Err, Delay: r.Delay})
}
