package courier

import (
	"context"
	"strings"
	"unsafe"
)

type messageKey struct{}

type correlationKey struct{}

// WithCorrelationID returns a context whose sends give their messages
// correlation ID id, for code outside a handler that already has a conversation
// ID (an HTTP request ID, say). Inside a handler the handled message's
// correlation ID wins. An empty id leaves ctx as it is.
func WithCorrelationID(ctx context.Context, id string) context.Context {
	if id == "" {
		return ctx
	}
	return context.WithValue(ctx, correlationKey{}, id)
}

// MessageFromContext returns the message being handled when ctx is, or
// derives from, a handler's context.
func MessageFromContext(ctx context.Context) (Envelope, bool) {
	env, ok := ctx.Value(messageKey{}).(Envelope)
	return env, ok
}

// CorrelationIDFromContext returns the correlation ID a message sent with ctx
// would inherit: the handled message's inside a handler, the one set by
// [WithCorrelationID], or "" when neither applies.
func CorrelationIDFromContext(ctx context.Context) string {
	if env, ok := MessageFromContext(ctx); ok {
		return env.Meta().CorrelationID
	}
	id, _ := ctx.Value(correlationKey{}).(string)
	return id
}

// stamp fills in the identity of a new message sent with ctx.
func stamp(ctx context.Context, md *Metadata, idText *[36]byte) {
	hi, lo := newUUIDv7(md.SentAt)
	md.ID = formatID(hi, lo, idText)
	if parent, ok := ctx.Value(messageKey{}).(Envelope); ok {
		inherit(md, parent.Meta())
		return
	}
	if id, ok := ctx.Value(correlationKey{}).(string); ok {
		md.CorrelationID = id
		return
	}
	md.CorrelationID = md.ID
}

// inherit gives md, sent from the handler of pm's message, its causation and
// correlation IDs. A message's ID text lives in the message's own memory (see
// formatID), so the parent's ID string would keep the parent alive, and
// through its own CausationID every message before it: a flow in which each
// handler sends the next message would keep its whole history, bodies
// included, for as long as it runs. The causation ID is therefore a copy, one
// small allocation for a send from a handler; the correlation ID shares it
// when the parent began the flow, and is otherwise already such a copy, or
// the sender's own string.
func inherit(md, pm *Metadata) {
	md.CausationID = strings.Clone(pm.ID)
	if sameText(pm.CorrelationID, pm.ID) {
		md.CorrelationID = md.CausationID
	} else {
		md.CorrelationID = pm.CorrelationID
	}
}

// sameText reports whether a and b are the same bytes in memory, not merely
// equal.
func sameText(a, b string) bool {
	return len(a) == len(b) && unsafe.StringData(a) == unsafe.StringData(b)
}
