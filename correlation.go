package courier

import "context"

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
		pm := parent.Meta()
		md.CorrelationID = pm.CorrelationID
		md.CausationID = pm.ID
		return
	}
	if id, ok := ctx.Value(correlationKey{}).(string); ok {
		md.CorrelationID = id
		return
	}
	md.CorrelationID = md.ID
}
