package courier

import (
	"log/slog"
	"time"
)

// RetryInfo describes a failed delivery attempt that will be retried: the
// message's metadata as of that attempt, the handler's error, and when the
// next attempt is due. [WithRetryHook] receives it.
type RetryInfo struct {
	Metadata
	// Err is the error the failed attempt returned.
	Err error
	// Delay is the backoff before the next attempt.
	Delay time.Duration
	// RetryAt is when the next attempt becomes due.
	RetryAt time.Time
}

// WithDeadLetterHook registers f to be told of every dead letter of every
// queue and subscription, after it entered its dead-letter queue. Each call
// adds a hook; hooks run in the order they were given. f runs on the
// goroutine that dead-lettered the message (a worker, the scheduler, a
// sender or Shutdown), outside any lock; it must be quick and must not block
// on the bus. A panic in f is recovered and logged.
func WithDeadLetterHook(f func(DeadLetterInfo)) BusOption {
	return func(b *Bus) {
		if f != nil {
			b.deadHooks = append(b.deadHooks, f)
		}
	}
}

// WithRetryHook registers f to be told of every failed delivery attempt that
// the retry policy will retry, once the retry is scheduled. Each call adds a
// hook. f runs on the worker's goroutine, outside any lock, under the same
// rules as a dead-letter hook ([WithDeadLetterHook]). Failures that end in a
// dead letter go to the dead-letter hooks instead.
func WithRetryHook(f func(RetryInfo)) BusOption {
	return func(b *Bus) {
		if f != nil {
			b.retryHooks = append(b.retryHooks, f)
		}
	}
}

// announce logs a dead letter and tells the hooks. Every record
// deadLetterLocked returns must be announced exactly once.
func (b *Bus) announce(d DeadLetterInfo) {
	defer b.announced()
	b.logger.Error("courier: message dead-lettered",
		slog.String("destination", d.Destination),
		slog.String("subscription", d.Subscription),
		slog.String("message_id", d.ID),
		slog.String("correlation_id", d.CorrelationID),
		slog.String("reason", string(d.Reason)),
		slog.Int("attempts", d.Attempts),
		slog.Any("error", d.Err))
	// d.mb, not the envelope's: a Replay may already be moving the
	// envelope elsewhere.
	if mb := d.mb; mb != nil && mb.onDead != nil {
		b.runHook("dead-letter", func() { mb.onDead(d) })
	}
	for _, h := range b.deadHooks {
		b.runHook("dead-letter", func() { h(d) })
	}
}

// announceRetry tells the retry hooks of a scheduled retry. info was copied
// under the mailbox lock.
func (b *Bus) announceRetry(info *RetryInfo) {
	defer b.announced()
	for _, h := range b.retryHooks {
		b.runHook("retry", func() { h(*info) })
	}
}

// announced ends an announcement; WaitIdle waits for every one to end, so a
// test that waited sees what the hooks recorded.
func (b *Bus) announced() {
	if b.announcing.Add(-1) == 0 && b.idleWaiters.Load() > 0 {
		b.pokeIdle()
	}
}

func (b *Bus) runHook(kind string, f func()) {
	defer func() {
		if r := recover(); r != nil {
			b.logger.Error("courier: "+kind+" hook panicked", slog.Any("panic", r))
		}
	}()
	f()
}
