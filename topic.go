package courier

import (
	"context"
	"fmt"
	"reflect"
	"sync"
	"sync/atomic"
)

// Topic is a publish-subscribe destination: each published message is
// delivered to every subscription, each of which is a queue of its own with
// its own workers, retry policy, capacity and dead letters, so one slow or
// failing subscription never delays the handling of another. A Topic is a
// handle; its methods are safe for concurrent use.
type Topic[T any] struct {
	c *topicCore
}

type topicCore struct {
	bus      *Bus
	name     string
	typ      reflect.Type
	defaults config // options of NewTopic: defaults for each Subscribe
	mws      []Middleware
	keyFn    func(Envelope) string // IdempotencyKey option
	fan      SendFunc              // fanout, bound once: a method value allocates
	send     atomic.Pointer[builtSend]

	subs      atomic.Pointer[[]*subscription] // copy on write
	pubMu     sync.RWMutex                    // read-held while a publish reserves and commits
	published atomic.Uint64
	unrouted  atomic.Uint64
	remote    *remoteDest // set on a bus with a transport
}

type subscription struct {
	name   string
	mb     *mailbox
	filter func(Envelope) bool
	remote *remoteInbox // set on a bus with a transport
}

// store is where the subscription's dead letters and stats are.
func (s *subscription) store() dlqStore {
	if s.remote != nil {
		return s.remote
	}
	return s.mb
}

// NewTopic declares the topic name on bus for messages of type T, or returns
// a handle to it when it exists. [WithMiddleware] given here wraps publishes
// and the handlers of every subscription; [Capacity], [WithOverflow],
// [WithRetry], [DeadLetterCapacity] and [Workers] become the defaults of its
// subscriptions. Errors are those of [NewQueue].
func NewTopic[T any](bus *Bus, name string, opts ...Option) (*Topic[T], error) {
	cfg, err := declarationConfig(bus, name, scopeTopic, opts)
	if err != nil {
		return nil, err
	}
	typ := reflect.TypeFor[T]()
	bus.mu.Lock()
	defer bus.mu.Unlock()
	d, exists, err := bus.declareLocked(name, "topic", typ)
	if err != nil {
		return nil, err
	}
	if exists {
		if len(opts) > 0 {
			return nil, invalidOption("topic %q exists: options are taken only when it is first declared", name)
		}
		return &Topic[T]{c: d.obj.(*topicCore)}, nil
	}
	if err := cfg.checkKeyType(name, typ); err != nil {
		return nil, err
	}
	tc := &topicCore{bus: bus, name: name, typ: typ, mws: cfg.middleware, keyFn: cfg.keyFn}
	cfg.middleware, cfg.keyFn, cfg.keyType = nil, nil, nil
	tc.defaults = cfg
	tc.subs.Store(new([]*subscription))
	tc.fan = tc.fanout
	if bus.transport != nil {
		if tc.remote, err = declareRemote(bus, name, true, &cfg, decodeMessage[T]); err != nil {
			return nil, err
		}
		tc.fan = tc.publishRemote
	}
	bus.names[name] = declaration{kind: "topic", typ: typ, obj: tc}
	bus.topics = append(bus.topics, tc)
	return &Topic[T]{c: tc}, nil
}

// Name returns the topic's name.
func (t *Topic[T]) Name() string { return t.c.name }

// Subscribe adds the subscription name to the topic and starts handling its
// messages with h. It receives the messages published from then on. Options:
// [Workers], [Capacity], [WithOverflow], [WithRetry], [DeadLetterCapacity],
// [WithMiddleware], [WithFilter]; those not given come from NewTopic.
//
// It fails with [ErrEmptyName], [ErrNilHandler], [ErrDuplicateSubscription],
// [ErrInvalidOption], or [ErrClosed] once the bus shuts down.
func (t *Topic[T]) Subscribe(name string, h Handler[T], opts ...Option) error {
	if name == "" {
		return ErrEmptyName
	}
	if h == nil {
		return ErrNilHandler
	}
	tc, b := t.c, t.c.bus
	cfg := tc.defaults
	cfg.scope = scopeSubscription
	if err := cfg.apply(opts); err != nil {
		return err
	}
	if cfg.filterType != nil && cfg.filterType != tc.typ {
		return invalidOption("WithFilter for %v on topic %q of %v", cfg.filterType, tc.name, tc.typ)
	}
	b.mu.Lock()
	if b.state != busOpen {
		b.mu.Unlock()
		return ErrClosed
	}
	old := *tc.subs.Load()
	for _, s := range old {
		if s.name == name {
			b.mu.Unlock()
			return fmt.Errorf("%w: %q on topic %q", ErrDuplicateSubscription, name, tc.name)
		}
	}
	sub := &subscription{name: name, filter: cfg.filter}
	sub.mb = newMailbox(b, tc.name, name, &cfg, tc.mws, cfg.middleware)
	if tc.remote != nil {
		b.mu.Unlock()
		return tc.subscribeRemote(sub, typedHandler(h), &cfg)
	}
	subs := append(append(make([]*subscription, 0, len(old)+1), old...), sub)
	tc.subs.Store(&subs)
	b.mailboxes = append(b.mailboxes, sub.mb)
	// Start the workers in the same critical section, so a concurrent
	// Shutdown sees the subscription with its consumer or not at all.
	b.startWorkersLocked(&consumer{mb: sub.mb, handler: typedHandler(h)}, cfg.workers)
	b.mu.Unlock()
	return nil
}

// Subscription returns the handle of the subscription name, for its dead
// letters and stats, or an error wrapping [ErrUnknownSubscription].
func (t *Topic[T]) Subscription(name string) (*Subscription[T], error) {
	for _, s := range *t.c.subs.Load() {
		if s.name == name {
			return &Subscription[T]{s: s}, nil
		}
	}
	return nil, fmt.Errorf("%w: %q on topic %q", ErrUnknownSubscription, name, t.c.name)
}

// Publish publishes body to every subscription of the topic whose filter
// accepts it. It is all or nothing: it waits until every [Block]
// subscription has room (or ctx ends, or the bus closes, and then no
// subscription receives the message). A subscription with a drop policy never
// makes it wait. Publishing to a topic with no subscription is not an error:
// the message is counted in [TopicStats.Unrouted] and dropped.
func (t *Topic[T]) Publish(ctx context.Context, body T, opts ...SendOption) error {
	return t.publish(ctx, body, false, opts)
}

// TryPublish is Publish that never waits: when a [Block] subscription is
// full it returns [ErrFull] at once and no subscription receives the message.
func (t *Topic[T]) TryPublish(ctx context.Context, body T, opts ...SendOption) error {
	return t.publish(ctx, body, true, opts)
}

func (t *Topic[T]) publish(ctx context.Context, body T, try bool, opts []SendOption) error {
	m, err := newMessage(ctx, t.c.name, body, try, opts)
	if err != nil {
		return err
	}
	if t.c.keyFn != nil && m.IdempotencyKey == "" {
		m.IdempotencyKey = t.c.keyFn(m)
	}
	return cachedSend(t.c.bus, &t.c.send, t.c.mws, t.c.fan)(ctx, m)
}

// commitAll is the fast path of a publish: when every target is open and has
// room, it claims a slot in each and leaves each copy in its target's intake
// (see [intake]), taking no mailbox lock, and reports true. Otherwise it
// changes nothing and reports false, and the caller takes the path that
// waits, drops or fails. The intakes are locked together, in the order of
// the topic's subscriptions, so that a target that closes meanwhile gets no
// copy unless all do, and two publishers cannot deadlock.
func commitAll(targets []*subscription, copies []Envelope) bool {
	claimed := 0
	for _, s := range targets {
		if !s.mb.takeSlot() {
			break
		}
		claimed++
	}
	locked := 0
	if claimed == len(targets) {
		for _, s := range targets {
			s.mb.in.mu.Lock()
			if s.mb.in.closed {
				s.mb.in.mu.Unlock()
				break
			}
			locked++
		}
	}
	if locked < len(targets) {
		for _, s := range targets[:locked] {
			s.mb.in.mu.Unlock()
		}
		for _, s := range targets[:claimed] {
			s.mb.unreserve()
		}
		return false
	}
	for i, s := range targets {
		s.mb.in.pushLocked(copies[i])
		s.mb.in.mu.Unlock()
	}
	for _, s := range targets {
		s.mb.wakeIdle()
	}
	return true
}

// fanout is the terminal of a topic's send chain: it reserves a slot in every
// target subscription, then commits a copy to each.
func (tc *topicCore) fanout(ctx context.Context, env Envelope) error {
	tc.pubMu.RLock()
	defer tc.pubMu.RUnlock()
	subs := *tc.subs.Load()
	var tbuf [8]*subscription
	targets := tbuf[:0]
	for _, s := range subs {
		if s.filter != nil {
			keep, err := safeFilter(s.filter, env)
			if err != nil {
				return fmt.Errorf("courier: filter of subscription %q: %w", s.name, err)
			}
			if !keep {
				s.mb.countFiltered()
				continue
			}
		}
		targets = append(targets, s)
	}
	if len(targets) == 0 {
		if tc.bus.closing.Load() {
			if err := tc.bus.admits(ctx); err != nil {
				return err
			}
		}
		tc.published.Add(1)
		tc.unrouted.Add(1)
		return nil
	}

	try := env.state().try
	// Copy before committing: once committed, a worker may be changing the
	// original.
	var cbuf [8]Envelope
	copies := append(cbuf[:0], env)
	for len(copies) < len(targets) {
		n := min(len(targets)-len(copies), maxClones)
		block := env.clones(n)
		copies = append(copies, block[:n]...)
	}
	for i, s := range targets {
		copies[i].Meta().Subscription = s.name
	}
	if env.Meta().DeliverAt.IsZero() && commitAll(targets, copies) {
		tc.published.Add(1)
		return nil
	}

	var dbuf [8]bool
	dropped := dbuf[:0]
	for range targets {
		dropped = append(dropped, false)
	}
	for i, s := range targets {
		err := s.mb.reserve(ctx, try)
		if err == errDropNew {
			dropped[i] = true
			continue
		}
		if err != nil {
			for j := range i {
				if !dropped[j] {
					targets[j].mb.unreserve()
				}
			}
			return err
		}
	}

	for i, s := range targets {
		c := copies[i]
		if dropped[i] {
			s.mb.dropNew(c)
		} else {
			s.mb.commit(c)
		}
	}
	tc.published.Add(1)
	return nil
}

func safeFilter(f func(Envelope) bool, env Envelope) (keep bool, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = NewPanicError(r)
		}
	}()
	return f(env), nil
}

// quiesce waits for publishes that reserved slots before the stop to commit.
func (tc *topicCore) quiesce() {
	tc.pubMu.Lock()
	//lint:ignore SA2001 the empty critical section is the point: it waits for readers
	tc.pubMu.Unlock()
}

func (tc *topicCore) stats() TopicStats {
	s := TopicStats{
		Published:     tc.published.Load(),
		Unrouted:      tc.unrouted.Load(),
		Subscriptions: make(map[string]Stats),
	}
	if tc.remote != nil {
		s.Published = tc.remote.sent.Load()
	}
	for _, sub := range *tc.subs.Load() {
		s.Subscriptions[sub.name] = sub.store().snapshot()
	}
	return s
}

// Stats returns a snapshot of the topic's counters and of each subscription's.
func (t *Topic[T]) Stats() TopicStats { return t.c.stats() }

// Subscription is a handle on one subscription of a topic.
type Subscription[T any] struct {
	s *subscription
}

// Name returns the subscription's name.
func (s *Subscription[T]) Name() string { return s.s.name }

// DeadLetters returns the subscription's dead-letter queue.
func (s *Subscription[T]) DeadLetters() *DeadLetterQueue[T] {
	return &DeadLetterQueue[T]{s: s.s.store()}
}

// Stats returns a snapshot of the subscription's counters.
func (s *Subscription[T]) Stats() Stats { return s.s.store().snapshot() }

// publishRemote is the terminal of a topic's send chain over a transport:
// one send that the broker fans out.
func (tc *topicCore) publishRemote(ctx context.Context, env Envelope) error {
	return tc.remote.send(ctx, env)
}

// subscribeRemote opens the subscription's inbox on the transport and starts
// its workers. The subscription's capacity and overflow are the topic's.
func (tc *topicCore) subscribeRemote(sub *subscription, h HandlerFunc, cfg *config) error {
	b := tc.bus
	if cfg.capacity != tc.defaults.capacity || cfg.overflow != tc.defaults.overflow {
		return fmt.Errorf("%w: Capacity or WithOverflow on subscription %q over a transport: set them on NewTopic", ErrUnsupported, sub.name)
	}
	ri, err := openRemoteInbox(tc.remote, sub.mb, sub.filter)
	if err != nil {
		return err
	}
	sub.remote = ri
	b.mu.Lock()
	if b.state != busOpen {
		b.mu.Unlock()
		return ErrClosed
	}
	old := *tc.subs.Load()
	for _, s := range old {
		if s.name == sub.name {
			b.mu.Unlock()
			return fmt.Errorf("%w: %q on topic %q", ErrDuplicateSubscription, sub.name, tc.name)
		}
	}
	subs := append(append(make([]*subscription, 0, len(old)+1), old...), sub)
	tc.subs.Store(&subs)
	b.remotes = append(b.remotes, ri)
	b.mu.Unlock()
	return b.startRemote(ri, &consumer{mb: sub.mb, handler: h}, cfg.workers)
}
