package courier

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"

	"github.com/google/uuid"
)

// HeaderReplyTo names, on a request sent over a [Transport], the queue its
// reply goes to: the requesting bus's reply queue for that request queue.
const HeaderReplyTo = "Courier-Reply-To"

// replyMsg is what travels back to the requesting bus over a transport: the
// response, or the failure.
type replyMsg[Resp any] struct {
	RequestID string
	Response  Resp   `json:",omitempty"`
	Reason    Reason `json:",omitempty"` // set when the request was dead-lettered
	Attempts  int    `json:",omitempty"`
	Error     string `json:",omitempty"`
	NoReply   bool   `json:",omitempty"` // acknowledged without running the handler
}

// replyRoute sends the replies of a request queue over a transport.
type replyRoute[Resp any] struct {
	bus   *Bus
	inbox string // this bus's reply queue for the request queue

	mu   sync.Mutex
	dest map[string]*remoteDest // reply queues this bus has sent to
}

// WithName names the bus. Over a [Transport], a request queue's replies come
// back to the queue "<request queue>.replies.<name>": give each process a
// stable name (its host or pod name) so that a restarted process takes over
// its reply queue instead of leaving one behind in the broker. Default: a
// random name.
func WithName(name string) BusOption {
	return func(b *Bus) {
		if name != "" {
			b.name = name
		}
	}
}

func (b *Bus) instanceName() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.name == "" {
		b.name = uuid.NewString()[:8]
	}
	return b.name
}

// openReplies declares this bus's reply queue for the request queue name and
// starts consuming it; callers do not hold b.mu.
func openReplies[Resp any](b *Bus, name string, rc *replies[Resp]) (*replyRoute[Resp], error) {
	rt := &replyRoute[Resp]{bus: b, inbox: name + ".replies." + b.instanceName(), dest: make(map[string]*remoteDest)}
	q, err := NewQueue[replyMsg[Resp]](b, rt.inbox)
	if err != nil {
		return nil, fmt.Errorf("courier: reply queue of %q: %w", name, err)
	}
	err = q.Consume(func(_ context.Context, m *Message[replyMsg[Resp]]) error {
		r := m.Body
		switch {
		case r.NoReply:
			var zero Resp
			rc.reply(r.RequestID, zero, ErrNoReply)
		case r.Reason != "":
			var zero Resp
			rerr := &RequestError{RequestID: r.RequestID, Reason: r.Reason, Attempts: r.Attempts, Err: errors.New(r.Error)}
			rc.reply(r.RequestID, zero, rerr)
		default:
			rc.reply(r.RequestID, r.Response, nil)
		}
		return nil
	}, Workers(2))
	if err != nil {
		return nil, err
	}
	return rt, nil
}

// send sends r to the reply queue named by the request's headers. It goes
// straight to the transport: a reply finishes a request the bus accepted,
// like an acknowledgement, so a draining bus still sends it, and it passes
// through no send middleware.
func (rt *replyRoute[Resp]) send(ctx context.Context, to string, r replyMsg[Resp]) error {
	rt.mu.Lock()
	rd := rt.dest[to]
	rt.mu.Unlock()
	if rd == nil {
		cfg := config{scope: scopeQueue, capacity: DefaultCapacity, dlqCap: DefaultDeadLetterCapacity}
		var err error
		if rd, err = declareRemote(rt.bus, to, false, &cfg, decodeMessage[replyMsg[Resp]]); err != nil {
			return err
		}
		rt.mu.Lock()
		rt.dest[to] = rd
		rt.mu.Unlock()
	}
	m, err := newMessage(ctx, to, r, false, nil)
	if err != nil {
		return err
	}
	return rd.dest.Send(ctx, m, true)
}

// replyDone marks, on a request being handled, that its reply was sent, so
// that the handled hook does not send ErrNoReply after it. The header never
// leaves the process: the request is acknowledged next.
const replyDone = "Courier-Reply-Sent"

// answer sends the handler's response to the requesting bus, through the
// broker.
func (rt *replyRoute[Resp]) answer(ctx context.Context, md *Metadata, resp Resp) error {
	if err := rt.send(ctx, md.Header(HeaderReplyTo), replyMsg[Resp]{RequestID: md.ID, Response: resp}); err != nil {
		return fmt.Errorf("courier: sending the reply to %s: %w", md.ID, err)
	}
	md.SetHeader(replyDone, "1")
	return nil
}

// failed tells the requesting bus that its request was dead-lettered, or
// acknowledged without a reply.
func (rt *replyRoute[Resp]) failed(to string, r replyMsg[Resp]) {
	ctx, cancel := context.WithTimeout(context.Background(), remoteTimeout)
	defer cancel()
	if err := rt.send(ctx, to, r); err != nil {
		rt.bus.logger.Error("courier: the failure of a request could not be sent to its caller",
			slog.String("request_id", r.RequestID), slog.String("reply_to", to), slog.Any("error", err))
	}
}
