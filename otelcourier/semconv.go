package otelcourier

import (
	"context"
	"errors"
	"reflect"

	"go.opentelemetry.io/otel/attribute"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"

	"github.com/courierbus/courier"
)

// ScopeName is the instrumentation scope of every tracer and meter the
// package uses.
const ScopeName = "github.com/courierbus/courier/otelcourier"

// schemaURL is the semantic conventions version the telemetry follows.
const schemaURL = semconv.SchemaURL

// System is the value of messaging.system on every span and metric. The
// conventions list no value for an in-process bus, and allow a custom one.
const System = "courier"

// Operation names (messaging.operation.name), which equal their operation
// types (messaging.operation.type): Send, TrySend, Publish and TryPublish are
// all "send"; each delivery attempt is a "process".
const (
	OperationSend    = "send"
	OperationProcess = "process"
)

// Attributes that the conventions leave to each messaging system, in the
// messaging.courier namespace they reserve for it.
const (
	// AttrDeliveryAttempt is the delivery attempt of a process span: 1 for
	// the first, 2 for the first retry, and so on, counted again from 1
	// after a replay.
	AttrDeliveryAttempt = attribute.Key("messaging.courier.message.delivery_attempt")
	// AttrDeadLetterReason is the [courier.Reason] of a dead letter, on the
	// courier.message.dead_letters metric and on the dead-letter span event.
	AttrDeadLetterReason = attribute.Key("messaging.courier.dead_letter.reason")
)

// Span events.
const (
	// EventDeadLettered is added to a failed process span when the message
	// will not be retried: it goes to its dead-letter queue. It carries
	// error.type and the delivery attempt.
	EventDeadLettered = "courier.message.dead_lettered"
	// EventDuplicateDropped is added to a send span when duplicate detection
	// dropped the message ([courier.ErrDuplicate]). Such a send is not a
	// failure: the span's status stays unset.
	EventDuplicateDropped = "courier.message.duplicate_dropped"
)

// Metric names. The first four are the conventions'; the courier ones count
// what the conventions have no metric for.
const (
	MetricSentMessages       = "messaging.client.sent.messages"
	MetricConsumedMessages   = "messaging.client.consumed.messages"
	MetricProcessDuration    = "messaging.process.duration"
	MetricOperationDuration  = "messaging.client.operation.duration"
	MetricRetries            = "courier.message.retries"
	MetricDeadLetters        = "courier.message.dead_letters"
	MetricDuplicates         = "courier.message.duplicates"
	MetricQueueDepth         = "courier.queue.depth"
	MetricQueueInFlight      = "courier.queue.in_flight"
	MetricQueueScheduled     = "courier.queue.scheduled"
	MetricDeadLetterQueueLen = "courier.dead_letter_queue.depth"
)

// durationBuckets are the bucket boundaries, in seconds, the conventions
// give for messaging durations.
var durationBuckets = []float64{0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10}

var (
	attrSystem      = semconv.MessagingSystemKey.String(System)
	attrOpSend      = semconv.MessagingOperationTypeSend
	attrOpProcess   = semconv.MessagingOperationTypeProcess
	attrOpNameSend  = semconv.MessagingOperationName(OperationSend)
	attrOpNameProc  = semconv.MessagingOperationName(OperationProcess)
	keyDestination  = semconv.MessagingDestinationNameKey
	keySubscription = semconv.MessagingDestinationSubscriptionNameKey
	keyMessageID    = semconv.MessagingMessageIDKey
	keyConversation = semconv.MessagingMessageConversationIDKey
	keyErrorType    = semconv.ErrorTypeKey
)

// destAttrs returns the attributes that name where a message goes or comes
// from.
func destAttrs(dest, sub string) []attribute.KeyValue {
	kv := []attribute.KeyValue{attrSystem, keyDestination.String(dest)}
	if sub != "" {
		kv = append(kv, keySubscription.String(sub))
	}
	return kv
}

// namedErrors are the errors error.type names after their variable.
var namedErrors = []struct {
	err  error
	name string
}{
	{courier.ErrClosed, "courier.ErrClosed"},
	{courier.ErrFull, "courier.ErrFull"},
	{courier.ErrOverflow, "courier.ErrOverflow"},
	{courier.ErrExpired, "courier.ErrExpired"},
	{courier.ErrAbandoned, "courier.ErrAbandoned"},
	{context.Canceled, "context.Canceled"},
	{context.DeadlineExceeded, "context.DeadlineExceeded"},
}

// ErrorType returns the error.type the package records for err, a value of
// low cardinality: the name of a Courier or context sentinel err matches
// ("courier.ErrClosed", "context.DeadlineExceeded", ...),
// "courier.PanicError" for a recovered panic, and otherwise the Go type of
// err, or of its cause when [courier.Permanent] wrapped it
// ("*errors.errorString", "*myapp.ValidationError"). It returns "" for nil.
func ErrorType(err error) string {
	if err == nil {
		return ""
	}
	for _, n := range namedErrors {
		if errors.Is(err, n.err) {
			return n.name
		}
	}
	var pe *courier.PanicError
	if errors.As(err, &pe) {
		return "courier.PanicError"
	}
	// Permanent(cause) itself is of an unexported type: name the cause.
	if cause := errors.Unwrap(err); cause != nil && courier.IsPermanent(err) && !courier.IsPermanent(cause) {
		err = cause
	}
	return reflect.TypeOf(err).String()
}
