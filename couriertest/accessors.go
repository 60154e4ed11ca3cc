package couriertest

import (
	"github.com/courierbus/courier"
)

// Failure is one failed delivery attempt of a message of type T.
type Failure[T any] struct {
	// Message is the message as the attempt saw it (Attempt is its number).
	Message *courier.Message[T]
	// Err is what the handler chain returned (a *courier.PanicError for a
	// panic).
	Err error
	// Final is set when the attempt was not retried.
	Final bool
}

// Sent returns the messages of type T that the bus accepted from a send or a
// publish, in order. Refused sends (a full queue, a closed bus, a duplicate)
// are left out; [Harness.Events] has them.
func Sent[T any](h *Harness) []*courier.Message[T] {
	return collect[T](h, func(e *Event) bool { return e.Kind == KindSent && e.Err == nil })
}

// Published returns the messages of type T accepted by a topic, in order.
func Published[T any](h *Harness) []*courier.Message[T] {
	topics := h.Bus.Stats().Topics
	return collect[T](h, func(e *Event) bool {
		_, topic := topics[e.Meta.Destination]
		return e.Kind == KindSent && e.Err == nil && topic
	})
}

// Consumed returns the messages of type T whose handler succeeded, once per
// success: a message published to a topic appears once for each
// subscription that handled it (see Metadata.Subscription).
func Consumed[T any](h *Harness) []*courier.Message[T] {
	return collect[T](h, func(e *Event) bool { return e.Kind == KindHandled })
}

// Failed returns every failed delivery attempt of a message of type T.
func Failed[T any](h *Harness) []Failure[T] {
	var out []Failure[T]
	for _, e := range h.matching(func(e *Event) bool { return e.Kind == KindFailed }) {
		if m, ok := message[T](e); ok {
			out = append(out, Failure[T]{Message: m, Err: e.Err, Final: e.Final})
		}
	}
	return out
}

// DeadLettered returns the messages of type T that were dead-lettered, with
// the reason and error, in order. It does not mark them as expected; the
// RequireDeadLettered assertion does.
func DeadLettered[T any](h *Harness) []courier.DeadLetter[T] {
	var out []courier.DeadLetter[T]
	for _, e := range h.matching(func(e *Event) bool { return e.Kind == KindDeadLettered }) {
		if body, ok := e.Body.(T); ok {
			out = append(out, courier.DeadLetter[T]{DeadLetterInfo: e.deadLetter, Body: body})
		}
	}
	return out
}

func (h *Harness) matching(keep func(*Event) bool) []*Event {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []*Event
	for _, e := range h.events {
		if keep(e) {
			out = append(out, e)
		}
	}
	return out
}

func collect[T any](h *Harness, keep func(*Event) bool) []*courier.Message[T] {
	var out []*courier.Message[T]
	for _, e := range h.matching(keep) {
		if m, ok := message[T](e); ok {
			out = append(out, m)
		}
	}
	return out
}

// message rebuilds a typed message from an event, or reports that the body
// is not a T.
func message[T any](e *Event) (*courier.Message[T], bool) {
	body, ok := e.Body.(T)
	if !ok {
		return nil, false
	}
	return &courier.Message[T]{Metadata: snapshot(&e.Meta), Body: body}, true
}
