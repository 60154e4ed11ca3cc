package courier

import (
	"context"
	"fmt"
	"log/slog"
	"reflect"
	"sync"
	"sync/atomic"
	"time"
)

// DefaultStopGrace is how long Close, and Shutdown once its context has
// ended, wait for running handlers to return after cancelling their contexts.
const DefaultStopGrace = time.Second

// Bus owns queues, topics, their workers and one scheduler for delays and
// retries. Create it with [New], declare destinations with [NewQueue] and
// [NewTopic], and stop it with [Bus.Shutdown] or [Bus.Close]. A Bus is safe
// for concurrent use.
type Bus struct {
	logger     *slog.Logger
	deadHooks  []func(DeadLetterInfo)
	retryHooks []func(RetryInfo)
	retry      RetryPolicy
	grace      time.Duration
	optErr     error     // from New's options; reported by NewQueue and NewTopic
	transport  Transport // nil: the in-memory engine
	name       string    // WithName; made up when a transport needs one

	mu        sync.Mutex
	state     busState
	names     map[string]declaration
	mailboxes []*mailbox
	topics    []*topicCore
	remotes   []*remoteInbox // the transport inboxes this bus consumes or reads
	mws       []Middleware
	workers   int
	noWorkers chan struct{} // closed when workers drops to 0 after the stop began

	mwVersion atomic.Uint64
	closing   atomic.Bool // Shutdown or Close has begun
	sched     *scheduler

	handlerCtx     context.Context // parent of every handler context
	cancelHandlers context.CancelFunc
	recvCtx        context.Context // ends when transport receivers must stop
	cancelRecv     context.CancelFunc

	drainGen  atomic.Uint64 // counts sends admitted while draining
	drainPoke chan struct{} // cap 1: some mailbox emptied while draining
	force     chan struct{} // closed by Close to cut a Shutdown short
	forceOnce sync.Once

	idleWaiters atomic.Int32 // WaitIdle calls in progress
	announcing  atomic.Int64 // dead letters and retries whose hooks have not yet run
	idleMu      sync.Mutex
	idleCh      chan struct{} // closed when some mailbox emptied while WaitIdle waits

	shutdownDead atomic.Int64
	abandoned    atomic.Int64
	returned     atomic.Int64 // transport deliveries handed back at the stop
	stopOnce     sync.Once
	stopErr      error
}

type busState uint8

const (
	busOpen busState = iota
	busDraining
	busStopped
)

type declaration struct {
	kind string // "queue" or "topic"
	typ  reflect.Type
	obj  any // *queueCore or *topicCore
}

// BusOption configures [New].
type BusOption func(*Bus)

// WithLogger sets the logger the bus reports dead letters (at Error) and
// hook failures to. Default slog.Default().
func WithLogger(l *slog.Logger) BusOption {
	return func(b *Bus) {
		if l != nil {
			b.logger = l
		}
	}
}

// WithDefaultRetry sets the retry policy of every queue and subscription
// declared without [WithRetry]. An invalid policy makes NewQueue and NewTopic
// fail with an error wrapping [ErrInvalidOption].
func WithDefaultRetry(p RetryPolicy) BusOption {
	return func(b *Bus) {
		if err := p.validate(); err != nil && b.optErr == nil {
			b.optErr = err
		}
		b.retry = p
	}
}

// WithStopGrace sets how long Close, and Shutdown once its context has ended,
// wait for running handlers to return after cancelling their contexts, before
// abandoning them. Default [DefaultStopGrace]; negative means zero.
func WithStopGrace(d time.Duration) BusOption {
	return func(b *Bus) { b.grace = max(d, 0) }
}

// New returns a running bus. It starts one goroutine, the scheduler; every
// Consume and Subscribe starts more. Stop it with Shutdown or Close, or those
// goroutines outlive it.
func New(opts ...BusOption) *Bus {
	b := &Bus{
		logger:    slog.Default(),
		grace:     DefaultStopGrace,
		names:     make(map[string]declaration),
		drainPoke: make(chan struct{}, 1),
		force:     make(chan struct{}),
	}
	for _, o := range opts {
		if o != nil {
			o(b)
		}
	}
	b.handlerCtx, b.cancelHandlers = context.WithCancel(context.Background())
	b.recvCtx, b.cancelRecv = context.WithCancel(context.Background())
	b.sched = newScheduler()
	return b
}

// Use adds middleware to every queue and subscription of the bus, existing
// ones included (from their next message on). Middleware added first runs
// outermost; see [Middleware] for where bus middleware sits in the chain.
func (b *Bus) Use(mws ...Middleware) {
	b.mu.Lock()
	defer b.mu.Unlock()
	next := make([]Middleware, 0, len(b.mws)+len(mws))
	b.mws = append(append(next, b.mws...), mws...)
	b.mwVersion.Add(1)
}

func (b *Bus) middlewareSnapshot() ([]Middleware, uint64) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.mws, b.mwVersion.Load()
}

// declare registers name for a queue or topic of type typ, or returns the
// existing declaration. Callers hold b.mu.
func (b *Bus) declareLocked(name, kind string, typ reflect.Type) (declaration, bool, error) {
	if b.state != busOpen {
		return declaration{}, false, ErrClosed
	}
	d, ok := b.names[name]
	if ok && (d.kind != kind || d.typ != typ) {
		return d, true, fmt.Errorf("%w: %q is a %s of %v, not a %s of %v", ErrTypeMismatch, name, d.kind, d.typ, kind, typ)
	}
	return d, ok, nil
}

// startWorkers starts n workers of c. It fails with ErrClosed once the bus has
// begun to shut down.
func (b *Bus) startWorkers(c *consumer, n int) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.state != busOpen {
		return ErrClosed
	}
	b.startWorkersLocked(c, n)
	return nil
}

// startWorkersLocked starts n workers of c; callers hold b.mu and have
// checked that the bus is open.
func (b *Bus) startWorkersLocked(c *consumer, n int) {
	mb := c.mb
	mb.mu.Lock()
	mb.consumers++
	ws := make([]*worker, n)
	for i := range ws {
		ws[i] = &worker{c: c}
	}
	mb.workers = append(mb.workers, ws...)
	mb.mu.Unlock()
	b.workers += n
	for _, w := range ws {
		go w.run()
	}
}

func (b *Bus) workerExited() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.workers--
	if b.workers == 0 && b.noWorkers != nil {
		close(b.noWorkers)
		b.noWorkers = nil
	}
}

// admits says whether the bus still takes a message sent with ctx, for the
// paths that reach no mailbox (a publish no subscription receives).
func (b *Bus) admits(ctx context.Context) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	switch {
	case b.state == busOpen:
		return nil
	case b.state == busDraining && b.fromHandler(ctx):
		return nil
	}
	return ErrClosed
}

// fromHandler reports whether ctx is the context of a handler of this bus:
// sends from handlers are still admitted while Shutdown drains.
func (b *Bus) fromHandler(ctx context.Context) bool {
	env, ok := MessageFromContext(ctx)
	return ok && env.state().mb != nil && env.state().mb.bus == b
}

func (b *Bus) pokeDrain() {
	select {
	case b.drainPoke <- struct{}{}:
	default:
	}
}

// Shutdown stops the bus gracefully. It stops intake at once: sends from
// outside the bus's handlers fail with [ErrClosed] (sends from handlers are
// still admitted, so a message being handled can pass work on). It then waits
// until every message already accepted has been handled or dead-lettered —
// ready ones, ones in flight, retries and delayed ones alike — and stops the
// workers and the scheduler.
//
// If ctx ends first, Shutdown cancels the handlers' contexts, dead-letters
// every message not yet handled with reason [ReasonShutdown], waits up to the
// stop grace ([WithStopGrace]) for running handlers to return, abandons those
// that do not (their messages are dead-lettered too), and returns a
// [*ShutdownError] that counts them. A message delayed past the deadline is
// among them: give Shutdown a deadline that suits your delays. Messages in a
// queue that has no consumer are dead-lettered without waiting.
//
// Over a [Transport], Shutdown waits until the broker holds nothing ready,
// in flight or scheduled for the queues and subscriptions this bus consumes
// (asking it every few milliseconds). If ctx ends first, nothing is
// dead-lettered for the stop: the messages stay in the broker, those this
// bus had received are handed back (counted in [ShutdownError.Returned]), and
// the next consumer gets them.
//
// Shutdown and Close may be called any number of times, from any goroutine;
// every call returns the result of the stop. No goroutine of the bus outlives
// the call, except a handler that ignores its cancelled context: its worker
// exits when the handler returns.
func (b *Bus) Shutdown(ctx context.Context) error {
	b.mu.Lock()
	if b.state == busOpen {
		b.state = busDraining
	}
	b.closing.Store(true)
	mbs := b.mailboxes
	b.mu.Unlock()
	for _, mb := range mbs {
		mb.beginDrain()
	}
	var cause error
	var poll <-chan time.Time
	if b.transport != nil {
		t := time.NewTicker(remotePoll)
		defer t.Stop()
		poll = t.C
	}
	for {
		gen := b.drainGen.Load()
		all := true
		for _, mb := range mbs {
			if !mb.drained() {
				all = false
				break
			}
		}
		if all && b.drainGen.Load() == gen && b.remotesDrained() {
			break
		}
		select {
		case <-b.drainPoke:
			continue
		case <-poll:
			continue
		case <-ctx.Done():
			cause = ctx.Err()
		case <-b.force:
		}
		break
	}
	return b.stop(cause)
}

// Close stops the bus at once: intake stops, handler contexts are cancelled,
// every message not yet handled is dead-lettered with reason
// [ReasonShutdown], and running handlers get the stop grace to return. It
// returns a [*ShutdownError] when it dead-lettered anything. See
// [Bus.Shutdown].
func (b *Bus) Close() error {
	b.mu.Lock()
	b.state = max(b.state, busDraining)
	b.closing.Store(true)
	b.mu.Unlock()
	b.forceOnce.Do(func() { close(b.force) })
	return b.stop(nil)
}

func (b *Bus) stop(cause error) error {
	b.stopOnce.Do(func() { b.stopErr = b.doStop(cause) })
	return b.stopErr
}

func (b *Bus) doStop(cause error) error {
	b.mu.Lock()
	b.state = busStopped
	mbs := b.mailboxes
	topics := b.topics
	b.mu.Unlock()

	b.cancelRecv()
	remotes := b.remoteInboxes()
	stopReceiving(remotes)
	b.cancelHandlers()
	for _, mb := range mbs {
		for _, rec := range mb.stop() {
			b.announce(rec)
		}
	}
	for _, t := range topics {
		t.quiesce() // wait out publishes that reserved before the stop
	}
	for _, env := range b.sched.stop() {
		b.announce(env.state().mb.deadLetterScheduled(env))
	}
	if !b.waitWorkers() {
		for _, mb := range mbs {
			for _, rec := range mb.abandon() {
				b.announce(rec)
			}
		}
		for _, ri := range remotes {
			// The broker delivers their messages again once its
			// acknowledgement wait runs out.
			b.abandoned.Add(ri.inFlight.Load())
		}
	}
	dead, abandoned, returned := b.shutdownDead.Load(), b.abandoned.Load(), b.returned.Load()
	left := 0
	if cause != nil {
		for _, ri := range remotes {
			left += ri.left()
		}
	}
	if dead > 0 || abandoned > 0 || returned > 0 || left > 0 {
		return &ShutdownError{DeadLettered: int(dead), Abandoned: int(abandoned), Returned: int(returned), Left: left, Cause: cause}
	}
	return nil
}

// waitWorkers waits up to the stop grace for every worker to exit.
func (b *Bus) waitWorkers() bool {
	b.mu.Lock()
	if b.workers == 0 {
		b.mu.Unlock()
		return true
	}
	if b.noWorkers == nil {
		b.noWorkers = make(chan struct{})
	}
	done := b.noWorkers
	b.mu.Unlock()
	timer := time.NewTimer(b.grace)
	defer timer.Stop()
	select {
	case <-done:
		return true
	case <-timer.C:
		return false
	}
}

// Stats returns a snapshot of every queue and subscription of the bus.
func (b *Bus) Stats() BusStats {
	b.mu.Lock()
	var queues []*queueCore
	var topics []*topicCore
	for _, d := range b.names {
		switch obj := d.obj.(type) {
		case *queueCore:
			queues = append(queues, obj)
		case *topicCore:
			topics = append(topics, obj)
		}
	}
	b.mu.Unlock()
	s := BusStats{Queues: make(map[string]Stats), Topics: make(map[string]TopicStats)}
	for _, q := range queues {
		qs := q.store().snapshot()
		s.Queues[q.name] = qs
		s.Total.add(qs)
	}
	for _, t := range topics {
		ts := t.stats()
		s.Topics[t.name] = ts
		for _, ss := range ts.Subscriptions {
			s.Total.add(ss)
		}
	}
	return s
}
