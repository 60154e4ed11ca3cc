package middleware

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net/url"
	"sync"
	"sync/atomic"
	"time"

	"github.com/courierbus/courier"
)

// Defaults of [IdempotencyOptions].
const (
	// DefaultSendWindow is how long a sent key turns away duplicate sends,
	// as JetStream's default duplicate window.
	DefaultSendWindow = 2 * time.Minute
	// DefaultDoneTTL is how long a handled key is remembered.
	DefaultDoneTTL = 24 * time.Hour
	// DefaultLease is how long a delivery may hold its key.
	DefaultLease = 5 * time.Minute
)

// ErrKeyBusy is wrapped by the error of a delivery attempt whose key another
// holder of a shared [Store] (another process) has reserved. The attempt
// fails without running the handler, and the retry policy retries it.
var ErrKeyBusy = errors.New("middleware: idempotency key in progress elsewhere")

// IdempotencyOptions configures [NewIdempotency]. The zero value means the
// defaults written beside each field.
type IdempotencyOptions struct {
	// SendWindow is how long after a send with an idempotency key was
	// accepted another send of the same key to the same queue or topic is
	// turned away with [courier.ErrDuplicate]. Default [DefaultSendWindow];
	// a negative value turns duplicate detection on sends off. With a
	// [MemoryStore] the window counts from the message's SentAt (or from
	// a later time the store has already read); other stores count it from
	// their Commit, a moment later.
	SendWindow time.Duration
	// DoneTTL is how long a key whose handler succeeded is remembered, so
	// that a redelivery or resend of it is acknowledged without running the
	// handler. Default [DefaultDoneTTL].
	DoneTTL time.Duration
	// Lease bounds how long a delivery holds its key in the store while its
	// handler runs; if the holder vanishes (a crashed process sharing the
	// store), the key is free again after Lease. Make it longer than the
	// longest handler run; [Timeout] can enforce that. Default
	// [DefaultLease].
	Lease time.Duration
}

// IdempotencyStats counts what an [Idempotency] has done.
type IdempotencyStats struct {
	// DuplicateSends counts sends turned away with [courier.ErrDuplicate].
	DuplicateSends uint64
	// Skipped counts deliveries acknowledged without running the handler,
	// because their key was done.
	Skipped uint64
	// Waited counts deliveries that waited for another delivery of their key,
	// in this process, to finish.
	Waited uint64
	// Busy counts delivery attempts failed with [ErrKeyBusy].
	Busy uint64
	// Committed counts keys recorded as done after their handler succeeded.
	Committed uint64
	// Released counts keys freed after their handler failed.
	Released uint64
	// StoreErrors counts Store calls that failed. A failed Reserve fails the
	// send or the delivery attempt (it is retried); a failed Commit after a
	// successful handler still acknowledges the message, and a duplicate of
	// it may then run the handler again.
	StoreErrors uint64
}

// Idempotency gives a bus duplicate detection on sends and effectively-once
// handling, for messages that carry an idempotency key
// ([courier.WithIdempotencyKey], [courier.IdempotencyKey]). Messages without
// a key pass through untouched. Create it with [NewIdempotency] and register
// its [Idempotency.Middleware] with [courier.Bus.Use] (or on one queue, topic
// or subscription with [courier.WithMiddleware]).
//
// On the send path, a send whose key was sent to the same queue or topic
// within SendWindow, or is being sent right now, is turned away: Send and
// Publish return an error wrapping [courier.ErrDuplicate] and the message is
// not enqueued. The earlier message stands; the sender can treat the error as
// success. A send that fails (a full queue, a closed bus) frees its key.
//
// On the handling path, keys are scoped by queue, or by topic and
// subscription, so each subscription handles a key once, independently. The
// key is recorded as done only after the rest of the chain returned nil; a
// delivery whose key is done is acknowledged without running the rest of the
// chain. Two deliveries of one key do not run at the same time: within this
// Idempotency, the second waits (holding its worker, until its context ends)
// for the first to finish, then is acknowledged if the first succeeded, or
// runs if it failed. A key reserved by another process sharing the Store
// fails the attempt with [ErrKeyBusy], to be retried. A failure or a panic
// releases the key, so the retry, or a duplicate, can run the handler.
// Over a [MemoryStore], a delivery holds its key in this process, as in the
// store, for at most Lease: a duplicate that arrives after the lease of a
// delivery still running ran out does not wait for it.
//
// Effectively once means the handler's effects happen once per key as long
// as the handler either succeeds or leaves no effect behind when it fails:
// a handler that fails after part of its work must make that part safe to
// redo.
//
// Register it outside middleware that may fail an attempt after the handler
// succeeded, so that such a failure releases the key. An Idempotency is safe
// for concurrent use and may serve several buses that share its Store.
type Idempotency struct {
	store      Store
	sendWindow time.Duration
	doneTTL    time.Duration
	lease      time.Duration

	// detach says whether Commit and Release need a context that the
	// caller's cancellation does not reach (not for a MemoryStore).
	detach bool
	// mem is the store when it is a MemoryStore, with its shorter paths;
	// else nil.
	mem memoryPaths

	mu     sync.Mutex
	active map[Key]chan struct{} // delivery in progress → nil, or closed when it ends
	// Over a MemoryStore, the store tells which deliveries of a key are this
	// Idempotency's (id), and only a delivery that must wait for one of them
	// registers, in waiting; nwaiting counts the registered, so that a
	// delivery that ends looks at the map only when someone waits.
	id       uint32
	waiting  map[Key]*keyWaiters
	nwaiting atomic.Int64

	scopesMu sync.Mutex                              // serialises additions to scopes
	scopes   atomic.Pointer[map[scopeID]*scopeEntry] // read-only once stored
	// The first scopes looked up for sends ([0]) and for deliveries ([1]),
	// never replaced, so that no delivery writes here once they are set: a
	// queue's messages carry the same name strings, so comparing them is a
	// comparison of pointers, cheaper than hashing them for the map.
	hotScopes [2][hotScopes]atomic.Pointer[scopeEntry]

	duplicateSends, skipped, waited, busy atomic.Uint64
	committed, released, storeErrors      atomic.Uint64
}

// NewIdempotency returns an Idempotency that records keys in store, which
// must not be nil ([NewMemoryStore] is the in-process one). It fails with an
// error wrapping [courier.ErrInvalidOption] for a nil store or a negative
// DoneTTL or Lease.
func NewIdempotency(store Store, opts IdempotencyOptions) (*Idempotency, error) {
	switch {
	case store == nil:
		return nil, fmt.Errorf("%w: NewIdempotency: nil Store", courier.ErrInvalidOption)
	case opts.DoneTTL < 0:
		return nil, fmt.Errorf("%w: NewIdempotency: negative DoneTTL %v", courier.ErrInvalidOption, opts.DoneTTL)
	case opts.Lease < 0:
		return nil, fmt.Errorf("%w: NewIdempotency: negative Lease %v", courier.ErrInvalidOption, opts.Lease)
	}
	if opts.SendWindow == 0 {
		opts.SendWindow = DefaultSendWindow
	}
	if opts.DoneTTL == 0 {
		opts.DoneTTL = DefaultDoneTTL
	}
	if opts.Lease == 0 {
		opts.Lease = DefaultLease
	}
	_, ignoresContext := store.(interface{ ignoresContext() })
	mem, _ := store.(memoryPaths)
	return &Idempotency{
		mem:        mem,
		store:      store,
		sendWindow: opts.SendWindow,
		doneTTL:    opts.DoneTTL,
		lease:      opts.Lease,
		detach:     !ignoresContext,
		active:     make(map[Key]chan struct{}),
		id:         nextIdempotencyID.Add(1),
		waiting:    make(map[Key]*keyWaiters),
	}, nil
}

// nextIdempotencyID numbers the Idempotency values of the process, from 1.
var nextIdempotencyID atomic.Uint32

// Middleware returns the middleware, named "idempotency", with a send hook
// (none when SendWindow is negative) and a handle hook.
func (i *Idempotency) Middleware() courier.Middleware {
	m := courier.Middleware{Name: "idempotency", Handle: i.handle}
	if i.sendWindow > 0 {
		m.Send = i.send
	}
	return m
}

// Stats returns a snapshot of the counters.
func (i *Idempotency) Stats() IdempotencyStats {
	return IdempotencyStats{
		DuplicateSends: i.duplicateSends.Load(),
		Skipped:        i.skipped.Load(),
		Waited:         i.waited.Load(),
		Busy:           i.busy.Load(),
		Committed:      i.committed.Load(),
		Released:       i.released.Load(),
		StoreErrors:    i.storeErrors.Load(),
	}
}

// scopeID is what a [Key.Scope] is built from.
type scopeID struct {
	handled   bool // else sent
	dest, sub string
}

type scopeEntry struct {
	id    scopeID
	scope string
}

// scope returns the Key.Scope of sends to dest (handled false), or of
// deliveries to dest and subscription sub (handled true). Each is built once
// and then read without locking or allocating.
func (i *Idempotency) scope(handled bool, dest, sub string) string {
	hot := &i.hotScopes[0]
	if handled {
		hot = &i.hotScopes[1]
	}
	free := -1
	for j := range hot {
		e := hot[j].Load()
		if e == nil {
			free = j
			break
		}
		if e.id.dest == dest && e.id.sub == sub {
			return e.scope
		}
	}
	e := i.scopeEntry(scopeID{handled, dest, sub})
	if free >= 0 {
		hot[free].CompareAndSwap(nil, e) // a concurrent first use may win the slot
	}
	return e.scope
}

// hotScopes is how many scopes of each path Idempotency.scope finds without
// the map.
const hotScopes = 4

// scopeEntry returns the entry for id, made on first use.
func (i *Idempotency) scopeEntry(id scopeID) *scopeEntry {
	if m := i.scopes.Load(); m != nil {
		if e, ok := (*m)[id]; ok {
			return e
		}
	}
	i.scopesMu.Lock()
	defer i.scopesMu.Unlock()
	old := i.scopes.Load()
	if old != nil {
		if e, ok := (*old)[id]; ok {
			return e
		}
	}
	// Copy on write: there are only as many scopes as destinations and
	// subscriptions, and each is added once.
	m := make(map[scopeID]*scopeEntry)
	if old != nil {
		maps.Copy(m, *old)
	}
	e := &scopeEntry{id: id}
	switch {
	case !id.handled:
		e.scope = "sent/" + url.PathEscape(id.dest)
	case id.sub == "":
		e.scope = deliveryScope + url.PathEscape(id.dest)
	default:
		e.scope = deliveryScope + url.PathEscape(id.dest) + "/" + url.PathEscape(id.sub)
	}
	m[id] = e
	i.scopes.Store(&m)
	return e
}

// detached returns the context for a Commit or Release, which must happen
// even if ctx has ended: ctx without its cancellation, unless the store
// ignores it or ctx cannot end.
func (i *Idempotency) detached(ctx context.Context) context.Context {
	if !i.detach || ctx.Done() == nil {
		return ctx
	}
	return context.WithoutCancel(ctx)
}

func (i *Idempotency) send(next courier.SendFunc) courier.SendFunc {
	return func(ctx context.Context, env courier.Envelope) error {
		md := env.Meta()
		if md.IdempotencyKey == "" {
			return next(ctx, env)
		}
		id, dest := md.IdempotencyKey, md.Destination
		key := Key{Scope: i.scope(false, dest, ""), ID: id}
		var r Reservation
		var err error
		if i.mem != nil {
			// The message was stamped a moment ago: its SentAt saves
			// the store a clock reading.
			r, err = i.mem.markSent(ctx, key, i.sendWindow, md.SentAt)
		} else {
			r, err = i.store.Reserve(ctx, key, i.sendWindow)
		}
		if err != nil {
			i.storeErrors.Add(1)
			return fmt.Errorf("middleware: idempotency store: %w", err)
		}
		if r.Status != Reserved {
			i.duplicateSends.Add(1)
			return fmt.Errorf("%w: idempotency key %q already sent to %q", courier.ErrDuplicate, id, dest)
		}
		// The message may be handled before next returns: read nothing from
		// env after this call.
		if err := next(ctx, env); err != nil {
			if i.mem != nil {
				i.count(i.mem.unmarkSent(key, r.Token), nil)
			} else {
				i.count(i.store.Release(i.detached(ctx), key, r.Token), nil)
			}
			return err
		}
		if i.mem == nil {
			i.count(i.store.Commit(i.detached(ctx), key, r.Token, i.sendWindow), nil)
		}
		return nil
	}
}

// memoryPaths are the shorter paths of a [MemoryStore]. markSent records a
// send in one call instead of a Reserve and a Commit: the key is done from
// the start and forgotten if the send fails (unmarkSent); a concurrent
// duplicate sees it done rather than in progress, and is a duplicate all the
// same.
type memoryPaths interface {
	reserveOwned(ctx context.Context, key Key, lease time.Duration, owner uint32) (Reservation, error)
	markSent(ctx context.Context, key Key, ttl time.Duration, at time.Time) (Reservation, error)
	unmarkSent(key Key, token uint64) error
	// commitHeld and releaseHeld are Commit and Release for a reservation
	// the store made, found without a lookup of the key.
	commitHeld(key Key, r Reservation, ttl time.Duration) error
	releaseHeld(key Key, r Reservation) error
}

// commit and release end the delivery's reservation r of key.
func (i *Idempotency) commit(ctx context.Context, key Key, r Reservation) error {
	if i.mem != nil {
		return i.mem.commitHeld(key, r, i.doneTTL)
	}
	return i.store.Commit(i.detached(ctx), key, r.Token, i.doneTTL)
}

func (i *Idempotency) release(ctx context.Context, key Key, r Reservation) error {
	if i.mem != nil {
		return i.mem.releaseHeld(key, r)
	}
	return i.store.Release(i.detached(ctx), key, r.Token)
}

func (i *Idempotency) handle(next courier.HandlerFunc) courier.HandlerFunc {
	return func(ctx context.Context, env courier.Envelope) (err error) {
		md := env.Meta()
		if md.IdempotencyKey == "" {
			return next(ctx, env)
		}
		key := Key{Scope: i.scope(true, md.Destination, md.Subscription), ID: md.IdempotencyKey}
		var r Reservation
		if i.mem != nil {
			// The store knows this Idempotency's deliveries apart from
			// other processes': only a delivery that finds its key held
			// by one of ours waits, and only then is a map involved.
			var gaveUp error
			r, err, gaveUp = i.reserveWaiting(ctx, key)
			if gaveUp != nil {
				return gaveUp
			}
			if err == nil && r.Status == Reserved {
				defer i.wake(key)
			}
		} else {
			if err := i.enter(ctx, key); err != nil {
				return err
			}
			defer i.leave(key)
			r, err = i.store.Reserve(ctx, key, i.lease)
		}
		switch {
		case err != nil:
			i.storeErrors.Add(1)
			return fmt.Errorf("middleware: idempotency store: %w", err)
		case r.Status == Done:
			i.skipped.Add(1)
			return nil
		case r.Status == InProgress:
			i.busy.Add(1)
			return fmt.Errorf("%w: %q", ErrKeyBusy, key.ID)
		}

		finished := false
		defer func() {
			if !finished { // a panic: free the key, let the panic go on
				i.count(i.release(ctx, key, r), &i.released)
			}
		}()
		err = next(ctx, env)
		finished = true
		if err != nil {
			i.count(i.release(ctx, key, r), &i.released)
			return err
		}
		i.count(i.commit(ctx, key, r), &i.committed)
		return nil
	}
}

// keyWaiters are the deliveries that wait for this Idempotency's delivery of
// a key to end: they wait for ch to close.
type keyWaiters struct {
	ch chan struct{}
	n  int
}

// reserveWaiting reserves key in the MemoryStore, with the store's result
// and error. While a delivery of this Idempotency holds the key, it waits for
// that delivery to end (see wake), then tries again; if ctx ends first, it
// gives up with ctx's error (gaveUp). A key held by another owner of the
// store is InProgress, as from Reserve.
func (i *Idempotency) reserveWaiting(ctx context.Context, key Key) (r Reservation, err, gaveUp error) {
	waited := false
	var w *keyWaiters // registered as waiting, between the two looks
	for {
		r, err = i.mem.reserveOwned(ctx, key, i.lease, i.id)
		if err != nil || r.Status != InProgress || r.holder != i.id {
			if w != nil {
				i.unwait(key, w)
			}
			if waited && err == nil {
				i.waited.Add(1)
			}
			return r, err, nil
		}
		if w == nil {
			// Register, then look again: a holder that ended before the
			// registration saw nobody waiting, but then the next look
			// finds the key free. One that ends after it sees the
			// registration.
			if testHookBeforeRegister != nil {
				testHookBeforeRegister()
			}
			w = i.register(key)
			continue
		}
		waited = true
		select {
		case <-w.ch: // the holder took w out of the map
			w = nil
		case <-ctx.Done():
			i.unwait(key, w)
			return Reservation{}, nil, ctx.Err()
		}
	}
}

// register counts one more delivery waiting for key and returns its waiters.
func (i *Idempotency) register(key Key) *keyWaiters {
	i.mu.Lock()
	defer i.mu.Unlock()
	w := i.waiting[key]
	if w == nil {
		w = &keyWaiters{ch: make(chan struct{})}
		i.waiting[key] = w
	}
	w.n++
	i.nwaiting.Add(1)
	return w
}

// testHookBeforeRegister, when set by a test, runs in reserveWaiting
// between the look that found the key held and the registration.
var testHookBeforeRegister func()

// unwait takes one waiter off w, unless the holder of key woke them all.
func (i *Idempotency) unwait(key Key, w *keyWaiters) {
	i.mu.Lock()
	if i.waiting[key] == w {
		w.n--
		i.nwaiting.Add(-1)
		if w.n == 0 {
			delete(i.waiting, key)
		}
	}
	i.mu.Unlock()
}

// wake ends a delivery that reserved key through reserveWaiting, after its
// Commit or Release: the deliveries that wait for it try again.
func (i *Idempotency) wake(key Key) {
	if i.nwaiting.Load() == 0 {
		return
	}
	i.mu.Lock()
	w := i.waiting[key]
	if w != nil {
		delete(i.waiting, key)
		i.nwaiting.Add(-int64(w.n))
	}
	i.mu.Unlock()
	if w != nil {
		close(w.ch)
	}
}

// enter waits until no other delivery of key runs in this Idempotency, then
// marks key active; leave ends that. It fails with ctx's error. The channel
// that waiters wait on is made by the first of them, so a delivery that
// nobody waits for allocates nothing.
func (i *Idempotency) enter(ctx context.Context, key Key) error {
	waited := false
	for {
		i.mu.Lock()
		busy, ok := i.active[key]
		if !ok {
			i.active[key] = nil
			i.mu.Unlock()
			if waited {
				i.waited.Add(1)
			}
			return nil
		}
		if busy == nil {
			busy = make(chan struct{})
			i.active[key] = busy
		}
		i.mu.Unlock()
		waited = true
		select {
		case <-busy:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// leave ends what enter started, waking the deliveries that wait for key.
func (i *Idempotency) leave(key Key) {
	i.mu.Lock()
	busy := i.active[key]
	delete(i.active, key)
	i.mu.Unlock()
	if busy != nil {
		close(busy)
	}
}

// count records the outcome of a Commit or Release: ok in counter, a failure
// in StoreErrors.
func (i *Idempotency) count(err error, ok *atomic.Uint64) {
	switch {
	case err != nil:
		i.storeErrors.Add(1)
	case ok != nil:
		ok.Add(1)
	}
}
