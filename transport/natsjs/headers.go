package natsjs

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/courierbus/courier"
)

// Header names that carry a message's metadata on JetStream. Application
// headers (courier.WithHeader, trace context from otelcourier) travel under
// their own names, except the names below, which the transport writes itself.
const (
	HeaderID             = "Courier-Id"
	HeaderCorrelationID  = "Courier-Correlation-Id"
	HeaderCausationID    = "Courier-Causation-Id"
	HeaderKey            = "Courier-Key"
	HeaderIdempotencyKey = "Courier-Idempotency-Key"
	HeaderAttempt        = "Courier-Attempt"
	HeaderSentAt         = "Courier-Sent-At"
	HeaderDeliverAt      = "Courier-Deliver-At"
	HeaderExpiresAt      = "Courier-Expires-At"
	HeaderContentType    = "Content-Type"
)

// reserved are the headers the transport writes itself; an application
// header of one of these names is refused.
var reserved = map[string]bool{
	HeaderID: true, HeaderCorrelationID: true, HeaderCausationID: true, HeaderKey: true,
	HeaderIdempotencyKey: true, HeaderAttempt: true, HeaderSentAt: true, HeaderDeliverAt: true,
	HeaderExpiresAt: true, HeaderContentType: true,
	HeaderDeadLetterReason: true, HeaderDeadLetterError: true, HeaderFirstAttemptAt: true,
	HeaderLastAttemptAt: true, HeaderDeadLetteredAt: true,
}

// EncodeHeaders returns the NATS headers that carry md and the codec's
// content type. Destination and subscription are not carried: the stream
// and the consumer say them. An application header whose name is reserved
// is an error, not silently overwritten.
func EncodeHeaders(md *courier.Metadata, c Codec) (nats.Header, error) {
	h := make(nats.Header, 8+len(md.Headers))
	for k, v := range md.Headers {
		if reserved[k] || strings.HasPrefix(k, "Nats-") {
			return nil, fmt.Errorf("natsjs: header %q is reserved for Courier's metadata", k)
		}
		h.Set(k, v)
	}
	set := func(k, v string) {
		if v != "" {
			h.Set(k, v)
		}
	}
	set(HeaderID, md.ID)
	set(HeaderCorrelationID, md.CorrelationID)
	set(HeaderCausationID, md.CausationID)
	set(HeaderKey, md.Key)
	set(HeaderIdempotencyKey, md.IdempotencyKey)
	if md.Attempt > 0 {
		h.Set(HeaderAttempt, strconv.Itoa(md.Attempt))
	}
	setTime := func(k string, t time.Time) {
		if !t.IsZero() {
			h.Set(k, t.UTC().Format(time.RFC3339Nano))
		}
	}
	setTime(HeaderSentAt, md.SentAt)
	setTime(HeaderDeliverAt, md.DeliverAt)
	setTime(HeaderExpiresAt, md.ExpiresAt)
	h.Set(HeaderContentType, c.ContentType())
	return h, nil
}

// DecodeHeaders fills md from NATS headers written by EncodeHeaders: the
// metadata fields, and every other header into md.Headers. It checks that
// the body was written with codec c.
func DecodeHeaders(h nats.Header, md *courier.Metadata, c Codec) error {
	if err := checkContentType(c, h.Get(HeaderContentType)); err != nil {
		return err
	}
	md.ID = h.Get(HeaderID)
	md.CorrelationID = h.Get(HeaderCorrelationID)
	md.CausationID = h.Get(HeaderCausationID)
	md.Key = h.Get(HeaderKey)
	md.IdempotencyKey = h.Get(HeaderIdempotencyKey)
	if s := h.Get(HeaderAttempt); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 0 {
			return fmt.Errorf("natsjs: header %s: bad attempt %q", HeaderAttempt, s)
		}
		md.Attempt = n
	}
	for _, f := range []struct {
		name string
		dst  *time.Time
	}{{HeaderSentAt, &md.SentAt}, {HeaderDeliverAt, &md.DeliverAt}, {HeaderExpiresAt, &md.ExpiresAt}} {
		if s := h.Get(f.name); s != "" {
			t, err := time.Parse(time.RFC3339Nano, s)
			if err != nil {
				return fmt.Errorf("natsjs: header %s: %w", f.name, err)
			}
			*f.dst = t
		}
	}
	for k, vs := range h {
		if reserved[k] || strings.HasPrefix(k, "Nats-") || len(vs) == 0 {
			continue
		}
		md.SetHeader(k, vs[0])
	}
	return nil
}
