package courier

import (
	"errors"
	"fmt"
	"runtime/debug"
)

// Sentinel errors. Compare with [errors.Is]: Courier wraps them with details.
var (
	// ErrClosed is returned by sends, Consume and Subscribe once the bus has
	// begun to shut down, and by a blocked Send that was waiting for room when
	// the bus closed.
	ErrClosed = errors.New("courier: bus closed")

	// ErrFull is returned by TrySend and TryPublish when a destination with the
	// Block overflow policy has no room. The message was not accepted.
	ErrFull = errors.New("courier: queue full")

	// ErrOverflow is returned by Send on a queue with the DropNewest overflow
	// policy when the queue was full: the message was accepted straight into the
	// dead-letter queue with reason [ReasonOverflow].
	ErrOverflow = errors.New("courier: queue full, message dead-lettered")

	// ErrEmptyName is returned when a queue, topic or subscription name is empty.
	ErrEmptyName = errors.New("courier: empty name")

	// ErrNilHandler is returned by Consume and Subscribe when the handler is nil.
	ErrNilHandler = errors.New("courier: nil handler")

	// ErrNilBus is returned by NewQueue and NewTopic when the bus is nil.
	ErrNilBus = errors.New("courier: nil bus")

	// ErrTypeMismatch is returned when a name is declared again with another
	// message type, or as a queue when it is a topic (or the reverse).
	ErrTypeMismatch = errors.New("courier: name already declared with another type")

	// ErrDuplicateSubscription is returned by Subscribe when the topic already
	// has a subscription of that name.
	ErrDuplicateSubscription = errors.New("courier: subscription already exists")

	// ErrUnknownSubscription is returned by Topic.Subscription for a name the
	// topic has no subscription of.
	ErrUnknownSubscription = errors.New("courier: unknown subscription")

	// ErrInvalidOption is wrapped by every error about an option's value or
	// about an option given where it does not apply.
	ErrInvalidOption = errors.New("courier: invalid option")

	// ErrShutdownIncomplete is matched by the [*ShutdownError] that Shutdown
	// and Close return when they had to dead-letter messages.
	ErrShutdownIncomplete = errors.New("courier: shutdown dead-lettered undelivered messages")

	// ErrAbandoned is the error recorded on a dead letter whose handler was
	// still running, after its context was cancelled, when the bus stopped.
	ErrAbandoned = errors.New("courier: handler abandoned at shutdown")

	// ErrExpired is the error recorded on a dead letter whose time to live
	// ran out before it was handled.
	ErrExpired = errors.New("courier: message expired")

	// ErrDuplicate is returned by a send that duplicate detection turned
	// away: a message with the same idempotency key was sent to the same
	// destination within the detection window. The earlier message stands;
	// this one was accepted and dropped, so the sender need not retry.
	ErrDuplicate = errors.New("courier: duplicate message")

	// ErrNoReply is what a request's caller gets when the request was
	// acknowledged without its handler running, so without a response: the
	// idempotency middleware found its key done, or other middleware
	// acknowledged it.
	ErrNoReply = errors.New("courier: request acknowledged without a reply")

	// ErrUnsupported is wrapped by the error a declaration returns when the
	// bus's [Transport] cannot give a semantic it asks for.
	ErrUnsupported = errors.New("courier: not supported by the transport")
)

func invalidOption(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrInvalidOption, fmt.Sprintf(format, args...))
}

// PanicError is the failure recorded when a handler or middleware panics. The
// panic is recovered, the attempt counts as failed and the message is retried
// like after any other error.
type PanicError struct {
	// Value is the value the handler passed to panic.
	Value any
	// Stack is the goroutine's stack at the panic, as runtime/debug.Stack
	// formats it.
	Stack []byte
}

// NewPanicError records v and the current goroutine's stack. Middleware that
// recovers panics itself calls it from its deferred function.
func NewPanicError(v any) *PanicError {
	return &PanicError{Value: v, Stack: debug.Stack()}
}

func (e *PanicError) Error() string { return fmt.Sprintf("courier: handler panic: %v", e.Value) }

// Unwrap returns the panic value when it is an error, so errors.Is and
// errors.As see through a panic(err).
func (e *PanicError) Unwrap() error {
	if err, ok := e.Value.(error); ok {
		return err
	}
	return nil
}

type permanentError struct{ err error }

func (e *permanentError) Error() string { return e.err.Error() }
func (e *permanentError) Unwrap() error { return e.err }

// Permanent marks err as not worth retrying: a handler that returns it sends
// its message straight to the dead-letter queue with reason
// [ReasonPermanent]. The cause stays reachable through errors.Is and
// errors.As. Permanent(nil) is nil.
func Permanent(err error) error {
	if err == nil {
		return nil
	}
	return &permanentError{err: err}
}

// IsPermanent reports whether err, or any error it wraps, was marked by
// [Permanent].
func IsPermanent(err error) bool {
	var p *permanentError
	return errors.As(err, &p)
}

// ShutdownError is returned by Shutdown and Close when messages could not be
// delivered before the bus stopped. In memory, each of them is in the
// dead-letter queue of its queue or subscription with reason
// [ReasonShutdown]. Over a [Transport], they stay in the broker instead, for
// the next consumer: Returned counts those this bus had received.
type ShutdownError struct {
	// DeadLettered counts the messages dead-lettered by the stop, abandoned
	// ones included.
	DeadLettered int
	// Abandoned counts the messages whose handlers were still running after
	// their contexts were cancelled and the grace period ran out.
	Abandoned int
	// Returned counts the messages a transport delivered to this bus that
	// the stop handed back to the broker unhandled; the broker delivers them
	// again. Always 0 in memory.
	Returned int
	// Left counts the messages a transport still held, when a Shutdown cut
	// short stopped, for the queues and subscriptions this bus consumes:
	// ready, in flight elsewhere or scheduled. Returned ones are among them.
	// Always 0 in memory, and for Close.
	Left int
	// Cause is why the bus stopped before draining: the Shutdown context's
	// error, or nil for Close.
	Cause error
}

func (e *ShutdownError) Error() string {
	msg := fmt.Sprintf("courier: shutdown dead-lettered %d undelivered message(s)", e.DeadLettered)
	if e.Abandoned > 0 {
		msg += fmt.Sprintf(" (%d abandoned in running handlers)", e.Abandoned)
	}
	if e.Returned > 0 {
		msg += fmt.Sprintf(", handed %d back to the transport", e.Returned)
	}
	if e.Left > 0 {
		msg += fmt.Sprintf(", left %d in the transport", e.Left)
	}
	if e.Cause != nil {
		msg += ": " + e.Cause.Error()
	}
	return msg
}

// Is makes errors.Is(err, ErrShutdownIncomplete) true.
func (e *ShutdownError) Is(target error) bool { return target == ErrShutdownIncomplete }

// Unwrap returns the cause, so errors.Is(err, context.DeadlineExceeded) works.
func (e *ShutdownError) Unwrap() error { return e.Cause }
