package courier

import (
	"context"
	"reflect"
	"sync/atomic"

	"github.com/courierbus/courier/internal/clock"
)

// Handler handles one delivery attempt of a typed message. Returning nil
// acknowledges the message; an error fails the attempt, and the retry policy
// decides what follows ([Permanent] skips the retries). ctx is cancelled when
// the bus stops, and carries the message's expiry when it has a time to live;
// pass it to sends made from the handler so they inherit the correlation ID.
type Handler[T any] func(ctx context.Context, m *Message[T]) error

// Queue is a point-to-point destination: each message is handled by one of
// the queue's consumers. A Queue is a handle; every handle of one name on one
// bus shares the same queue. Its methods are safe for concurrent use.
type Queue[T any] struct {
	c *queueCore
}

type queueCore struct {
	bus     *Bus
	name    string
	mb      *mailbox
	workers int // default for Consume
	mws     []Middleware
	keyFn   func(Envelope) string // IdempotencyKey option
	put     SendFunc              // mb.put, bound once: a method value allocates
	send    atomic.Pointer[builtSend]
	ext     any          // the replies of a NewRequestQueue, shared by its handles; nil for a plain queue
	remote  *remoteInbox // set on a bus with a transport, instead of a mailbox of its own
}

// store is where the queue's dead letters and stats are.
func (qc *queueCore) store() dlqStore {
	if qc.remote != nil {
		return qc.remote
	}
	return qc.mb
}

type builtSend struct {
	version uint64
	s       SendFunc
}

// NewQueue declares the queue name on bus for messages of type T, or returns
// a handle to it when it exists. Options configure it when it is first
// declared: [Capacity], [WithOverflow], [WithRetry], [DeadLetterCapacity],
// [WithMiddleware], and [Workers] as the default for Consume.
//
// It fails with [ErrNilBus], [ErrEmptyName], [ErrClosed] once the bus shuts
// down, [ErrTypeMismatch] when name is a topic or a queue of another type, and
// [ErrInvalidOption] for a bad option or for options given to an existing
// queue.
func NewQueue[T any](bus *Bus, name string, opts ...Option) (*Queue[T], error) {
	cfg, err := declarationConfig(bus, name, scopeQueue, opts)
	if err != nil {
		return nil, err
	}
	bus.mu.Lock()
	defer bus.mu.Unlock()
	d, exists, err := bus.declareLocked(name, "queue", reflect.TypeFor[T]())
	if err != nil {
		return nil, err
	}
	if exists {
		if len(opts) > 0 {
			return nil, invalidOption("queue %q exists: options are taken only when it is first declared", name)
		}
		return &Queue[T]{c: d.obj.(*queueCore)}, nil
	}
	if err := cfg.checkKeyType(name, reflect.TypeFor[T]()); err != nil {
		return nil, err
	}
	qc := &queueCore{bus: bus, name: name, workers: cfg.workers, mws: cfg.middleware, keyFn: cfg.keyFn}
	qc.mb = newMailbox(bus, name, "", &cfg, cfg.middleware)
	if err := qc.attach(&cfg, decodeMessage[T]); err != nil {
		return nil, err
	}
	bus.names[name] = declaration{kind: "queue", typ: reflect.TypeFor[T](), obj: qc}
	return &Queue[T]{c: qc}, nil
}

// attach puts the new queue qc, whose mailbox is made, on its engine: the
// bus's transport, or the mailbox itself. Callers hold bus.mu.
func (qc *queueCore) attach(cfg *config, decode Decoder) error {
	b := qc.bus
	if b.transport == nil {
		qc.put = qc.mb.put
		b.mailboxes = append(b.mailboxes, qc.mb)
		return nil
	}
	rd, err := declareRemote(b, qc.name, false, cfg, decode)
	if err != nil {
		return err
	}
	if qc.remote, err = openRemoteInbox(rd, qc.mb, nil); err != nil {
		return err
	}
	qc.put = rd.send
	b.remotes = append(b.remotes, qc.remote)
	return nil
}

// declarationConfig checks the arguments shared by NewQueue and NewTopic and
// applies their options over the defaults.
func declarationConfig(bus *Bus, name string, sc scope, opts []Option) (config, error) {
	cfg := config{scope: sc, workers: DefaultWorkers, capacity: DefaultCapacity, dlqCap: DefaultDeadLetterCapacity}
	switch {
	case bus == nil:
		return cfg, ErrNilBus
	case name == "":
		return cfg, ErrEmptyName
	case bus.optErr != nil:
		return cfg, bus.optErr
	}
	return cfg, cfg.apply(opts)
}

// Name returns the queue's name.
func (q *Queue[T]) Name() string { return q.c.name }

// Send sends body to the queue. It blocks while the queue is full (with the
// [Block] policy) until there is room, ctx ends (its error is returned) or the
// bus closes ([ErrClosed]). Sent from a handler's context, the message inherits
// the handled message's correlation ID. Send returns once the message is
// accepted, not handled.
func (q *Queue[T]) Send(ctx context.Context, body T, opts ...SendOption) error {
	return q.send(ctx, body, false, opts)
}

// TrySend is Send that never waits: on a full queue with the [Block] policy it
// returns [ErrFull] at once and the message is not accepted.
func (q *Queue[T]) TrySend(ctx context.Context, body T, opts ...SendOption) error {
	return q.send(ctx, body, true, opts)
}

func (q *Queue[T]) send(ctx context.Context, body T, try bool, opts []SendOption) error {
	m, err := newMessage(ctx, q.c.name, body, try, opts)
	if err != nil {
		return err
	}
	if q.c.keyFn != nil && m.IdempotencyKey == "" {
		m.IdempotencyKey = q.c.keyFn(m)
	}
	return q.c.sendFunc()(ctx, m)
}

// newMessage builds a message sent with ctx to destination.
func newMessage[T any](ctx context.Context, destination string, body T, try bool, opts []SendOption) (*Message[T], error) {
	if ctx == nil {
		return nil, invalidOption("nil context")
	}
	m := &Message[T]{Body: body}
	md := &m.Metadata
	md.Destination = destination
	md.SentAt = clock.Now() // one clock reading, not time.Now's two
	if len(opts) > 0 {
		if err := applySendOptions(md, opts); err != nil {
			return nil, err
		}
	}
	stamp(ctx, md, &m.st.idText)
	m.st.try = try
	return m, nil
}

func (qc *queueCore) sendFunc() SendFunc {
	return cachedSend(qc.bus, &qc.send, qc.mws, qc.put)
}

// cachedSend returns the send chain of a queue or topic, rebuilt when the bus
// middleware changed.
func cachedSend(b *Bus, cache *atomic.Pointer[builtSend], own []Middleware, terminal SendFunc) SendFunc {
	if bs := cache.Load(); bs != nil && bs.version == b.mwVersion.Load() {
		return bs.s
	}
	mws, version := b.middlewareSnapshot()
	bs := &builtSend{version: version, s: chainSend(terminal, mws, own)}
	cache.Store(bs)
	return bs.s
}

// Consume starts handling the queue's messages with h on [Workers] goroutines
// (the queue's default, else 1). Consume may be called several times: the
// consumers compete for messages, each message going to one of them. Options:
// [Workers], [WithMiddleware].
//
// It fails with [ErrNilHandler], [ErrInvalidOption], or [ErrClosed] once the
// bus shuts down.
func (q *Queue[T]) Consume(h Handler[T], opts ...Option) error {
	if h == nil {
		return ErrNilHandler
	}
	cfg := config{scope: scopeConsumer, workers: q.c.workers}
	if err := cfg.apply(opts); err != nil {
		return err
	}
	c := &consumer{mb: q.c.mb, handler: typedHandler(h), middleware: cfg.middleware}
	if q.c.remote != nil {
		return q.c.bus.startRemote(q.c.remote, c, cfg.workers)
	}
	return q.c.bus.startWorkers(c, cfg.workers)
}

func typedHandler[T any](h Handler[T]) HandlerFunc {
	return func(ctx context.Context, env Envelope) error {
		return h(ctx, env.(*Message[T]))
	}
}

// DeadLetters returns the queue's dead-letter queue.
func (q *Queue[T]) DeadLetters() *DeadLetterQueue[T] { return &DeadLetterQueue[T]{s: q.c.store()} }

// Stats returns a snapshot of the queue's counters.
//
// Over a [Transport], the counters count what this bus did, while the
// gauges (Depth, InFlight, Scheduled, DeadLetters) are read from the broker
// and cover every process.
func (q *Queue[T]) Stats() Stats { return q.c.store().snapshot() }
