package natsjs

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/courierbus/courier"
)

// Headers a dead letter carries besides its message's own.
const (
	HeaderDeadLetterReason = "Courier-Dead-Letter-Reason"
	HeaderDeadLetterError  = "Courier-Dead-Letter-Error"
	HeaderFirstAttemptAt   = "Courier-First-Attempt-At"
	HeaderLastAttemptAt    = "Courier-Last-Attempt-At"
	HeaderDeadLetteredAt   = "Courier-Dead-Lettered-At"
)

// ReasonMalformed is the reason of a dead letter the transport could not
// decode (a bad header, a body of another codec or type). No handler saw
// it; the transport logs it at Error.
const ReasonMalformed courier.Reason = "malformed"

// inbox is a queue, or one subscription of a topic: its durable consumers
// (one for unkeyed messages, one per key partition with MaxAckPending 1) and
// its dead-letter stream.
type inbox struct {
	d          *destination
	sub        string
	consumers  []jetstream.Consumer // [0] unkeyed, [1+n] partition n
	scheduled  jetstream.Consumer   // nil when delays are held on delivery
	dlq        jetstream.Stream
	dlqSubject string
}

func (d *destination) openInbox(ctx context.Context, sub string) (*inbox, error) {
	t := d.t
	in := &inbox{d: d, sub: sub}
	prefix, deliver := "queue", jetstream.DeliverAllPolicy
	if sub != "" {
		// A new subscription receives what is published from now on.
		prefix, deliver = "sub-"+token(sub), jetstream.DeliverNewPolicy
	}
	for p := -1; p < t.opts.KeyPartitions; p++ {
		name, maxPending := prefix+"-u", 100_000
		if p >= 0 {
			name, maxPending = prefix+"-k"+strconv.Itoa(p), 1
		}
		filters := []string{d.partitionSubject(p, "")}
		if sub != "" {
			filters = append(filters, d.partitionSubject(p, sub))
		}
		cfg := jetstream.ConsumerConfig{
			Durable:       name,
			AckPolicy:     jetstream.AckExplicitPolicy,
			AckWait:       t.opts.AckWait,
			MaxDeliver:    -1, // the bus dead-letters by its retry policy
			MaxAckPending: maxPending,
			DeliverPolicy: deliver,
		}
		if len(filters) == 1 {
			cfg.FilterSubject = filters[0]
		} else {
			cfg.FilterSubjects = filters
		}
		c, err := ensureConsumer(ctx, d.stream, cfg)
		if err != nil {
			return nil, err
		}
		in.consumers = append(in.consumers, c)
	}
	if d.schedules {
		c, err := d.stream.Consumer(ctx, "scheduled")
		if err != nil {
			return nil, fmt.Errorf("natsjs: stream %s: %w", d.streamName(), err)
		}
		in.scheduled = c
	}
	name := t.opts.StreamPrefix + "_DLQ_" + strings.ToUpper(d.kind) + "_" + token(d.spec.Name)
	in.dlqSubject = t.opts.SubjectPrefix + ".dlq." + d.kind + "." + token(d.spec.Name)
	if sub != "" {
		name += "_" + token(sub)
		in.dlqSubject += "." + token(sub)
	}
	cfg := jetstream.StreamConfig{
		Name:        name,
		Description: "Courier dead letters of " + d.spec.Name + map[bool]string{true: "/" + sub}[sub != ""],
		Subjects:    []string{in.dlqSubject},
		Retention:   jetstream.LimitsPolicy,
		Storage:     t.opts.Storage,
		Replicas:    t.opts.Replicas,
		Duplicates:  t.opts.DuplicateWindow,
		Discard:     jetstream.DiscardOld,
	}
	if d.spec.DeadLetterCapacity > 0 {
		cfg.MaxMsgs = int64(d.spec.DeadLetterCapacity)
	}
	s, err := t.ensureStream(ctx, cfg)
	if err != nil {
		return nil, err
	}
	in.dlq = s
	return in, nil
}

// partitionSubject is the subject of partition p (-1 for unkeyed
// messages), or of its replays to subscription sub.
func (d *destination) partitionSubject(p int, sub string) string {
	s := d.base + ".m"
	if sub != "" {
		s = d.base + ".r." + token(sub)
	}
	if p < 0 {
		return s + ".u"
	}
	return s + ".k." + strconv.Itoa(p)
}

// Receive implements courier.Inbox.
func (in *inbox) Receive(_ context.Context, decode courier.Decoder, prefetch int) (courier.Receiver, error) {
	return in.newReceiver(decode, max(prefetch, 1))
}

// Redeliver implements courier.Inbox: a replay goes to this queue, or to
// this subscription alone.
func (in *inbox) Redeliver(ctx context.Context, env courier.Envelope) error {
	return in.d.publish(ctx, env, true, true, in.sub)
}

// DeadLetter implements courier.Inbox: the dead letter is stored (and
// acknowledged by the broker) before the delivery is terminated.
func (in *inbox) DeadLetter(ctx context.Context, dl courier.Delivery, info courier.DeadLetterInfo) error {
	d, ok := dl.(*delivery)
	if !ok {
		return fmt.Errorf("natsjs: DeadLetter of a delivery from another transport (%T)", dl)
	}
	h := deadLetterHeaders(d.m.Headers(), info.Reason, info.Err)
	h.Set(HeaderAttempt, strconv.Itoa(info.Attempts))
	for k, t := range map[string]time.Time{HeaderFirstAttemptAt: info.FirstAttemptAt, HeaderLastAttemptAt: info.LastAttemptAt, HeaderDeadLetteredAt: info.DeadLetteredAt} {
		if !t.IsZero() {
			h.Set(k, t.UTC().Format(time.RFC3339Nano))
		}
	}
	if err := in.storeDeadLetter(ctx, d.m, h); err != nil {
		return err
	}
	d.settled()
	return d.m.TermWithReason(string(info.Reason))
}

// deadLetterHeaders copies a message's headers, without the broker's, and
// adds the reason and error.
func deadLetterHeaders(orig nats.Header, reason courier.Reason, err error) nats.Header {
	h := make(nats.Header, len(orig)+6)
	for k, vs := range orig {
		if !strings.HasPrefix(k, "Nats-") {
			h[k] = vs
		}
	}
	h.Set(HeaderDeadLetterReason, string(reason))
	if err != nil {
		// Header values are one line.
		h.Set(HeaderDeadLetterError, strings.NewReplacer("\r", " ", "\n", " ").Replace(err.Error()))
	}
	return h
}

func (in *inbox) storeDeadLetter(ctx context.Context, m jetstream.Msg, h nats.Header) error {
	meta, err := m.Metadata()
	if err != nil {
		return fmt.Errorf("natsjs: %w", err)
	}
	// One ID per delivery: a dead letter stored twice (a crash between the
	// store and the termination) is dropped as a duplicate.
	h.Set(jetstream.MsgIDHeader, fmt.Sprintf("dl-%s-%d-%d", meta.Stream, meta.Sequence.Stream, meta.NumDelivered))
	if _, err := in.d.t.js.PublishMsg(ctx, &nats.Msg{Subject: in.dlqSubject, Header: h, Data: m.Data()}); err != nil {
		return fmt.Errorf("natsjs: storing a dead letter of %s: %w", in.where(), err)
	}
	return nil
}

// malformed dead-letters a message that cannot be decoded.
func (in *inbox) malformed(m jetstream.Msg, cause error) {
	t := in.d.t
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	h := deadLetterHeaders(m.Headers(), ReasonMalformed, cause)
	h.Set(HeaderDeadLetteredAt, time.Now().UTC().Format(time.RFC3339Nano))
	if err := in.storeDeadLetter(ctx, m, h); err != nil {
		t.opts.Logger.Error("natsjs: a malformed message could not be dead-lettered; it will be delivered again",
			"inbox", in.where(), "error", err, "cause", cause)
		_ = m.NakWithDelay(time.Second)
		return
	}
	t.opts.Logger.Error("natsjs: malformed message dead-lettered", "inbox", in.where(), "error", cause)
	_ = m.TermWithReason(string(ReasonMalformed))
}

func (in *inbox) where() string {
	if in.sub != "" {
		return fmt.Sprintf("subscription %q of topic %q", in.sub, in.d.spec.Name)
	}
	return fmt.Sprintf("queue %q", in.d.spec.Name)
}

// DeadLetters implements courier.Inbox. It reads the dead-letter stream
// message by message.
func (in *inbox) DeadLetters(ctx context.Context, decode courier.Decoder) ([]courier.StoredDeadLetter, error) {
	si, err := in.dlq.Info(ctx)
	if err != nil {
		return nil, fmt.Errorf("natsjs: %w", err)
	}
	st := si.State
	var out []courier.StoredDeadLetter
	for seq := st.FirstSeq; st.Msgs > 0 && seq <= st.LastSeq; seq++ {
		raw, err := in.dlq.GetMsg(ctx, seq)
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			continue
		}
		if err != nil {
			return out, fmt.Errorf("natsjs: %w", err)
		}
		sd, err := in.readDeadLetter(raw, decode)
		if err != nil {
			in.d.t.opts.Logger.Error("natsjs: unreadable dead letter skipped", "inbox", in.where(), "sequence", seq, "error", err)
			continue
		}
		out = append(out, sd)
	}
	return out, nil
}

func (in *inbox) readDeadLetter(raw *jetstream.RawStreamMsg, decode courier.Decoder) (courier.StoredDeadLetter, error) {
	codec := in.d.t.opts.Codec
	var md courier.Metadata
	if err := DecodeHeaders(raw.Header, &md, codec); err != nil {
		return courier.StoredDeadLetter{}, err
	}
	md.Destination, md.Subscription = in.d.spec.Name, in.sub
	info := courier.DeadLetterInfo{
		Metadata: md,
		Reason:   courier.Reason(raw.Header.Get(HeaderDeadLetterReason)),
		Attempts: md.Attempt,
	}
	if s := raw.Header.Get(HeaderDeadLetterError); s != "" {
		info.Err = errors.New(s)
	}
	for k, dst := range map[string]*time.Time{HeaderFirstAttemptAt: &info.FirstAttemptAt, HeaderLastAttemptAt: &info.LastAttemptAt, HeaderDeadLetteredAt: &info.DeadLetteredAt} {
		if s := raw.Header.Get(k); s != "" {
			*dst, _ = time.Parse(time.RFC3339Nano, s)
		}
	}
	env, err := decode(md, func(into any) error { return codec.Unmarshal(raw.Data, into) })
	if err != nil {
		return courier.StoredDeadLetter{}, err
	}
	return courier.StoredDeadLetter{Ref: strconv.FormatUint(raw.Sequence, 10), Info: info, Message: env}, nil
}

// RemoveDeadLetter implements courier.Inbox.
func (in *inbox) RemoveDeadLetter(ctx context.Context, ref string) error {
	seq, err := strconv.ParseUint(ref, 10, 64)
	if err != nil {
		return fmt.Errorf("natsjs: bad dead-letter reference %q", ref)
	}
	if err := in.dlq.DeleteMsg(ctx, seq); err != nil && !errors.Is(err, jetstream.ErrMsgNotFound) {
		return fmt.Errorf("natsjs: %w", err)
	}
	return nil
}

// Stats implements courier.Inbox from consumer and stream info. Retries
// waiting for their delay are among InFlight; a topic's scheduled messages
// are counted for each of its subscriptions.
func (in *inbox) Stats(ctx context.Context) (courier.InboxStats, error) {
	// The reads are not one snapshot. Scheduled is read first: a message
	// that falls due between the reads is then counted twice, never missed,
	// so WaitIdle and Shutdown cannot see an empty inbox that is not.
	var s courier.InboxStats
	if in.scheduled != nil {
		ci, err := in.scheduled.Info(ctx)
		if err != nil {
			return s, fmt.Errorf("natsjs: %w", err)
		}
		s.Scheduled = int(ci.NumPending)
	}
	for _, c := range in.consumers {
		ci, err := c.Info(ctx)
		if err != nil {
			return s, fmt.Errorf("natsjs: %w", err)
		}
		s.Depth += int(ci.NumPending)
		s.InFlight += ci.NumAckPending
	}
	si, err := in.dlq.Info(ctx)
	if err != nil {
		return s, fmt.Errorf("natsjs: %w", err)
	}
	s.DeadLetters = int(si.State.Msgs)
	return s, nil
}
