package courier

import "context"

// endpoint is the boundary between the typed layer (Queue, Topic,
// DeadLetterQueue, Bus) and the engine that stores and delivers messages.
// Everything above it is transport-neutral: envelopes, options, middleware
// chains, correlation. The in-memory engine, *mailbox, is the only
// implementation today; a broker transport (NATS JetStream) implements the
// same operations over a stream and its consumers.
//
// Each method states a guarantee the typed layer relies on, and which the
// conformance tests pin:
//   - put accepts a message or says why not (ErrFull, ErrOverflow, ErrClosed,
//     the context's error); an accepted message ends handled or dead-lettered.
//   - reserve, commit and unreserve make a publish all or nothing across
//     subscriptions.
//   - dropNew dead-letters a message the overflow policy turned away.
//   - the dead-letter operations keep the oldest-first order and the bound.
type endpoint interface {
	put(ctx context.Context, env Envelope) error
	reserve(ctx context.Context, try bool) error
	commit(env Envelope)
	unreserve()
	dropNew(env Envelope)

	deadLetters() []DeadLetterInfo
	deadLetterCount() int
	takeDeadLetters(match func(DeadLetterInfo) bool) []DeadLetterInfo
	replay(ctx context.Context, match func(DeadLetterInfo) bool) (int, error)

	snapshot() Stats
	countFiltered()
}

var _ endpoint = (*mailbox)(nil)
