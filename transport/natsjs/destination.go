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
	"github.com/nats-io/nuid"

	"github.com/courierbus/courier"
)

// destination is a queue or topic: one stream. Its subjects, under base:
//
//	base.m.u            unkeyed messages
//	base.m.k.<n>        keyed messages of partition n
//	base.s.<id>         delayed messages, until their schedule fires
//	base.r.<sub>.u|k.n  a topic subscription's replayed dead letters
type destination struct {
	t         *Transport
	spec      courier.DestinationSpec
	kind      string // "q" or "t"
	base      string
	stream    jetstream.Stream
	schedules bool // delays use message schedules; else they are held on delivery
}

// Declare implements courier.Transport: it creates or updates the stream of
// a queue (work-queue retention: a message is gone once handled) or topic
// (interest retention: gone once every subscription has handled it).
func (t *Transport) Declare(ctx context.Context, spec courier.DestinationSpec) (courier.Destination, error) {
	if spec.Overflow != courier.Block {
		return nil, fmt.Errorf("%w: overflow policy %v; JetStream can only refuse or make the sender wait", courier.ErrUnsupported, spec.Overflow)
	}
	d := &destination{t: t, spec: spec, kind: "q"}
	retention := jetstream.WorkQueuePolicy
	if spec.Topic {
		d.kind, retention = "t", jetstream.InterestPolicy
	}
	d.base = t.opts.SubjectPrefix + "." + d.kind + "." + token(spec.Name)
	cfg := jetstream.StreamConfig{
		Name:        d.streamName(),
		Description: "Courier " + map[string]string{"q": "queue ", "t": "topic "}[d.kind] + strconv.Quote(spec.Name),
		Subjects:    []string{d.base + ".>"},
		Retention:   retention,
		Storage:     t.opts.Storage,
		Replicas:    t.opts.Replicas,
		Duplicates:  t.opts.DuplicateWindow,
		Discard:     jetstream.DiscardOld,
	}
	if spec.Capacity > 0 {
		// JetStream refuses a scheduling stream that discards new messages,
		// so a bounded destination holds its delayed messages on delivery.
		cfg.MaxMsgs, cfg.Discard = int64(spec.Capacity), jetstream.DiscardNew
	} else {
		cfg.AllowMsgSchedules, cfg.AllowRollup = true, true
		d.schedules = true
	}
	s, err := t.ensureStream(ctx, cfg)
	if err != nil {
		return nil, err
	}
	d.stream = s
	if d.schedules {
		// Delayed messages wait on their own subjects. Interest retention
		// drops a message no consumer wants, so one consumer, never read,
		// keeps them; it also counts them.
		if _, err := ensureConsumer(ctx, s, jetstream.ConsumerConfig{
			Durable:       "scheduled",
			Description:   "holds delayed messages until they are due; never read",
			FilterSubject: d.base + ".s.>",
			AckPolicy:     jetstream.AckExplicitPolicy,
		}); err != nil {
			return nil, err
		}
	}
	return d, nil
}

func (d *destination) streamName() string {
	return d.t.opts.StreamPrefix + "_" + map[string]string{"q": "Q", "t": "T"}[d.kind] + "_" + token(d.spec.Name)
}

// subject is where a message of key goes: base.m.u, or base.m.k.<n>;
// replays to a subscription go under base.r.<sub> instead.
func (d *destination) subject(key, replayTo string) string {
	p := -1
	if key != "" {
		p = d.t.partition(key)
	}
	return d.partitionSubject(p, replayTo)
}

// Send implements courier.Destination.
func (d *destination) Send(ctx context.Context, env courier.Envelope, wait bool) error {
	return d.publish(ctx, env, wait, false, "")
}

// publish stores env. A replay gets a message ID of its own, or the
// duplicate window would drop it; replayTo names the subscription a topic's
// replay is for.
func (d *destination) publish(ctx context.Context, env courier.Envelope, wait, replay bool, replayTo string) error {
	md := env.Meta()
	msg, err := d.t.encode(env)
	if err != nil {
		return err
	}
	msg.Subject = d.subject(md.Key, replayTo)
	id := md.IdempotencyKey
	if id == "" {
		id = md.ID
	}
	if replay {
		id = "replay-" + md.ID + "-" + nuid.Next()
	}
	msg.Header.Set(jetstream.MsgIDHeader, id)
	if d.schedules && !md.DeliverAt.IsZero() && time.Until(md.DeliverAt) > 0 {
		msg.Header.Set("Nats-Schedule", "@at "+md.DeliverAt.UTC().Format(time.RFC3339Nano))
		msg.Header.Set("Nats-Schedule-Target", msg.Subject)
		msg.Subject = d.base + ".s." + token(id)
	}
	pause := time.Millisecond
	for {
		ack, err := d.t.js.PublishMsg(ctx, msg)
		switch {
		case err == nil && ack.Duplicate:
			return fmt.Errorf("%w: %s was already sent to %q", courier.ErrDuplicate, id, d.spec.Name)
		case err == nil:
			return nil
		case !isFull(err):
			if ctx.Err() != nil {
				if st := d.t.js.Conn().Status(); st != nats.CONNECTED {
					return fmt.Errorf("%w: publish to %q while the connection is %v: %w", ErrUnreachable, d.spec.Name, st, ctx.Err())
				}
				return ctx.Err()
			}
			return fmt.Errorf("natsjs: publish to %q: %w", d.spec.Name, err)
		case !wait:
			return courier.ErrFull
		}
		// Full: wait for room. JetStream does not say when room frees, so
		// ask again after a pause that grows to 50 ms.
		t := time.NewTimer(pause)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
		pause = min(2*pause, 50*time.Millisecond)
	}
}

// isFull says whether a publish failed because the stream holds its
// MaxMsgs.
func isFull(err error) bool {
	var apiErr *jetstream.APIError
	return errors.As(err, &apiErr) && strings.Contains(apiErr.Description, "maximum messages exceeded")
}

// encode builds the NATS message of env, without subject.
func (t *Transport) encode(env courier.Envelope) (*nats.Msg, error) {
	md := env.Meta()
	data, err := t.opts.Codec.Marshal(env.Payload())
	if err != nil {
		return nil, fmt.Errorf("natsjs: encoding the body of %s: %w", md.ID, err)
	}
	h, err := EncodeHeaders(md, t.opts.Codec)
	if err != nil {
		return nil, err
	}
	return &nats.Msg{Header: h, Data: data}, nil
}

// Inbox implements courier.Destination.
func (d *destination) Inbox(ctx context.Context, subscription string) (courier.Inbox, error) {
	return d.openInbox(ctx, subscription)
}

// ensureStream creates the stream of cfg, or opens it when another process
// (or an earlier run) created it with the same configuration. A stream that
// exists with another configuration, say another Capacity, is an error
// wrapping [ErrConfigMismatch]: declarations of one name must agree, and
// the transport never changes a stream behind another process's back.
func (t *Transport) ensureStream(ctx context.Context, cfg jetstream.StreamConfig) (jetstream.Stream, error) {
	s, err := t.js.CreateStream(ctx, cfg)
	if errors.Is(err, jetstream.ErrStreamNameAlreadyInUse) {
		return nil, fmt.Errorf("%w: stream %s exists with another configuration; declare the queue or topic with the same options in every process", ErrConfigMismatch, cfg.Name)
	}
	if err != nil {
		return nil, fmt.Errorf("natsjs: stream %s: %w", cfg.Name, err)
	}
	return s, nil
}

// ErrConfigMismatch is wrapped by the error of a declaration whose options
// disagree with the stream or consumer another process (or an earlier run)
// created.
var ErrConfigMismatch = errors.New("natsjs: declaration disagrees with the broker")

// ensureConsumer is ensureStream for a durable consumer.
func ensureConsumer(ctx context.Context, s jetstream.Stream, cfg jetstream.ConsumerConfig) (jetstream.Consumer, error) {
	c, err := s.CreateConsumer(ctx, cfg)
	if errors.Is(err, jetstream.ErrConsumerExists) {
		return nil, fmt.Errorf("%w: consumer %s of stream %s exists with another configuration (another KeyPartitions or AckWait?)", ErrConfigMismatch, cfg.Durable, s.CachedInfo().Config.Name)
	}
	if err != nil {
		return nil, fmt.Errorf("natsjs: consumer %s of stream %s: %w", cfg.Durable, s.CachedInfo().Config.Name, err)
	}
	return c, nil
}
