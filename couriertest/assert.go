package couriertest

import (
	"fmt"
	"reflect"
	"strings"
	"testing"

	"github.com/courierbus/courier"
)

// The assertions settle the bus first ([Harness.Settle]), so a check never
// races the flow it checks; they fail the test with t.Fatalf, printing the
// recorded flow. A nil match matches every message of type T.

// RequireSent asserts that a message of type T matching match was sent or
// published, and returns the first such message.
func RequireSent[T any](t testing.TB, h *Harness, match func(T) bool) *courier.Message[T] {
	t.Helper()
	h.Settle()
	return requireOne(t, h, "sent", Sent[T](h), match)
}

// RequireConsumed asserts that a handler succeeded on a message of type T
// matching match, and returns the first such message.
func RequireConsumed[T any](t testing.TB, h *Harness, match func(T) bool) *courier.Message[T] {
	t.Helper()
	h.Settle()
	return requireOne(t, h, "consumed", Consumed[T](h), match)
}

// RequireConsumedN asserts that handlers succeeded exactly n times on
// messages of type T matching match (counting each subscription's copy and
// each duplicate), and returns them.
func RequireConsumedN[T any](t testing.TB, h *Harness, n int, match func(T) bool) []*courier.Message[T] {
	t.Helper()
	h.Settle()
	got := filter(Consumed[T](h), match)
	if len(got) != n {
		t.Fatalf("couriertest: %d consumed %v match, want %d\n\n%s", len(got), typeName[T](), n, h.Flow())
	}
	return got
}

// RequireNotConsumed asserts that no handler succeeded on a message of type
// T matching match.
func RequireNotConsumed[T any](t testing.TB, h *Harness, match func(T) bool) {
	t.Helper()
	h.Settle()
	if got := filter(Consumed[T](h), match); len(got) > 0 {
		t.Fatalf("couriertest: %d consumed %v match, want none (first: message …%s %s)\n\n%s",
			len(got), typeName[T](), short(got[0].ID), body(got[0].Body), h.Flow())
	}
}

// RequireDeadLettered asserts that a message of type T matching match was
// dead-lettered, marks every such dead letter as expected (so the end of the
// test does not report it), and returns the first.
func RequireDeadLettered[T any](t testing.TB, h *Harness, match func(T) bool) courier.DeadLetter[T] {
	t.Helper()
	h.Settle()
	var first *courier.DeadLetter[T]
	h.mu.Lock()
	for _, e := range h.events {
		body, ok := e.Body.(T)
		if e.Kind != KindDeadLettered || !ok || (match != nil && !match(body)) {
			continue
		}
		h.seen[e] = true
		if first == nil {
			first = &courier.DeadLetter[T]{DeadLetterInfo: e.deadLetter, Body: body}
		}
	}
	h.mu.Unlock()
	if first == nil {
		t.Fatalf("couriertest: no dead-lettered %v matches\n\n%s", typeName[T](), h.Flow())
		return courier.DeadLetter[T]{}
	}
	return *first
}

// RequireNoDeadLetters asserts that nothing was dead-lettered, whatever its
// type.
func RequireNoDeadLetters(t testing.TB, h *Harness) {
	t.Helper()
	h.Settle()
	var lines []string
	for _, e := range h.matching(func(e *Event) bool { return e.Kind == KindDeadLettered }) {
		lines = append(lines, e.describe())
	}
	if len(lines) > 0 {
		t.Fatalf("couriertest: %d dead letter(s), want none:\n  %s\n\n%s", len(lines), strings.Join(lines, "\n  "), h.Flow())
	}
}

func requireOne[T any](t testing.TB, h *Harness, what string, msgs []*courier.Message[T], match func(T) bool) *courier.Message[T] {
	t.Helper()
	got := filter(msgs, match)
	if len(got) == 0 {
		t.Fatalf("couriertest: no %s %v matches (%d %s in all)\n\n%s", what, typeName[T](), len(msgs), what, h.Flow())
		return nil
	}
	return got[0]
}

func filter[T any](msgs []*courier.Message[T], match func(T) bool) []*courier.Message[T] {
	if match == nil {
		return msgs
	}
	var out []*courier.Message[T]
	for _, m := range msgs {
		if match(m.Body) {
			out = append(out, m)
		}
	}
	return out
}

func typeName[T any]() string { return fmt.Sprint(reflect.TypeFor[T]()) }
