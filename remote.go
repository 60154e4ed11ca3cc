package courier

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"sync"
	"sync/atomic"
	"time"
)

// remoteTimeout bounds the broker calls the bus makes on its own behalf:
// settling a delivery, reading stats and dead letters.
const remoteTimeout = 10 * time.Second

// remotePoll is how often Shutdown and WaitIdle ask the broker whether the
// inboxes this bus consumes are empty.
const remotePoll = 5 * time.Millisecond

// remoteDest is a queue or topic declared on a transport.
type remoteDest struct {
	bus    *Bus
	dest   Destination
	decode Decoder
	sent   atomic.Uint64 // sends (or publishes) this bus had accepted
}

func declareRemote(b *Bus, name string, topic bool, cfg *config, decode Decoder) (*remoteDest, error) {
	if cfg.overflow != Block {
		return nil, fmt.Errorf("%w: overflow policy %v over a transport: only Block", ErrUnsupported, cfg.overflow)
	}
	spec := DestinationSpec{Name: name, Topic: topic, Overflow: cfg.overflow, DeadLetterCapacity: cfg.dlqCap}
	if cfg.capacitySet {
		spec.Capacity = cfg.capacity
	}
	ctx, cancel := context.WithTimeout(context.Background(), remoteTimeout)
	defer cancel()
	d, err := b.transport.Declare(ctx, spec)
	if err != nil {
		return nil, fmt.Errorf("courier: declaring %q: %w", name, err)
	}
	return &remoteDest{bus: b, dest: d, decode: decode}, nil
}

// send is the terminal of the send chain of a queue or topic on a transport.
func (rd *remoteDest) send(ctx context.Context, env Envelope) error {
	if err := rd.bus.admits(ctx); err != nil {
		return err
	}
	if err := rd.dest.Send(ctx, env, !env.state().try); err != nil {
		return err
	}
	rd.sent.Add(1)
	return nil
}

// remoteInbox is a queue, or a subscription of a topic, on a transport, as
// this bus sees it. Its mailbox is never enqueued to: it carries what the
// handling path needs (the bus, the names, the retry policy, the middleware
// layers, the hooks), so delivery, FailureOutcome and sends from handlers
// work as they do in memory.
type remoteInbox struct {
	mb     *mailbox
	rd     *remoteDest
	inbox  Inbox
	filter func(Envelope) bool

	mu        sync.Mutex
	receivers []Receiver
	consumers int

	inFlight                                                                    atomic.Int64 // deliveries a worker of this bus holds
	handled, failedAttempts, retried, deadLettered, expired, replayed, filtered atomic.Uint64
}

func openRemoteInbox(rd *remoteDest, mb *mailbox, filter func(Envelope) bool) (*remoteInbox, error) {
	ctx, cancel := context.WithTimeout(context.Background(), remoteTimeout)
	defer cancel()
	in, err := rd.dest.Inbox(ctx, mb.subscription)
	if err != nil {
		return nil, fmt.Errorf("courier: opening %s: %w", mb.where(), err)
	}
	ri := &remoteInbox{mb: mb, rd: rd, inbox: in, filter: filter}
	mb.remote = ri
	return ri, nil
}

// where names the queue or subscription for errors and logs.
func (mb *mailbox) where() string {
	if mb.subscription != "" {
		return fmt.Sprintf("subscription %q of topic %q", mb.subscription, mb.destination)
	}
	return fmt.Sprintf("queue %q", mb.destination)
}

// startRemote starts workers handling ri's messages with c.
func (b *Bus) startRemote(ri *remoteInbox, c *consumer, workers int) error {
	if b.closing.Load() {
		return ErrClosed
	}
	rcv, err := ri.inbox.Receive(b.recvCtx, ri.rd.decode, workers)
	if err != nil {
		return fmt.Errorf("courier: receiving from %s: %w", ri.mb.where(), err)
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.state != busOpen {
		_ = rcv.Close()
		return ErrClosed
	}
	ri.mu.Lock()
	ri.receivers = append(ri.receivers, rcv)
	ri.consumers++
	ri.mu.Unlock()
	b.workers += workers
	for range workers {
		w := &worker{c: c}
		go ri.run(w, rcv)
	}
	return nil
}

func (ri *remoteInbox) run(w *worker, rcv Receiver) {
	b := ri.mb.bus
	defer b.workerExited()
	for {
		d, err := rcv.Next(b.recvCtx)
		if err != nil {
			if b.recvCtx.Err() != nil || errors.Is(err, ErrClosed) {
				return
			}
			b.logger.Warn("courier: receive failed", slog.String("inbox", ri.mb.where()), slog.Any("error", err))
			t := time.NewTimer(100 * time.Millisecond)
			select {
			case <-b.recvCtx.Done():
				t.Stop()
				return
			case <-t.C:
			}
			continue
		}
		ri.inFlight.Add(1)
		ri.handle(w, d)
		if ri.inFlight.Add(-1) == 0 && b.idleWaiters.Load() > 0 {
			b.pokeIdle()
		}
	}
}

// handle runs one delivery and settles it: ack, a retry after the policy's
// delay, or a dead letter.
func (ri *remoteInbox) handle(w *worker, d Delivery) {
	b := ri.mb.bus
	env := d.Message()
	md, st := env.Meta(), env.state()
	st.mb = ri.mb
	ctx, cancel := context.WithTimeout(context.Background(), remoteTimeout)
	defer cancel()
	if !md.ExpiresAt.IsZero() && !time.Now().Before(md.ExpiresAt) {
		md.Attempt = max(md.Attempt-1, 0) // no handler saw this delivery
		ri.deadLetter(ctx, d, env, ReasonExpired, ErrExpired)
		return
	}
	var err error
	keep := true
	if ri.filter != nil {
		keep, err = safeFilter(ri.filter, env)
	}
	switch {
	case err != nil:
	case !keep:
		ri.filtered.Add(1)
		ri.settle(d.Ack(ctx), "ack")
		return
	default:
		err = w.deliver(env)
	}
	if err == nil {
		if ri.mb.onHandled != nil {
			ri.mb.onHandled(env)
		}
		ri.handled.Add(1)
		ri.settle(d.Ack(ctx), "ack")
		return
	}
	now := time.Now()
	ri.failedAttempts.Add(1)
	st.attemptFailed(now, err)
	if b.handlerCtx.Err() != nil {
		// The bus is stopping: the failure is likely the cancelled context's.
		// The message goes back for the next consumer, not to dead letters.
		b.returned.Add(1)
		ri.settle(d.Nak(ctx, 0), "nak")
		return
	}
	reason, delay := ri.mb.decide(env, err)
	if reason == "" && !md.ExpiresAt.IsZero() && !now.Add(delay).Before(md.ExpiresAt) {
		reason = ReasonExpired
	}
	if reason != "" {
		ri.deadLetter(ctx, d, env, reason, err)
		return
	}
	var info *RetryInfo
	if len(b.retryHooks) > 0 {
		info = &RetryInfo{Metadata: *md, Err: err, Delay: delay, RetryAt: now.Add(delay)}
		info.Headers = maps.Clone(md.Headers)
		b.announcing.Add(1)
	}
	ri.retried.Add(1)
	ri.settle(d.Nak(ctx, delay), "nak")
	if info != nil {
		b.announceRetry(info)
	}
}

// settle logs a failed ack or nak: the broker delivers the message again
// when its acknowledgement wait runs out, so nothing is lost, but the
// handler may see it twice.
func (ri *remoteInbox) settle(err error, what string) {
	if err != nil {
		ri.mb.bus.logger.Warn("courier: "+what+" failed; the message will be delivered again",
			slog.String("inbox", ri.mb.where()), slog.Any("error", err))
	}
}

func (ri *remoteInbox) deadLetter(ctx context.Context, d Delivery, env Envelope, reason Reason, err error) {
	b := ri.mb.bus
	md, st := env.Meta(), env.state()
	if reason == ReasonExpired && err == nil {
		err = ErrExpired
	}
	info := DeadLetterInfo{
		Metadata:       *md,
		Reason:         reason,
		Err:            err,
		Attempts:       md.Attempt,
		DeadLetteredAt: time.Now(),
		env:            env,
		mb:             ri.mb,
	}
	info.FirstAttemptAt, info.LastAttemptAt, _ = st.failures()
	info.Headers = maps.Clone(md.Headers)
	b.announcing.Add(1)
	if e := ri.inbox.DeadLetter(ctx, d, info); e != nil {
		b.announced()
		b.logger.Error("courier: storing a dead letter failed; the message will be delivered again",
			slog.String("inbox", ri.mb.where()), slog.String("message_id", md.ID), slog.Any("error", e))
		ri.settle(d.Nak(ctx, time.Second), "nak")
		return
	}
	ri.deadLettered.Add(1)
	if reason == ReasonExpired {
		ri.expired.Add(1)
	}
	b.announce(info)
}

// drained reports whether the broker holds nothing this bus still has to
// handle in ri: true when no worker of this bus consumes it, or once the
// bus has stopped and left the rest to the broker.
func (ri *remoteInbox) drained() bool {
	ri.mu.Lock()
	consumers := ri.consumers
	ri.mu.Unlock()
	if consumers == 0 || ri.mb.bus.recvCtx.Err() != nil {
		return true // nothing here will move it, or the bus has stopped
	}
	if ri.inFlight.Load() > 0 {
		return false
	}
	s, err := ri.gauges()
	return err == nil && s.Depth+s.InFlight+s.Scheduled == 0
}

// left counts what the broker holds in ri for its consumers, once the bus
// has stopped; 0 when this bus does not consume ri or the broker does not
// answer.
func (ri *remoteInbox) left() int {
	ri.mu.Lock()
	consumers := ri.consumers
	ri.mu.Unlock()
	if consumers == 0 {
		return 0
	}
	g, err := ri.gauges()
	if err != nil {
		return 0
	}
	return g.Depth + g.InFlight + g.Scheduled
}

func (ri *remoteInbox) gauges() (InboxStats, error) {
	ctx, cancel := context.WithTimeout(context.Background(), remoteTimeout)
	defer cancel()
	return ri.inbox.Stats(ctx)
}

// stopReceiving closes the receivers of every inbox at once (a Close may
// wait for a fetch in progress): what they prefetched goes back to the
// broker.
func stopReceiving(remotes []*remoteInbox) {
	var wg sync.WaitGroup
	for _, ri := range remotes {
		ri.mu.Lock()
		rcvs := ri.receivers
		ri.receivers = nil
		ri.mu.Unlock()
		for _, r := range rcvs {
			wg.Go(func() {
				if err := r.Close(); err != nil {
					ri.mb.bus.logger.Warn("courier: closing a receiver failed", slog.String("inbox", ri.mb.where()), slog.Any("error", err))
				}
			})
		}
	}
	wg.Wait()
}

func (ri *remoteInbox) snapshot() Stats {
	s := Stats{
		Handled:        ri.handled.Load(),
		FailedAttempts: ri.failedAttempts.Load(),
		Retried:        ri.retried.Load(),
		DeadLettered:   ri.deadLettered.Load(),
		Expired:        ri.expired.Load(),
		Replayed:       ri.replayed.Load(),
		Filtered:       ri.filtered.Load(),
	}
	if ri.mb.subscription == "" {
		s.Sent = ri.rd.sent.Load()
	}
	if g, err := ri.gauges(); err == nil {
		s.Depth, s.InFlight, s.Scheduled, s.DeadLetters = g.Depth, g.InFlight, g.Scheduled, g.DeadLetters
	} else {
		ri.mb.bus.logger.Warn("courier: reading stats failed", slog.String("inbox", ri.mb.where()), slog.Any("error", err))
	}
	return s
}

func (ri *remoteInbox) stored(ctx context.Context) ([]StoredDeadLetter, error) {
	list, err := ri.inbox.DeadLetters(ctx, ri.rd.decode)
	if err != nil {
		return nil, fmt.Errorf("courier: reading the dead letters of %s: %w", ri.mb.where(), err)
	}
	for i := range list {
		list[i].Info.env = list[i].Message
		list[i].Info.mb = ri.mb
	}
	return list, nil
}

func (ri *remoteInbox) deadLetters() []DeadLetterInfo {
	ctx, cancel := context.WithTimeout(context.Background(), remoteTimeout)
	defer cancel()
	list, err := ri.stored(ctx)
	if err != nil {
		ri.mb.bus.logger.Error(err.Error())
	}
	out := make([]DeadLetterInfo, len(list))
	for i, s := range list {
		out[i] = s.Info
	}
	return out
}

func (ri *remoteInbox) deadLetterCount() int {
	g, err := ri.gauges()
	if err != nil {
		ri.mb.bus.logger.Error("courier: counting dead letters failed", slog.String("inbox", ri.mb.where()), slog.Any("error", err))
	}
	return g.DeadLetters
}

func (ri *remoteInbox) takeDeadLetters(match func(DeadLetterInfo) bool) []DeadLetterInfo {
	ctx, cancel := context.WithTimeout(context.Background(), remoteTimeout)
	defer cancel()
	list, err := ri.stored(ctx)
	if err != nil {
		ri.mb.bus.logger.Error(err.Error())
	}
	var out []DeadLetterInfo
	for _, s := range list {
		if match != nil && !match(s.Info) {
			continue
		}
		if err := ri.inbox.RemoveDeadLetter(ctx, s.Ref); err != nil {
			ri.mb.bus.logger.Error("courier: removing a dead letter failed", slog.String("inbox", ri.mb.where()), slog.Any("error", err))
			continue
		}
		out = append(out, s.Info)
	}
	return out
}

// replay stores each matching dead letter in the inbox again, then removes
// it from the dead-letter store: a crash in between delivers it twice rather
// than never.
func (ri *remoteInbox) replay(ctx context.Context, match func(DeadLetterInfo) bool) (int, error) {
	if err := ri.mb.bus.admits(ctx); err != nil {
		return 0, err
	}
	list, err := ri.stored(ctx)
	if err != nil {
		return 0, err
	}
	n := 0
	for _, s := range list {
		if match != nil && !match(s.Info) {
			continue
		}
		env := s.Message
		resetForReplay(env)
		if err := ri.inbox.Redeliver(ctx, env); err != nil {
			return n, fmt.Errorf("courier: replaying %s to %s: %w", s.Info.ID, ri.mb.where(), err)
		}
		if err := ri.inbox.RemoveDeadLetter(ctx, s.Ref); err != nil {
			return n, fmt.Errorf("courier: replayed %s to %s but could not remove the dead letter: %w", s.Info.ID, ri.mb.where(), err)
		}
		ri.replayed.Add(1)
		n++
	}
	return n, nil
}

// remoteInboxes returns the inboxes this bus has opened on its transport.
func (b *Bus) remoteInboxes() []*remoteInbox {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.remotes
}

func (b *Bus) remotesDrained() bool {
	for _, ri := range b.remoteInboxes() {
		if !ri.drained() {
			return false
		}
	}
	return true
}
