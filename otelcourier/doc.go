// Package otelcourier instruments a Courier bus with OpenTelemetry traces
// and metrics that follow the messaging semantic conventions
// (https://opentelemetry.io/docs/specs/semconv/messaging/), so that a trace
// crosses the asynchronous hop from a sender to every handler of its
// message, through retries, delays, dead letters and replays.
//
// It uses only the OpenTelemetry API: install an SDK (or not) as the program
// sees fit. Three calls wire it up:
//
//	bus := courier.New(otelcourier.BusOptions()...)      // retries, dead letters
//	bus.Use(otelcourier.Middleware())                     // spans, messaging metrics
//	reg, err := otelcourier.ObserveBus(bus)               // depth, in flight, ...
//	defer reg.Unregister()
//
// # Spans
//
// Every Send, TrySend, Publish and TryPublish makes a PRODUCER span named
// "send {destination}" (a queue or topic name). Its context, the message's
// creation context, is written into the message headers by the propagator
// (W3C traceparent by default, see [WithPropagator]) before the message is
// accepted; the headers stay with the message through retries, delays,
// dead-lettering and replay, and every copy a topic fans out carries them.
//
// Every delivery attempt makes a CONSUMER span named "process
// {destination}", linked to the creation context. By default it starts a
// trace of its own, as the conventions recommend for messages that may be
// handled much later or many times; [WithParentProcessSpan] makes it a child
// of the send span instead. The handler runs under the process span, so what
// it sends is part of that trace.
//
// Attributes: messaging.system is "courier" ([System]);
// messaging.operation.type and messaging.operation.name are "send" or
// "process"; messaging.destination.name is the queue or topic;
// messaging.destination.subscription.name the topic subscription of a
// delivery; messaging.message.id the message ID (shared by the copies of a
// publish); messaging.message.conversation_id the correlation ID; and on
// process spans [AttrDeliveryAttempt] ("messaging.courier.message.delivery_attempt"),
// 1 for the first attempt. A failed send or attempt has status Error,
// error.type (see [ErrorType]) and, for an attempt, an exception event. An
// attempt after which the message goes to its dead-letter queue gets the
// event [EventDeadLettered]; a send that duplicate detection dropped
// ([courier.ErrDuplicate]) gets [EventDuplicateDropped] and is not an error.
//
// # Metrics
//
// The middleware records the conventions' messaging.client.sent.messages
// (each send, with error.type when refused), messaging.client.operation.duration
// (the send call, in seconds), messaging.client.consumed.messages (each
// delivery attempt) and messaging.process.duration (each attempt's handling,
// with error.type when it failed), plus courier.message.duplicates. The
// options of [BusOptions] add courier.message.retries and
// courier.message.dead_letters (by reason, counting dead letters no handler
// saw); [ObserveBus] adds gauges of each queue's depth, in-flight, scheduled
// and dead-letter counts. Metric attributes are the span attributes that
// have few values: no message ID.
//
// # Providers and cost
//
// By default the global tracer provider, meter provider and propagator of
// package otel are used, and followed when they are set later. While no
// tracer provider is set, or with a no-op one ([WithTracerProvider] and
// go.opentelemetry.io/otel/trace/noop), no span is started at all and the
// sender's own span context, if any, is still propagated. Metrics are
// recorded only when the instrument is enabled, so with no meter provider
// they cost a method call each. See BenchmarkTracingNoop.
package otelcourier
