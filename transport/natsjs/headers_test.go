package natsjs_test

import (
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"

	"github.com/courierbus/courier"
	"github.com/courierbus/courier/transport/natsjs"
)

type order struct {
	ID     string
	Amount int
}

func fullMetadata() courier.Metadata {
	sent := time.Date(2026, 11, 22, 10, 0, 0, 123456789, time.UTC)
	md := courier.Metadata{
		ID: "01a2-id", CorrelationID: "checkout-7", CausationID: "01a1-cause", Key: "alice",
		IdempotencyKey: "order-7", Attempt: 3, SentAt: sent,
		DeliverAt: sent.Add(time.Minute), ExpiresAt: sent.Add(time.Hour),
	}
	md.SetHeader("traceparent", "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01")
	md.SetHeader("tenant", "acme")
	return md
}

func TestHeadersRoundTrip(t *testing.T) {
	md := fullMetadata()
	h, err := natsjs.EncodeHeaders(&md, natsjs.JSON)
	require.NoError(t, err)
	require.Equal(t, "application/json", h.Get(natsjs.HeaderContentType))
	h.Set(jetstream.MsgIDHeader, "order-7") // the server's own headers are not the application's
	var got courier.Metadata
	require.NoError(t, natsjs.DecodeHeaders(h, &got, natsjs.JSON))
	require.Equal(t, md, got)
}

func TestEncodeHeadersRefusesReservedNames(t *testing.T) {
	md := courier.Metadata{ID: "x"}
	md.SetHeader("Courier-Attempt", "9")
	_, err := natsjs.EncodeHeaders(&md, natsjs.JSON)
	require.ErrorContains(t, err, `header "Courier-Attempt" is reserved`)
}

func TestDecodeHeadersChecksTheCodecAndValues(t *testing.T) {
	var md courier.Metadata
	h := nats.Header{}
	h.Set(natsjs.HeaderContentType, "application/x-protobuf")
	require.ErrorIs(t, natsjs.DecodeHeaders(h, &md, natsjs.JSON), natsjs.ErrContentType)

	h = nats.Header{}
	h.Set(natsjs.HeaderAttempt, "two")
	require.ErrorContains(t, natsjs.DecodeHeaders(h, &md, natsjs.JSON), "bad attempt")

	h = nats.Header{}
	h.Set(natsjs.HeaderSentAt, "yesterday")
	require.ErrorContains(t, natsjs.DecodeHeaders(h, &md, natsjs.JSON), natsjs.HeaderSentAt)
}

// A message encoded with its metadata crosses a real JetStream stream and
// comes back equal.
func TestMessageCrossesJetStream(t *testing.T) {
	e := start(t, natsjs.EmbeddedOptions{Dir: t.TempDir()})
	defer e.Shutdown()
	nc, err := e.Connect()
	require.NoError(t, err)
	defer nc.Close()
	js, err := jetstream.New(nc)
	require.NoError(t, err)
	s, err := js.CreateStream(ctx(t), jetstream.StreamConfig{Name: "orders", Subjects: []string{"orders"}})
	require.NoError(t, err)

	md := fullMetadata()
	body := order{ID: "O-7", Amount: 4200}
	msg := nats.NewMsg("orders")
	msg.Header, err = natsjs.EncodeHeaders(&md, natsjs.JSON)
	require.NoError(t, err)
	msg.Data, err = natsjs.JSON.Marshal(body)
	require.NoError(t, err)
	_, err = js.PublishMsg(ctx(t), msg)
	require.NoError(t, err)

	raw, err := s.GetMsg(ctx(t), 1)
	require.NoError(t, err)
	var gotMD courier.Metadata
	require.NoError(t, natsjs.DecodeHeaders(nats.Header(raw.Header), &gotMD, natsjs.JSON))
	var gotBody order
	require.NoError(t, natsjs.JSON.Unmarshal(raw.Data, &gotBody))
	require.Equal(t, md, gotMD)
	require.Equal(t, body, gotBody)
}
