package couriertest

import (
	"fmt"
	"strings"
	"time"

	"github.com/courierbus/courier"
)

// Flow returns the recorded flow as text, one line per event: when (from
// the harness's start), what, where, the attempt, the message (the end of
// its ID), its correlation and causation, and the body or the error. The
// assertions print it when they fail; print it yourself with t.Log.
//
//	+0s       sent           orders                      #-  …1c9d0e2a corr=checkout-1 key=alice  {ID:O-1 Amount:0}
//	+0s       failed         orders                      #1  …1c9d0e2a corr=checkout-1  error: amount must be positive
//	+0s       retried        orders                      #1  …1c9d0e2a corr=checkout-1  next attempt in 1s
//	+1s       dead-lettered  orders                      #5  …1c9d0e2a corr=checkout-1  reason=max_attempts error: …
func (h *Harness) Flow() string {
	events := h.Events()
	topics := h.Bus.Stats().Topics
	var b strings.Builder
	ids := map[string]bool{}
	for _, e := range events {
		ids[e.Meta.ID] = true
	}
	fmt.Fprintf(&b, "recorded flow: %d message(s), %d event(s)\n", len(ids), len(events))
	for _, e := range events {
		b.WriteString("  ")
		b.WriteString(h.line(e, topics))
		b.WriteByte('\n')
	}
	return b.String()
}

func (h *Harness) line(e Event, topics map[string]courier.TopicStats) string {
	var b strings.Builder
	where := e.Meta.Destination
	if e.Meta.Subscription != "" {
		where += "/" + e.Meta.Subscription
	}
	kind := string(e.Kind)
	if _, topic := topics[e.Meta.Destination]; topic && e.Kind == KindSent {
		kind = "published"
	}
	attempt := "#-"
	if e.Meta.Attempt > 0 {
		attempt = fmt.Sprintf("#%d", e.Meta.Attempt)
	}
	fmt.Fprintf(&b, "%-9s %-14s %-27s %-3s …%s corr=%s", offset(e.At.Sub(h.start)), kind, where, attempt, short(e.Meta.ID), shortUUID(e.Meta.CorrelationID))
	if e.Meta.CausationID != "" {
		fmt.Fprintf(&b, " cause=…%s", short(e.Meta.CausationID))
	}
	if e.Meta.Key != "" {
		fmt.Fprintf(&b, " key=%s", e.Meta.Key)
	}
	switch e.Kind {
	case KindSent:
		if e.Err != nil {
			fmt.Fprintf(&b, "  REFUSED: %v", e.Err)
		} else {
			fmt.Fprintf(&b, "  %s", body(e.Body))
		}
	case KindFailed:
		fmt.Fprintf(&b, "  error: %v", firstLine(e.Err))
		if e.Final {
			b.WriteString(" (final)")
		}
	case KindRetried:
		fmt.Fprintf(&b, "  next attempt in %v", e.Delay)
	case KindDeadLettered:
		fmt.Fprintf(&b, "  reason=%s", e.Reason)
		if e.Err != nil {
			fmt.Fprintf(&b, " error: %v", firstLine(e.Err))
		}
	}
	return b.String()
}

// describe is a dead letter's one-line summary for failure messages.
func (e *Event) describe() string {
	where := e.Meta.Destination
	if e.Meta.Subscription != "" {
		where += "/" + e.Meta.Subscription
	}
	s := fmt.Sprintf("%s message …%s after %d attempt(s): reason=%s", where, short(e.Meta.ID), e.Meta.Attempt, e.Reason)
	if e.Err != nil {
		s += " error: " + firstLine(e.Err)
	}
	return s + "  " + body(e.Body)
}

func offset(d time.Duration) string {
	if d < time.Millisecond {
		return "+" + d.Round(time.Microsecond).String()
	}
	return "+" + d.Round(time.Millisecond).String()
}

func short(id string) string { return id[max(0, len(id)-8):] }

// shortUUID shortens a correlation ID that is a message ID, and leaves one
// the application chose alone.
func shortUUID(s string) string {
	if len(s) == 36 && s[8] == '-' && s[13] == '-' && s[18] == '-' && s[23] == '-' {
		return "…" + short(s)
	}
	return s
}

// body prints a message body on one line, cut to a readable length.
func body(v any) string {
	s := fmt.Sprintf("%+v", v)
	s = strings.ReplaceAll(s, "\n", " ")
	if len(s) > 80 {
		s = s[:77] + "..."
	}
	return s
}

// firstLine keeps a panic's stack out of the flow.
func firstLine(err error) string {
	s, _, _ := strings.Cut(err.Error(), "\n")
	return s
}
