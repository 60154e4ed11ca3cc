package courier

import (
	"context"
	"maps"
	"time"
	"unsafe"

	"github.com/cenkalti/backoff/v4"
)

// Metadata is what Courier knows about a message apart from its body. Every
// [Message] embeds it, so a handler reads m.ID, m.CorrelationID or m.Attempt
// directly; middleware reaches it through [Envelope.Meta].
//
// Handlers and middleware may read every field. Middleware on the send path may
// also set Headers (with [Metadata.SetHeader]); the engine owns the rest.
type Metadata struct {
	// ID identifies the message: a UUID version 7 in its 36-character text
	// form, so IDs sort roughly by send time. The copies a topic fans out to
	// its subscriptions share the published message's ID.
	//
	// The text lives in the message's own memory, which saves an allocation
	// per send: code that keeps the ID beyond the handler's call, in a map of
	// IDs seen, say, keeps the whole message alive with it, body included.
	// Keep strings.Clone(m.ID) instead. Courier itself does so where it keeps
	// IDs: the CausationID and CorrelationID of a message sent from a handler,
	// an [Operations] entry, a [RequestError].
	ID string
	// CorrelationID ties together every message of one conversation or flow.
	// A message sent from inside a handler inherits the handled message's
	// correlation ID; otherwise it is the one set by [WithCorrelationID] on the
	// send context, or else the message's own ID.
	CorrelationID string
	// CausationID is the ID of the message whose handler sent this one, or
	// empty for a message sent from outside any handler.
	CausationID string
	// IdempotencyKey names the unit of work the message stands for, so that
	// duplicate detection and effectively-once handling can recognise a
	// resend: set with [WithIdempotencyKey] or derived from the body by an
	// [IdempotencyKey] option, else empty. Copies a topic fans out share it.
	IdempotencyKey string
	// Key is the ordering key set with [WithKey], or empty. Messages of one
	// key are handled one at a time in the order they became due.
	Key string
	// Destination is the name of the queue or topic the message was sent to.
	Destination string
	// Subscription is the name of the topic subscription this copy is
	// delivered to, or empty for a queue.
	Subscription string
	// Headers holds string headers set with [WithHeader] or by middleware. It
	// is nil when there are none; use [Metadata.SetHeader] to add one.
	Headers map[string]string
	// Attempt counts delivery attempts: 1 during the first, 2 during the first
	// retry, and so on. It is 0 before the first delivery and after a replay.
	Attempt int
	// SentAt is when the message was sent or published.
	SentAt time.Time
	// DeliverAt is when a delayed message becomes due ([WithDelay],
	// [WithDeliverAt]); zero means at once.
	DeliverAt time.Time
	// ExpiresAt is when the message's time to live ([WithTTL]) runs out; zero
	// means never. A message not handled by then is dead-lettered with reason
	// [ReasonExpired], and the handler's context carries this deadline.
	ExpiresAt time.Time
}

// Header returns the value of header key, or "" when it is not set.
func (md *Metadata) Header(key string) string { return md.Headers[key] }

// SetHeader sets header key to value, creating the map when needed.
func (md *Metadata) SetHeader(key, value string) {
	if md.Headers == nil {
		md.Headers = make(map[string]string, 4)
	}
	md.Headers[key] = value
}

// Message is one typed message: its body and its [Metadata]. Handlers receive
// a *Message[T]; it is valid for the duration of the call and must not be kept
// or changed after the handler returns, because a retry reuses it.
type Message[T any] struct {
	Metadata
	// Body is the value that was sent.
	Body T

	st msgState
}

// Envelope is the non-generic view of a message that middleware works on, so
// one middleware serves every queue and topic whatever its message type. Every
// *[Message] is an Envelope; no other type can be.
type Envelope interface {
	// Meta returns the message's metadata. The pointer is to the message
	// itself: changes are seen by the rest of the chain.
	Meta() *Metadata
	// Payload returns the message body as an any. For a non-pointer body it
	// allocates a copy, so keep it off hot paths that do not need it.
	Payload() any

	state() *msgState
	clone() Envelope
	clones(n int) [maxClones]Envelope
	detached() Envelope
}

// Meta implements [Envelope].
func (m *Message[T]) Meta() *Metadata { return &m.Metadata }

// Payload implements [Envelope]; it returns m.Body.
func (m *Message[T]) Payload() any { return m.Body }

func (m *Message[T]) state() *msgState { return &m.st }

// clone makes the copy one topic subscription receives: same metadata and
// body, its own headers and its own delivery state.
func (m *Message[T]) clone() Envelope {
	c := new(Message[T])
	m.copyTo(c)
	return c
}

func (m *Message[T]) copyTo(c *Message[T]) {
	c.Metadata, c.Body = m.Metadata, m.Body
	c.Headers = maps.Clone(m.Headers)
	c.st.try = m.st.try
}

// clones returns n copies of m (1 ≤ n ≤ maxClones) in the first n elements,
// made as clone makes them but in one allocation: a publish to several
// subscriptions pays for one. The copies keep each other's memory alive until
// all are unreachable, so a copy that outlives its delivery (a dead letter)
// is detached first. The copies come back by value, not through a slice the
// caller passes in: that slice would escape to the heap.
func (m *Message[T]) clones(n int) (out [maxClones]Envelope) {
	block := make([]Message[T], n)
	for i := range block {
		c := &block[i]
		m.copyTo(c)
		if n > 1 {
			c.st.flags |= inBlock
		}
		out[i] = c
	}
	return out
}

// maxClones bounds the copies clones makes at once.
const maxClones = 7

// detached returns m, or, when m is one of a block made by clones, a copy of
// it in an allocation of its own with the same state. The copy's ID text is
// its own too: the copies of a publish share the published message's ID,
// whose text lives in the published message. Only the message's owner may
// call it: the mailbox under mb.mu once the message is done.
func (m *Message[T]) detached() Envelope {
	if m.st.flags&inBlock == 0 {
		return m
	}
	c := new(Message[T])
	*c = *m
	c.st.flags &^= inBlock
	c.st.ctx = msgCtx{} // it refers to m; usedCtx stays set, so it is not reused
	if len(m.ID) == len(c.st.idText) {
		copy(c.st.idText[:], m.ID)
		c.ID = unsafe.String(&c.st.idText[0], len(c.st.idText))
		if sameText(m.CorrelationID, m.ID) {
			c.CorrelationID = c.ID // the published message began its flow
		}
	}
	return c
}

// CloneEnvelope returns a new, unsent message with env's metadata, headers and
// body: the same ID, correlation and idempotency key, no delivery state (its
// attempt count is zero), and the same way of sending (a copy of a TrySend
// never waits for room either). Send middleware can pass the copy to next to
// send the message a second time, as a broker that redelivers would; nothing
// else needs it.
func CloneEnvelope(env Envelope) Envelope {
	c := env.clone()
	c.Meta().Attempt = 0
	return c
}

// msgState is the engine's bookkeeping for one message. It lives inside the
// message's own allocation; the mailbox that holds the message guards it.
// Its fields are ordered to pack tightly: every byte here is allocated, and
// cleared, once per message. What only a delayed, retried or failed message
// needs is out of line, in x.
type msgState struct {
	idText    [36]byte // backing array of Metadata.ID for messages made here
	phase     phase    // guarded by mb.mu once enqueued
	holdsLane bool     // the message is its key's current one: later ones wait for it
	try       bool     // sent with TrySend/TryPublish: never wait for room
	flags     msgFlags

	mb  *mailbox  // where the message lives; nil before it is enqueued
	x   *msgExtra // made under mb.mu (or by the message's only owner) on first need
	ctx msgCtx    // the first delivery's handler context, without an allocation
}

// msgExtra is the state of a message that waits for a time or has failed:
// kept out of line so that a message handled at its first attempt, the
// common case, does not allocate or clear it. A delayed message needs only
// its first part.
type msgExtra struct {
	due time.Time   // when a scheduled message becomes ready
	seq uint64      // scheduling order, to break ties between equal due times
	f   *msgFailure // made at the first failed attempt
}

// msgFailure is what the engine keeps of a message's failed attempts.
type msgFailure struct {
	backoff  backoff.BackOff // made on the first failure; only the worker touches it
	delay    time.Duration   // the backoff drawn for attempt delayFor
	delayFor int             // the attempt delay was drawn for; 0 for none

	// Failed (or abandoned) attempts: when the first and the last ended, and
	// the last error.
	first, last time.Time
	lastErr     error
}

// extraLocked returns st.x, making it when needed; failureLocked likewise
// returns st.x.f. The caller holds mb.mu, or is the message's only owner
// (before it is enqueued, or a transport's delivery).
func (st *msgState) extraLocked() *msgExtra {
	if st.x == nil {
		st.x = new(msgExtra)
	}
	return st.x
}

func (st *msgState) failureLocked() *msgFailure {
	x := st.extraLocked()
	if x.f == nil {
		x.f = new(msgFailure)
	}
	return x.f
}

// msgFlags are what the engine knows of a message besides its phase.
type msgFlags uint8

const (
	usedCtx msgFlags = 1 << iota // the inline ctx served a delivery already
	inBlock                      // one of the fan-out copies made together by clones
)

type phase uint8

const (
	phaseNew       phase = iota // not yet owned by a mailbox
	phaseReady                  // in the ready ring or a key lane
	phaseScheduled              // waiting in the scheduler
	phaseInFlight               // a handler has it
	phaseDone                   // handled or dead-lettered; its slot is free
)

// attemptFailed records, under mb.mu, the end of a failed (or abandoned)
// attempt and its error (nil for an abandoned one).
func (st *msgState) attemptFailed(now time.Time, err error) {
	f := st.failureLocked()
	if f.first.IsZero() {
		f.first = now
	}
	f.last = now
	if err != nil {
		f.lastErr = err
	}
}

// failures returns when st's first and last failed attempts ended and the
// last error: zeros when none has failed.
func (st *msgState) failures() (first, last time.Time, lastErr error) {
	if x := st.x; x != nil && x.f != nil {
		return x.f.first, x.f.last, x.f.lastErr
	}
	return first, last, nil
}

// msgCtx is a handler's context: the worker's context plus the message, so
// [MessageFromContext] and sends from inside the handler find it.
type msgCtx struct {
	context.Context
	env Envelope
}

func (c *msgCtx) Value(key any) any {
	if key == (messageKey{}) {
		return c.env
	}
	return c.Context.Value(key)
}

// handlerContext returns the context a delivery attempt runs under. The first
// attempt uses the context stored in the message; a retry allocates a fresh one
// so that a goroutine the first attempt leaked cannot observe the change.
func handlerContext(parent context.Context, env Envelope) *msgCtx {
	st := env.state()
	if st.flags&usedCtx == 0 {
		st.flags |= usedCtx
		st.ctx = msgCtx{Context: parent, env: env}
		return &st.ctx
	}
	return &msgCtx{Context: parent, env: env}
}
