package courier

import (
	"context"
	"time"

	"github.com/cenkalti/backoff/v4"
)

// Retry defaults, used for every zero field of a [RetryPolicy].
const (
	DefaultMaxAttempts     = 5
	DefaultInitialInterval = 100 * time.Millisecond
	DefaultMaxInterval     = 30 * time.Second
	DefaultMultiplier      = 2.0
	DefaultJitter          = 0.2
)

// RetryPolicy says how often and how soon a failed message is delivered
// again. Its zero value means the defaults written beside each field, so
// RetryPolicy{MaxAttempts: 3} changes the attempts and keeps the rest.
//
// The delay before retry n (n = 1 after the first failure) is
// InitialInterval × Multiplier^(n-1), capped at MaxInterval, then spread by
// ±Jitter of itself, as github.com/cenkalti/backoff/v4 computes it. A message
// waiting for its retry holds no worker, goroutine or timer: the bus keeps one
// schedule for all of them.
type RetryPolicy struct {
	// MaxAttempts is the number of delivery attempts, the first included,
	// before a failing message is dead-lettered with reason
	// [ReasonMaxAttempts]. 1 disables retries. Default 5.
	MaxAttempts int
	// InitialInterval is the delay before the first retry. Default 100ms.
	InitialInterval time.Duration
	// MaxInterval caps the delay between two attempts. Default 30s.
	MaxInterval time.Duration
	// Multiplier grows the delay after each retry; it must be at least 1.
	// Default 2.
	Multiplier float64
	// Jitter spreads each delay uniformly over ±Jitter of itself, so that
	// messages that failed together do not retry together. It must be at most
	// 1. Default 0.2; a negative value disables jitter.
	Jitter float64
	// NewBackOff, when set, replaces the exponential schedule: it is called
	// once per failing message, and its NextBackOff gives the delay before each
	// retry (backoff.Stop dead-letters the message). MaxAttempts still applies.
	NewBackOff func() backoff.BackOff
}

func (p RetryPolicy) withDefaults() RetryPolicy {
	if p.MaxAttempts == 0 {
		p.MaxAttempts = DefaultMaxAttempts
	}
	if p.InitialInterval == 0 {
		p.InitialInterval = DefaultInitialInterval
	}
	if p.MaxInterval == 0 {
		p.MaxInterval = max(DefaultMaxInterval, p.InitialInterval)
	}
	if p.Multiplier == 0 {
		p.Multiplier = DefaultMultiplier
	}
	switch {
	case p.Jitter == 0:
		p.Jitter = DefaultJitter
	case p.Jitter < 0:
		p.Jitter = 0
	}
	return p
}

func (p RetryPolicy) validate() error {
	switch {
	case p.MaxAttempts < 0:
		return invalidOption("RetryPolicy.MaxAttempts %d is negative", p.MaxAttempts)
	case p.InitialInterval < 0:
		return invalidOption("RetryPolicy.InitialInterval %v is negative", p.InitialInterval)
	case p.MaxInterval < 0:
		return invalidOption("RetryPolicy.MaxInterval %v is negative", p.MaxInterval)
	case p.MaxInterval != 0 && p.MaxInterval < p.InitialInterval:
		return invalidOption("RetryPolicy.MaxInterval %v is below InitialInterval %v", p.MaxInterval, p.InitialInterval)
	case p.Multiplier != 0 && p.Multiplier < 1:
		return invalidOption("RetryPolicy.Multiplier %v is below 1", p.Multiplier)
	case p.Jitter > 1:
		return invalidOption("RetryPolicy.Jitter %v is above 1", p.Jitter)
	}
	return nil
}

// newBackOff returns the delay schedule for one failing message. p has its
// defaults applied.
func (p RetryPolicy) newBackOff() backoff.BackOff {
	if p.NewBackOff != nil {
		if b := p.NewBackOff(); b != nil {
			return b
		}
	}
	b := &backoff.ExponentialBackOff{
		InitialInterval:     p.InitialInterval,
		RandomizationFactor: p.Jitter,
		Multiplier:          p.Multiplier,
		MaxInterval:         p.MaxInterval,
		MaxElapsedTime:      0, // MaxAttempts bounds the retries, not elapsed time
		Stop:                backoff.Stop,
		Clock:               backoff.SystemClock,
	}
	b.Reset()
	return b
}

// WillRetry reports whether the engine will retry the message being handled
// under ctx if its handling chain returns err now: false for a nil err, a
// [Permanent] error, the last attempt of the retry policy, a backoff that
// gives up, a retry that would come after the message expires, or a ctx that
// is not a handler's. Middleware uses it to tell a failure that will be
// retried from one that ends in a dead letter (tracing, logging levels). It
// must be called on the handler's goroutine. [FailureOutcome] also gives the
// dead letter's reason.
func WillRetry(ctx context.Context, err error) bool {
	retry, _ := FailureOutcome(ctx, err)
	return retry
}

// FailureOutcome says what follows if the handling chain of the message
// being handled under ctx returns err now: a retry (true, ""), or a dead
// letter with its reason (false, reason). The reason is empty when err is nil
// or ctx is not a handler's. Like [WillRetry], it must be called on the
// handler's goroutine. Over a [Transport], a failure while the bus stops is a
// retry: the message goes back to the broker for the next consumer.
func FailureOutcome(ctx context.Context, err error) (retry bool, reason Reason) {
	env, ok := MessageFromContext(ctx)
	if err == nil || !ok {
		return false, ""
	}
	mb := env.state().mb
	if mb == nil {
		return false, ""
	}
	if mb.bus.closing.Load() && mb.bus.handlerCtx.Err() != nil {
		if mb.remote != nil {
			return true, "" // handed back to the broker, which delivers it again
		}
		return false, ReasonShutdown
	}
	reason, delay := mb.decide(env, err)
	if reason != "" {
		return false, reason
	}
	md := env.Meta()
	if !md.ExpiresAt.IsZero() && !time.Now().Add(delay).Before(md.ExpiresAt) {
		return false, ReasonExpired
	}
	return true, ""
}
