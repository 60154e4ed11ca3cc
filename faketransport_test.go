package courier_test

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/courierbus/courier"
	"github.com/courierbus/courier/couriertest/conformance"
)

// fakeBroker is an in-memory broker implementing [courier.Transport]: it runs
// the core's tests over the transport seam, and shows transport authors, in a
// few lines per method, what the bus expects of a real broker.
//
//   - Send stores a copy (metadata with headers cloned, body as JSON); each
//     delivery decodes a fresh message through the bus's [courier.Decoder].
//     A topic stores one copy per subscription existing at the time; a queue
//     is one inbox, subscription "".
//   - Metadata.Attempt counts deliveries, like JetStream's NumDelivered; a
//     replayed dead letter is a new message and counts from 1 again.
//   - Nothing is delivered before its DeliverAt, or a nak's delay. Messages
//     of one key go one at a time in store order: while one is out or waits
//     for redelivery, the later ones of its key wait.
//   - Capacity bounds each inbox's unsettled messages ([courier.ErrFull], or
//     wait). A key (IdempotencyKey, else ID) stored before is a
//     [courier.ErrDuplicate]: forever here, within a window in a real broker.
//   - Receivers do not prefetch, so Close has nothing to hand back; one that
//     prefetches must nak what it holds when closed.
//
// One mutex guards all state. Waiters (Next, a Send waiting for room) wait on
// changed, closed and replaced at every change; timers wake them when a delay
// ends. Only those timers' callbacks run as goroutines; stop stops them.
type fakeBroker struct {
	mu      sync.Mutex
	changed chan struct{} // closed and replaced when waiters should look again
	dests   map[string]*fakeDest
	timers  map[*time.Timer]struct{} // pending wake-ups
	seq     uint64                   // numbers dead letters
	stopped bool
	log     []fakeSettlement // every settlement, for tests
	misuse  []string         // settlements of a delivery already settled
}

// fakeSettlement records how the bus settled one delivery: "ack", "nak"
// (with Delay) or "dead" (with Reason).
type fakeSettlement struct {
	ID, Subscription, Op string
	Attempt              int
	Delay                time.Duration
	Reason               courier.Reason
}

// newFakeBroker returns a broker that stops when the test ends; create it
// before the bus, so that the bus's cleanup (which runs first) stops the bus
// before the broker. A delivery the bus settled twice fails the test.
func newFakeBroker(t testing.TB) *fakeBroker {
	f := &fakeBroker{changed: make(chan struct{}), dests: map[string]*fakeDest{}, timers: map[*time.Timer]struct{}{}}
	t.Cleanup(func() {
		for _, m := range f.stop() {
			t.Errorf("fake broker: %s", m)
		}
	})
	return f
}

// stop stops the timers and every receiver, and returns the misuses seen.
func (f *fakeBroker) stop() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.stopped = true
	for t := range f.timers {
		t.Stop()
	}
	clear(f.timers)
	f.notifyLocked()
	return f.misuse
}

// settlements returns a copy of the settlement log.
func (f *fakeBroker) settlements() []fakeSettlement {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.log)
}

func (f *fakeBroker) notifyLocked() {
	close(f.changed)
	f.changed = make(chan struct{})
}

// wakeAtLocked wakes the waiters at time at, when a delay ends.
func (f *fakeBroker) wakeAtLocked(at time.Time) {
	d := time.Until(at)
	if d <= 0 || f.stopped {
		return
	}
	var t *time.Timer
	t = time.AfterFunc(d, func() {
		f.mu.Lock() // held by the caller until t is set
		defer f.mu.Unlock()
		delete(f.timers, t)
		f.notifyLocked()
	})
	f.timers[t] = struct{}{}
}

// waitLocked releases the lock until the next change, the end of ctx, or
// the closing of done (nil: never), and takes it again.
func (f *fakeBroker) waitLocked(ctx context.Context, done <-chan struct{}) error {
	ch := f.changed
	f.mu.Unlock()
	defer f.mu.Lock()
	select {
	case <-ch:
	case <-done:
	case <-ctx.Done():
		return ctx.Err()
	}
	return nil
}

var errFakeStopped = errors.New("fake broker: stopped")

// fakeDest is a queue or topic.
type fakeDest struct {
	f       *fakeBroker
	spec    courier.DestinationSpec
	seen    map[string]bool       // idempotency keys (else IDs) stored
	inboxes map[string]*fakeInbox // "" for a queue; a topic's subscriptions
}

// Declare implements courier.Transport: it creates the destination or
// returns the existing one, for this bus or another on the same broker. A
// semantic the broker lacks is refused here, wrapping ErrUnsupported.
func (f *fakeBroker) Declare(_ context.Context, spec courier.DestinationSpec) (courier.Destination, error) {
	if spec.Overflow != courier.Block {
		return nil, fmt.Errorf("%w: fake broker: overflow %v", courier.ErrUnsupported, spec.Overflow)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if d := f.dests[spec.Name]; d != nil {
		if d.spec.Topic != spec.Topic {
			return nil, fmt.Errorf("fake broker: %q is declared as another kind", spec.Name)
		}
		return d, nil
	}
	d := &fakeDest{f: f, spec: spec, seen: map[string]bool{}, inboxes: map[string]*fakeInbox{}}
	if !spec.Topic {
		d.inboxes[""] = &fakeInbox{d: d} // a queue holds messages before anyone consumes
	}
	f.dests[spec.Name] = d
	return d, nil
}

// fakeEncode is what the broker keeps of env: its metadata, headers cloned,
// and its body as JSON. It never keeps env itself.
func fakeEncode(env courier.Envelope) (courier.Metadata, []byte, error) {
	md := *env.Meta()
	md.Headers, md.Attempt = maps.Clone(md.Headers), 0
	body, err := json.Marshal(env.Payload())
	if err != nil {
		return md, nil, fmt.Errorf("fake broker: encoding %s: %w", md.ID, err)
	}
	return md, body, nil
}

// Send implements courier.Destination.
func (d *fakeDest) Send(ctx context.Context, env courier.Envelope, wait bool) error {
	md, body, err := fakeEncode(env)
	if err != nil {
		return err
	}
	key := cmp.Or(md.IdempotencyKey, md.ID)
	f := d.f
	f.mu.Lock()
	defer f.mu.Unlock()
	for {
		switch {
		case f.stopped:
			return errFakeStopped
		case d.seen[key]:
			return fmt.Errorf("%w: %s was already sent to %q", courier.ErrDuplicate, key, d.spec.Name)
		case !d.fullLocked():
			d.seen[key] = true
			for _, in := range d.inboxes {
				in.storeLocked(md, body)
			}
			return nil
		case !wait:
			return courier.ErrFull
		}
		if err := f.waitLocked(ctx, nil); err != nil {
			return err
		}
	}
}

// fullLocked reports whether an inbox of d holds Capacity unsettled messages.
func (d *fakeDest) fullLocked() (full bool) {
	for _, in := range d.inboxes {
		full = full || d.spec.Capacity > 0 && len(in.msgs) >= d.spec.Capacity
	}
	return full
}

// Inbox implements courier.Destination: a topic's subscription is created
// on first use and receives what is sent from then on.
func (d *fakeDest) Inbox(_ context.Context, sub string) (courier.Inbox, error) {
	if (sub == "") == d.spec.Topic {
		return nil, fmt.Errorf("fake broker: %q has no inbox %q", d.spec.Name, sub)
	}
	d.f.mu.Lock()
	defer d.f.mu.Unlock()
	in := d.inboxes[sub]
	if in == nil {
		in = &fakeInbox{d: d, sub: sub}
		d.inboxes[sub] = in
	}
	return in, nil
}

// fakeInbox is a queue, or one subscription of a topic.
type fakeInbox struct {
	d    *fakeDest
	sub  string
	msgs []*fakeMsg // unsettled messages, in store order
	dead []fakeDead // oldest first
}

type fakeMsg struct {
	md        courier.Metadata // as sent; Attempt is set at each delivery
	body      []byte
	due       time.Time // not delivered before: DeliverAt, then the end of a nak's delay
	delivered int       // deliveries so far
	out       bool      // delivered and not yet settled
}

type fakeDead struct {
	ref  string
	info courier.DeadLetterInfo // exported fields only; Err keeps its text
	body []byte
}

func (in *fakeInbox) storeLocked(md courier.Metadata, body []byte) {
	in.msgs = append(in.msgs, &fakeMsg{md: md, body: body, due: md.DeliverAt})
	in.d.f.wakeAtLocked(md.DeliverAt)
	in.d.f.notifyLocked()
}

// nextLocked returns the message to deliver next: the oldest one that is
// due, not out, and whose key no other message holds. A keyed message holds
// its key from its first delivery until it is settled for good.
func (in *fakeInbox) nextLocked(now time.Time) *fakeMsg {
	held := map[string]*fakeMsg{}
	for _, m := range in.msgs {
		if m.md.Key != "" && m.delivered > 0 {
			held[m.md.Key] = m
		}
	}
	for _, m := range in.msgs {
		if h := held[m.md.Key]; m.out || m.due.After(now) || (h != nil && h != m) {
			continue
		}
		return m
	}
	return nil
}

func (in *fakeInbox) removeLocked(m *fakeMsg) {
	m.out = false
	in.msgs = slices.DeleteFunc(in.msgs, func(x *fakeMsg) bool { return x == m })
	in.d.f.notifyLocked() // room for a waiting Send, the key's next message
}

// storeDeadLocked keeps a dead letter of m, evicting the oldest when the
// store is full. It copies info's exported fields: info refers to the bus's
// message, which the broker must not keep.
func (in *fakeInbox) storeDeadLocked(m *fakeMsg, info courier.DeadLetterInfo) {
	in.d.f.seq++
	kept := courier.DeadLetterInfo{Metadata: info.Metadata, Reason: info.Reason, Attempts: info.Attempts,
		FirstAttemptAt: info.FirstAttemptAt, LastAttemptAt: info.LastAttemptAt, DeadLetteredAt: info.DeadLetteredAt}
	kept.Headers = maps.Clone(info.Headers)
	if info.Err != nil {
		kept.Err = errors.New(info.Err.Error())
	}
	if c := in.d.spec.DeadLetterCapacity; c > 0 && len(in.dead) >= c {
		in.dead = slices.Delete(in.dead, 0, len(in.dead)-c+1)
	}
	in.dead = append(in.dead, fakeDead{ref: strconv.FormatUint(in.d.f.seq, 10), info: kept, body: m.body})
}

// Receive implements courier.Inbox. The receiver does not prefetch, so
// prefetch is ignored.
func (in *fakeInbox) Receive(_ context.Context, decode courier.Decoder, _ int) (courier.Receiver, error) {
	return &fakeReceiver{in: in, decode: decode, closed: make(chan struct{})}, nil
}

// Redeliver implements courier.Inbox: the replayed message is stored in this
// inbox alone, as a new message (no duplicate check, attempts from 1).
func (in *fakeInbox) Redeliver(_ context.Context, env courier.Envelope) error {
	md, body, err := fakeEncode(env)
	if err != nil {
		return err
	}
	in.d.f.mu.Lock()
	defer in.d.f.mu.Unlock()
	if in.d.f.stopped {
		return errFakeStopped
	}
	in.storeLocked(md, body)
	return nil
}

// DeadLetter implements courier.Inbox: store first, then settle, under one
// lock here; a real broker must keep that order across two operations.
func (in *fakeInbox) DeadLetter(_ context.Context, dl courier.Delivery, info courier.DeadLetterInfo) error {
	d, ok := dl.(*fakeDelivery)
	if !ok || d.r.in != in {
		return fmt.Errorf("fake broker: dead letter of a delivery of another inbox (%T)", dl)
	}
	return d.settle("dead", 0, info)
}

// DeadLetters implements courier.Inbox, decoding each one afresh.
func (in *fakeInbox) DeadLetters(_ context.Context, decode courier.Decoder) ([]courier.StoredDeadLetter, error) {
	in.d.f.mu.Lock()
	list := slices.Clone(in.dead)
	in.d.f.mu.Unlock()
	out := make([]courier.StoredDeadLetter, 0, len(list))
	for _, dl := range list {
		md := dl.info.Metadata
		md.Headers = maps.Clone(md.Headers)
		env, err := decode(md, func(into any) error { return json.Unmarshal(dl.body, into) })
		if err != nil {
			continue // malformed: it has no typed view (counted in Stats all the same)
		}
		out = append(out, courier.StoredDeadLetter{Ref: dl.ref, Info: dl.info, Message: env})
	}
	return out, nil
}

// RemoveDeadLetter implements courier.Inbox; an unknown ref is already gone.
func (in *fakeInbox) RemoveDeadLetter(_ context.Context, ref string) error {
	in.d.f.mu.Lock()
	defer in.d.f.mu.Unlock()
	in.dead = slices.DeleteFunc(in.dead, func(d fakeDead) bool { return d.ref == ref })
	return nil
}

// Stats implements courier.Inbox: a message never delivered is Depth when
// due and Scheduled before; once delivered it is InFlight until settled for
// good, waiting for a nak's delay included. WaitIdle and Shutdown rely on
// the sum being zero only when nothing is left.
func (in *fakeInbox) Stats(context.Context) (courier.InboxStats, error) {
	in.d.f.mu.Lock()
	defer in.d.f.mu.Unlock()
	now := time.Now()
	s := courier.InboxStats{DeadLetters: len(in.dead)}
	for _, m := range in.msgs {
		switch {
		case m.delivered > 0:
			s.InFlight++
		case m.due.After(now):
			s.Scheduled++
		default:
			s.Depth++
		}
	}
	return s, nil
}

// fakeReceiver is one competing receiver of an inbox.
type fakeReceiver struct {
	in     *fakeInbox
	decode courier.Decoder
	closed chan struct{}
	once   sync.Once
}

// Next implements courier.Receiver: it blocks until a message is
// deliverable, ctx ends, or the receiver or broker closes.
func (r *fakeReceiver) Next(ctx context.Context) (courier.Delivery, error) {
	f := r.in.d.f
	f.mu.Lock()
	defer f.mu.Unlock()
	for {
		select {
		case <-r.closed:
			return nil, courier.ErrClosed
		default:
			if f.stopped {
				return nil, courier.ErrClosed
			}
		}
		if m := r.in.nextLocked(time.Now()); m != nil {
			m.out = true
			m.delivered++
			md := m.md
			md.Headers = maps.Clone(md.Headers)
			md.Destination, md.Subscription, md.Attempt = r.in.d.spec.Name, r.in.sub, m.delivered
			env, err := r.decode(md, func(into any) error { return json.Unmarshal(m.body, into) })
			if err == nil {
				return &fakeDelivery{r: r, m: m, attempt: m.delivered, env: env}, nil
			}
			// Malformed: no handler can take it. Dead-letter it here.
			r.in.storeDeadLocked(m, courier.DeadLetterInfo{Metadata: md, Reason: "malformed", Err: err,
				Attempts: m.delivered, DeadLetteredAt: time.Now()})
			r.in.removeLocked(m)
			continue
		}
		if err := f.waitLocked(ctx, r.closed); err != nil {
			return nil, err
		}
	}
}

// Close implements courier.Receiver. Deliveries already returned by Next
// stay valid: the bus settles them after Close.
func (r *fakeReceiver) Close() error {
	r.once.Do(func() { close(r.closed) })
	return nil
}

// fakeDelivery is one delivery attempt.
type fakeDelivery struct {
	r       *fakeReceiver
	m       *fakeMsg
	attempt int
	env     courier.Envelope
}

func (d *fakeDelivery) Message() courier.Envelope { return d.env }

func (d *fakeDelivery) Ack(context.Context) error {
	return d.settle("ack", 0, courier.DeadLetterInfo{})
}

func (d *fakeDelivery) Nak(_ context.Context, delay time.Duration) error {
	return d.settle("nak", delay, courier.DeadLetterInfo{})
}

// settle ends the delivery: ack and dead (after storing info) remove the
// message; nak makes it due again after delay.
func (d *fakeDelivery) settle(op string, delay time.Duration, info courier.DeadLetterInfo) error {
	f, in, m := d.r.in.d.f, d.r.in, d.m
	f.mu.Lock()
	defer f.mu.Unlock()
	if !m.out || m.delivered != d.attempt {
		msg := fmt.Sprintf("%s of %s (attempt %d) after it was settled", op, m.md.ID, d.attempt)
		f.misuse = append(f.misuse, msg)
		return errors.New("fake broker: " + msg)
	}
	f.log = append(f.log, fakeSettlement{m.md.ID, in.sub, op, d.attempt, delay, info.Reason})
	switch op {
	case "nak":
		m.out, m.due = false, time.Now().Add(delay)
		f.wakeAtLocked(m.due)
		f.notifyLocked()
	case "dead":
		in.storeDeadLocked(m, info)
		fallthrough
	default:
		in.removeLocked(m)
	}
	return nil
}

// newFakeBus is a conformance.NewBus: a bus over a fresh fake broker, which
// stops after the suite has shut the bus down.
func newFakeBus(t testing.TB, opts ...courier.BusOption) *courier.Bus {
	f := newFakeBroker(t)
	return courier.New(append([]courier.BusOption{courier.WithTransport(f)}, opts...)...)
}

// The bus passes the conformance suite over a transport: remote.go keeps
// the semantics the in-memory engine has.
func TestConformanceOverATransport(t *testing.T) {
	conformance.Run(t, newFakeBus)
}
