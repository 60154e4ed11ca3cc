package courier

import (
	"context"
	"errors"
	"maps"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cenkalti/backoff/v4"
)

// mailbox is the in-memory engine behind one queue or one topic
// subscription: a bounded buffer of ready messages, per-key lanes for ordering,
// the workers that handle them, and the dead-letter queue. One mutex guards it
// all but the intake, where a send to an open mailbox with room leaves its
// message without taking that mutex; nothing holds either lock while a
// handler, a hook or a logger runs.
//
// Capacity counts every message the mailbox owns: ready, held in a key lane,
// scheduled, in flight, plus slots reserved by a publisher about to commit.
// A retry keeps its message's slot, so retries never wait for room.
type mailbox struct {
	bus          *Bus
	destination  string
	subscription string
	capacity     int
	overflow     Overflow
	retry        RetryPolicy // defaults applied
	dlqCap       int
	layers       [][]Middleware       // queue or topic middleware, then subscription middleware
	onDead       func(DeadLetterInfo) // set before first use; told of each dead letter after the bus hooks' log line
	onHandled    func(Envelope)       // set before first use; told of each success, on the worker, before it is counted
	remote       *remoteInbox         // set when the mailbox only stands for a transport's inbox

	// What a send on the fast path writes, on cache lines of its own: the
	// workers write the fields after them for every message, and a send
	// that shared a line with those would wait for it each time.
	_     [cacheLine]byte
	owned atomic.Int64 // changed under mu, but for the fast path of put
	_     [cacheLine - 8]byte
	in    intake
	idle  atomic.Int32 // workers waiting on work; changed under mu, read by put without it
	_     [cacheLine]byte

	mu        sync.Mutex
	work      sync.Cond // workers wait here for ready messages
	state     mbState
	ready     ring[Envelope]
	lanes     map[string]*ring[Envelope] // key → messages waiting behind the key's current one
	idleLanes []*ring[Envelope]          // empty lanes kept for reuse, at most maxIdleLanes
	laned     int                        // messages waiting in lanes
	// unreleased counts slots freed by handled messages but still counted
	// in owned: a worker gives them back in batches (see handledLocked).
	// A holder of mu that finds no free slot, or reads owned, gives them
	// back first (releaseLocked).
	unreleased int64
	inFlight   int
	scheduled  int
	space      chan struct{} // closed when a slot frees while senders wait
	consumers  int
	workers    []*worker
	dead       ring[DeadLetterInfo]
	stats      Stats      // counters only; gauges are filled in by snapshot
	spare      []Envelope // the last intake taken, emptied, for the next one
}

// cacheLine is a size that keeps two fields apart in memory when it is put
// between them: a cache line of 64 bytes, twice, since processors fetch
// lines in pairs.
const cacheLine = 128

// intake is where a send (put) or a publish (commitAll) leaves an undelayed
// message when the mailbox is open and has room, without taking mb.mu, which
// the workers take for every message: the next holder of mb.mu moves the
// messages on to the ready ring (transferLocked), in order. A message in the
// intake already holds its slot (owned).
type intake struct {
	mu     sync.Mutex
	msgs   []Envelope
	closed bool // the mailbox left mbOpen: put takes the slow path
	// pending says msgs is not empty, for a look without the lock. It
	// changes under mu, so it is true exactly while msgs holds a message.
	pending atomic.Bool
}

type mbState uint8

const (
	mbOpen     mbState = iota
	mbDraining         // Shutdown began: only sends from this bus's handlers are admitted
	mbStopped          // nothing is admitted; workers exit
)

// errDropNew tells a sender that the overflow policy dead-letters its message.
var errDropNew = errors.New("courier: drop newest")

func newMailbox(b *Bus, destination, subscription string, cfg *config, layers ...[]Middleware) *mailbox {
	retry := b.retry
	if cfg.retrySet {
		retry = cfg.retry
	}
	mb := &mailbox{
		bus:          b,
		destination:  destination,
		subscription: subscription,
		capacity:     cfg.capacity,
		overflow:     cfg.overflow,
		retry:        retry.withDefaults(),
		dlqCap:       cfg.dlqCap,
		layers:       layers,
	}
	mb.work.L = &mb.mu
	return mb
}

// put accepts env, which holds no slot yet: the terminal of a queue's send
// chain, and the way back in for replays. An undelayed message sent to an
// open mailbox with room goes to the intake; the rest take mb.mu.
func (mb *mailbox) put(ctx context.Context, env Envelope) error {
	if env.Meta().DeliverAt.IsZero() && mb.putFast(env) {
		return nil
	}
	mb.mu.Lock()
	mb.transferLocked() // what is in the intake was sent first
	if mb.state != mbOpen || !mb.takeSlot() {
		if err := mb.reserveLocked(ctx, env.state().try); err != nil {
			mb.mu.Unlock()
			if err == errDropNew {
				mb.dropNew(env)
				return ErrOverflow
			}
			return err
		}
	}
	rec, dead := mb.commitLocked(env)
	mb.mu.Unlock()
	if dead {
		mb.bus.announce(rec)
	}
	return nil
}

// reserve takes a slot for a message that commit will bring; a topic
// reserves in every subscription before it commits to any.
func (mb *mailbox) reserve(ctx context.Context, try bool) error {
	mb.mu.Lock()
	defer mb.mu.Unlock()
	mb.transferLocked()
	if mb.state == mbOpen && mb.takeSlot() {
		return nil
	}
	return mb.reserveLocked(ctx, try)
}

// reserveLocked takes a slot, applying the overflow policy when there is none.
// It may release and retake mb.mu while it waits; it returns with mb.mu held.
func (mb *mailbox) reserveLocked(ctx context.Context, try bool) error {
	for {
		if err := mb.admitLocked(ctx); err != nil {
			return err
		}
		mb.releaseLocked()
		if mb.takeSlot() {
			return nil
		}
		switch mb.overflow {
		case DropOldest:
			if mb.ready.len() == 0 {
				return errDropNew
			}
			victim := mb.ready.pop()
			mb.stats.Dropped++
			rec := mb.deadLetterLocked(victim, ReasonOverflow, nil)
			took := mb.takeSlot() // the victim's; unless a fast put was first
			mb.mu.Unlock()
			mb.bus.announce(rec)
			mb.mu.Lock()
			if took {
				return nil
			}
			continue
		case DropNewest:
			return errDropNew
		}
		if try {
			return ErrFull
		}
		if mb.space == nil {
			mb.space = make(chan struct{})
		}
		space := mb.space
		mb.mu.Unlock()
		select {
		case <-space:
			mb.mu.Lock()
		case <-ctx.Done():
			mb.mu.Lock()
			return ctx.Err()
		}
	}
}

// admitLocked says whether the mailbox takes a new message sent with ctx.
func (mb *mailbox) admitLocked(ctx context.Context) error {
	switch mb.state {
	case mbOpen:
		return nil
	case mbDraining:
		if mb.bus.fromHandler(ctx) {
			mb.bus.drainGen.Add(1)
			return nil
		}
	}
	return ErrClosed
}

// unreserve gives back a slot that reserve took.
func (mb *mailbox) unreserve() {
	mb.mu.Lock()
	mb.owned.Add(-1)
	mb.freedLocked()
	mb.mu.Unlock()
}

// commit brings env into a slot that reserve took.
func (mb *mailbox) commit(env Envelope) {
	mb.mu.Lock()
	rec, dead := mb.commitLocked(env)
	mb.mu.Unlock()
	if dead {
		mb.bus.announce(rec)
	}
}

// commitLocked brings env into a slot already counted in owned. It returns a
// dead letter to announce when the bus stopped in between.
func (mb *mailbox) commitLocked(env Envelope) (DeadLetterInfo, bool) {
	st := env.state()
	st.mb = mb
	st.phase = phaseReady // owned from here on
	mb.stats.Sent++
	if mb.state == mbStopped {
		return mb.deadLetterLocked(env, ReasonShutdown, nil), true
	}
	if md := env.Meta(); !md.DeliverAt.IsZero() {
		st.extraLocked().due = md.DeliverAt
		return mb.scheduleLocked(env)
	}
	mb.readyLocked(env)
	return DeadLetterInfo{}, false
}

// scheduleLocked hands env to the bus scheduler, or dead-letters it when the
// scheduler has stopped.
func (mb *mailbox) scheduleLocked(env Envelope) (DeadLetterInfo, bool) {
	st := env.state()
	st.phase = phaseScheduled
	mb.scheduled++
	if !mb.bus.sched.add(env) {
		return mb.deadLetterLocked(env, ReasonShutdown, nil), true
	}
	return DeadLetterInfo{}, false
}

// readyLocked makes env ready for a worker, unless an earlier message of its
// key is still pending: then env waits in the key's lane.
func (mb *mailbox) readyLocked(env Envelope) {
	st := env.state()
	st.phase = phaseReady
	if key := env.Meta().Key; key != "" && !st.holdsLane {
		if lane, busy := mb.lanes[key]; busy {
			lane.push(env)
			mb.laned++
			return
		}
		if mb.lanes == nil {
			mb.lanes = make(map[string]*ring[Envelope])
		}
		mb.lanes[key] = mb.newLaneLocked()
		st.holdsLane = true
	}
	mb.ready.push(env)
	mb.wakeLocked()
}

// wakeLocked wakes one idle worker, if there is one, for a message that just
// became ready. The worker leaves mb.idle here, not when it wakes: a woken
// worker that has not run yet must not draw a second, useless signal.
func (mb *mailbox) wakeLocked() {
	if mb.idle.Load() > 0 {
		mb.idle.Add(-1)
		mb.work.Signal()
	}
}

// A key whose messages come one at a time takes a lane and gives it back per
// message, so a mailbox keeps up to maxIdleLanes empty lanes for reuse. A lane
// whose buffer grew beyond maxIdleLaneBuf is not kept: a burst on one key
// must not pin its memory.
const (
	maxIdleLanes   = 64
	maxIdleLaneBuf = 64
)

// newLaneLocked returns an empty lane, reused when one is idle.
func (mb *mailbox) newLaneLocked() *ring[Envelope] {
	if n := len(mb.idleLanes); n > 0 {
		lane := mb.idleLanes[n-1]
		mb.idleLanes[n-1] = nil
		mb.idleLanes = mb.idleLanes[:n-1]
		return lane
	}
	return new(ring[Envelope])
}

// fromScheduler takes back a message whose due time has come.
func (mb *mailbox) fromScheduler(env Envelope) {
	mb.mu.Lock()
	st := env.state()
	if st.phase != phaseScheduled {
		mb.mu.Unlock()
		return
	}
	var rec DeadLetterInfo
	dead := true
	switch {
	case mb.state == mbStopped:
		rec = mb.deadLetterLocked(env, ReasonShutdown, nil)
	case expired(env.Meta(), time.Now()):
		rec = mb.expireLocked(env)
	default:
		mb.scheduled--
		dead = false
		mb.readyLocked(env)
	}
	mb.mu.Unlock()
	if dead {
		mb.bus.announce(rec)
	}
}

func expired(md *Metadata, now time.Time) bool {
	return !md.ExpiresAt.IsZero() && !now.Before(md.ExpiresAt)
}

func (mb *mailbox) expireLocked(env Envelope) DeadLetterInfo {
	mb.stats.Expired++
	return mb.deadLetterLocked(env, ReasonExpired, ErrExpired)
}

// nextLocked waits for a ready message and hands it to w, or returns nil when
// w must exit. Expired messages it meets are dead-lettered into w.pending.
func (mb *mailbox) nextLocked(w *worker) Envelope {
	for {
		if mb.state == mbStopped {
			mb.freedLocked()
			return nil
		}
		if mb.ready.len() > 0 {
			env := mb.ready.pop()
			md, st := env.Meta(), env.state()
			// The clock is read only for messages with a time to live: on
			// the hot path a reading costs more than the rest of the hand-over.
			if !md.ExpiresAt.IsZero() && expired(md, time.Now()) {
				w.pending = append(w.pending, mb.expireLocked(env))
				continue
			}
			st.phase = phaseInFlight
			mb.inFlight++
			md.Attempt++
			w.current = env
			return env
		}
		if len(w.pending) > 0 {
			// Announce the expired ones before sleeping: their hooks (and a
			// request's caller) must not wait for the next message.
			pending := w.pending
			mb.mu.Unlock()
			for i, rec := range pending {
				mb.bus.announce(rec)
				pending[i] = DeadLetterInfo{}
			}
			w.pending = pending[:0]
			mb.mu.Lock()
			continue
		}
		if mb.transferLocked() {
			continue
		}
		if mb.unreleased > 0 {
			mb.freedLocked() // nothing ready: the batch may hold the last slots
		}
		// Idle from here: a put that finds this worker idle takes mb.mu,
		// so it waits until the worker is waiting. A put that does not
		// has left its message where the second look finds it.
		mb.idle.Add(1)
		if mb.in.pending.Load() {
			mb.idle.Add(-1)
			continue
		}
		mb.work.Wait() // whoever woke us took us off mb.idle
	}
}

// handledLocked records the success of w's current message.
func (mb *mailbox) handledLocked(w *worker, env Envelope) {
	w.current = nil
	if env.state().phase != phaseInFlight {
		return // abandoned at shutdown and already dead-lettered
	}
	mb.stats.Handled++
	mb.leaveLocked(env)
	// The slot goes back to owned later, in a batch: owned is the one word
	// that every sender writes, and a worker that wrote it for every message
	// would pull it away from them each time. A sender that finds no room
	// takes mu and gives back the batch first; a waiting sender, or a worker
	// about to go idle, does not wait for it (see nextLocked).
	if mb.unreleased >= releaseBatch || mb.space != nil {
		mb.freedLocked()
	}
}

// releaseBatch is how many handled messages' slots a worker gives back at
// once.
const releaseBatch = 32

// releaseLocked takes the slots of handled messages off owned.
func (mb *mailbox) releaseLocked() {
	if mb.unreleased > 0 {
		mb.owned.Add(-mb.unreleased)
		mb.unreleased = 0
	}
}

// failed records a failed attempt of w's current message: it schedules a
// retry, or dead-letters the message.
func (mb *mailbox) failed(w *worker, env Envelope, err error) {
	md, st := env.Meta(), env.state()
	reason, delay := mb.decide(env, err)
	now := time.Now() // the attempt's end; read outside the lock

	mb.mu.Lock()
	w.current = nil
	if st.phase != phaseInFlight {
		mb.mu.Unlock()
		return
	}
	mb.stats.FailedAttempts++
	st.attemptFailed(now, err)
	var rec DeadLetterInfo
	dead := true
	switch {
	case mb.state == mbStopped:
		rec = mb.deadLetterLocked(env, ReasonShutdown, err)
	case reason != "":
		rec = mb.deadLetterLocked(env, reason, err)
	default:
		mb.inFlight--
		mb.stats.Retried++
		retryAt := now.Add(delay)
		x := st.extraLocked()
		x.due = retryAt
		if !md.ExpiresAt.IsZero() && md.ExpiresAt.Before(x.due) {
			x.due = md.ExpiresAt // wake at expiry to dead-letter it on time
		}
		// Copy what the hooks see before scheduling: once scheduled, the
		// message may be delivered again, by another worker, at once.
		var info *RetryInfo
		if len(mb.bus.retryHooks) > 0 {
			info = &RetryInfo{Metadata: *md, Err: err, Delay: delay, RetryAt: retryAt}
			info.Headers = maps.Clone(md.Headers)
		}
		rec, dead = mb.scheduleLocked(env)
		if !dead && info != nil {
			mb.bus.announcing.Add(1) // until the retry hooks have run
			mb.mu.Unlock()
			mb.bus.announceRetry(info)
			return
		}
	}
	mb.mu.Unlock()
	if dead {
		mb.bus.announce(rec)
	}
}

// decide says what follows a failed attempt of env: a dead letter for reason,
// or a retry after delay (reason empty). It runs on the worker's goroutine,
// which alone touches the backoff; the delay drawn for an attempt is kept, so
// [WillRetry] and the engine agree.
func (mb *mailbox) decide(env Envelope, err error) (Reason, time.Duration) {
	md, st := env.Meta(), env.state()
	switch {
	case IsPermanent(err):
		return ReasonPermanent, 0
	case md.Attempt >= mb.retry.MaxAttempts:
		return ReasonMaxAttempts, 0
	}
	// Made under the lock: abandon may be recording a failure meanwhile.
	// The fields used below are the worker's alone.
	mb.mu.Lock()
	f := st.failureLocked()
	mb.mu.Unlock()
	if f.delayFor != md.Attempt {
		if f.backoff == nil {
			f.backoff = mb.retry.newBackOff()
			if mb.remote != nil {
				// A transport's message arrives fresh at each attempt: draw
				// the delays of the attempts before this one first.
				for range md.Attempt - 1 {
					f.backoff.NextBackOff()
				}
			}
		}
		f.delay, f.delayFor = f.backoff.NextBackOff(), md.Attempt
	}
	if f.delay == backoff.Stop {
		return ReasonMaxAttempts, 0
	}
	return "", f.delay
}

// dropNew dead-letters a message the overflow policy turned away. It holds
// no slot.
func (mb *mailbox) dropNew(env Envelope) {
	env.state().mb = mb
	mb.mu.Lock()
	mb.stats.Dropped++
	rec := mb.deadLetterLocked(env, ReasonOverflow, nil)
	mb.mu.Unlock()
	mb.bus.announce(rec)
}

// finishLocked ends env's stay: its counts go, its slot frees, and the next
// message of its key becomes ready.
func (mb *mailbox) finishLocked(env Envelope) {
	mb.leaveLocked(env)
	mb.freedLocked()
}

// leaveLocked is finishLocked but for giving the slot back: it counts it in
// unreleased.
func (mb *mailbox) leaveLocked(env Envelope) {
	st := env.state()
	switch st.phase {
	case phaseNew, phaseDone:
		return // never owned a slot, or finished already
	case phaseInFlight:
		mb.inFlight--
	case phaseScheduled:
		mb.scheduled--
	}
	st.phase = phaseDone
	mb.unreleased++
	if st.holdsLane {
		st.holdsLane = false
		key := env.Meta().Key
		if lane := mb.lanes[key]; lane.len() > 0 {
			next := lane.pop()
			mb.laned--
			next.state().holdsLane = true
			mb.ready.push(next)
			mb.wakeLocked()
		} else {
			delete(mb.lanes, key)
			if len(mb.idleLanes) < maxIdleLanes && len(lane.buf) <= maxIdleLaneBuf {
				mb.idleLanes = append(mb.idleLanes, lane)
			}
		}
	}
}

// freedLocked wakes blocked senders and a waiting Shutdown after a slot frees.
func (mb *mailbox) freedLocked() {
	mb.releaseLocked()
	if mb.space != nil {
		close(mb.space)
		mb.space = nil
	}
	if mb.owned.Load() == 0 {
		if mb.state == mbDraining {
			mb.bus.pokeDrain()
		}
		if mb.bus.idleWaiters.Load() > 0 {
			mb.bus.pokeIdle()
		}
	}
}

// deadLetterLocked moves env into the dead-letter queue and returns the
// record, which the caller announces once it has released mb.mu.
func (mb *mailbox) deadLetterLocked(env Envelope, reason Reason, err error) DeadLetterInfo {
	st := env.state()
	st.mb = mb
	first, last, lastErr := st.failures()
	if err == nil {
		err = lastErr
	}
	mb.finishLocked(env)
	st.phase = phaseDone
	// A dead letter can be kept for long: it must not keep its fan-out
	// siblings' memory alive, nor the published message's, where the ID
	// text they share lives. The detached copy has its own.
	env = env.detached()
	md := env.Meta()
	info := DeadLetterInfo{
		mb:             mb,
		Metadata:       *md,
		Reason:         reason,
		Err:            err,
		Attempts:       md.Attempt,
		FirstAttemptAt: first,
		LastAttemptAt:  last,
		DeadLetteredAt: time.Now(),
		env:            env,
	}
	info.Headers = maps.Clone(md.Headers)
	mb.stats.DeadLettered++
	if reason == ReasonShutdown {
		mb.bus.shutdownDead.Add(1)
	}
	if mb.dead.len() >= mb.dlqCap {
		mb.dead.pop()
		mb.stats.DeadLettersEvicted++
	}
	mb.dead.push(info)
	mb.bus.announcing.Add(1) // until announce has told the hooks
	return info
}

// beginDrain stops intake from outside the bus's handlers and wakes blocked
// senders so they can see it.
func (mb *mailbox) beginDrain() {
	mb.mu.Lock()
	if mb.state == mbOpen {
		mb.state = mbDraining
		mb.closeIntakeLocked()
	}
	mb.freedLocked()
	mb.mu.Unlock()
}

// drained reports whether the mailbox has nothing left that it could still
// deliver: it is empty, or it has no consumer to deliver to.
func (mb *mailbox) drained() bool {
	mb.mu.Lock()
	defer mb.mu.Unlock()
	mb.releaseLocked()
	return mb.owned.Load() == 0 || mb.consumers == 0
}

// stop shuts the mailbox: what is ready or waiting in lanes is dead-lettered,
// workers are told to exit, and blocked senders to give up.
func (mb *mailbox) stop() []DeadLetterInfo {
	mb.mu.Lock()
	mb.closeIntakeLocked()
	mb.transferLocked() // ready now, so dead-lettered below with the rest
	mb.state = mbStopped
	var recs []DeadLetterInfo
	// Finishing a key's current message promotes the next one of its lane to
	// ready, so sweep until both are empty.
	for swept := true; swept; {
		swept = false
		for mb.ready.len() > 0 {
			recs = append(recs, mb.deadLetterLocked(mb.ready.pop(), ReasonShutdown, nil))
		}
		for _, lane := range mb.lanes {
			for lane.len() > 0 {
				mb.laned--
				swept = true
				recs = append(recs, mb.deadLetterLocked(lane.pop(), ReasonShutdown, nil))
			}
		}
	}
	mb.idle.Store(0)
	mb.work.Broadcast()
	mb.freedLocked()
	mb.mu.Unlock()
	return recs
}

// deadLetterScheduled dead-letters a message the stopped scheduler gave back.
func (mb *mailbox) deadLetterScheduled(env Envelope) DeadLetterInfo {
	mb.mu.Lock()
	defer mb.mu.Unlock()
	return mb.deadLetterLocked(env, ReasonShutdown, nil)
}

// abandon dead-letters the messages whose handlers are still running after
// the stop grace period; their workers will find them finished.
func (mb *mailbox) abandon() []DeadLetterInfo {
	mb.mu.Lock()
	defer mb.mu.Unlock()
	var recs []DeadLetterInfo
	for _, w := range mb.workers {
		if env := w.current; env != nil && env.state().phase == phaseInFlight {
			mb.bus.abandoned.Add(1)
			env.state().attemptFailed(time.Now(), nil)
			recs = append(recs, mb.deadLetterLocked(env, ReasonShutdown, ErrAbandoned))
		}
	}
	return recs
}

func (mb *mailbox) deadLetters() []DeadLetterInfo {
	mb.mu.Lock()
	defer mb.mu.Unlock()
	out := make([]DeadLetterInfo, mb.dead.len())
	for i := range out {
		out[i] = mb.dead.at(i)
	}
	return out
}

func (mb *mailbox) deadLetterCount() int {
	mb.mu.Lock()
	defer mb.mu.Unlock()
	return mb.dead.len()
}

// takeDeadLetters removes and returns the dead letters for which match is
// true (all when match is nil). match runs under the lock: it must not call
// back into the queue.
func (mb *mailbox) takeDeadLetters(match func(DeadLetterInfo) bool) []DeadLetterInfo {
	mb.mu.Lock()
	defer mb.mu.Unlock()
	return mb.dead.removeIf(match)
}

// restoreDeadLetters puts back, in front, dead letters a replay could not send.
func (mb *mailbox) restoreDeadLetters(infos []DeadLetterInfo) {
	mb.mu.Lock()
	defer mb.mu.Unlock()
	var r ring[DeadLetterInfo]
	for _, info := range infos {
		r.push(info)
	}
	for mb.dead.len() > 0 {
		r.push(mb.dead.pop())
	}
	for r.len() > mb.dlqCap {
		r.pop()
		mb.stats.DeadLettersEvicted++
	}
	mb.dead = r
}

func (mb *mailbox) replay(ctx context.Context, match func(DeadLetterInfo) bool) (int, error) {
	// A stopped mailbox may hold dead letters whose abandoned handlers still
	// run: refuse before touching them.
	mb.mu.Lock()
	if mb.state == mbStopped {
		mb.mu.Unlock()
		return 0, ErrClosed
	}
	taken := mb.dead.removeIf(match)
	mb.mu.Unlock()
	for i, info := range taken {
		env := info.env
		resetForReplay(env)
		err := mb.put(ctx, env)
		if err == ErrOverflow {
			i++ // the overflow policy dead-lettered this one again
		}
		if err != nil {
			mb.restoreDeadLetters(taken[i:])
			return i, err
		}
		mb.mu.Lock()
		mb.stats.Replayed++
		mb.mu.Unlock()
	}
	return len(taken), nil
}

// resetForReplay readies a dead letter to be delivered again as the same
// message: identity, key and headers stay; attempts and timing start over.
func resetForReplay(env Envelope) {
	md, st := env.Meta(), env.state()
	md.Attempt = 0
	md.DeliverAt = time.Time{}
	md.ExpiresAt = time.Time{}
	// Field by field: idText backs md.ID and must not be written again.
	st.mb, st.phase, st.x = nil, phaseNew, nil
	st.holdsLane, st.try = false, false
}

func (mb *mailbox) snapshot() Stats {
	mb.mu.Lock()
	defer mb.mu.Unlock()
	mb.transferLocked() // counted as sent and ready
	s := mb.stats
	s.Depth = mb.ready.len() + mb.laned
	s.InFlight = mb.inFlight
	s.Scheduled = mb.scheduled
	s.DeadLetters = mb.dead.len()
	return s
}

func (mb *mailbox) countFiltered() {
	mb.mu.Lock()
	mb.stats.Filtered++
	mb.mu.Unlock()
}
