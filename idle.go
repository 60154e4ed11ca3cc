package courier

import (
	"context"
	"fmt"
	"strings"
	"time"
)

// WaitIdle blocks until the bus is idle: no queue or subscription that has a
// consumer holds a message that is ready, waiting in a key lane, in flight, or
// scheduled (delayed, or waiting for a retry), and every dead-letter and
// retry hook call has returned. Messages in a queue nobody consumes do not
// hold it up, since nothing would ever move them.
//
// In memory, WaitIdle waits on the engine's own signals, never by polling;
// over a [Transport] it also asks the broker, every few milliseconds, what
// the inboxes this bus consumes still hold. It waits for
// scheduled messages too: in a [testing/synctest] bubble (with the bus created
// inside it) a delay or backoff of minutes passes at once in virtual time;
// outside one it passes in real time. When ctx ends first, WaitIdle returns an
// error that wraps ctx's error and says what is still pending where.
//
// A message handed to a goroutine a handler started, or sent by one, is
// invisible to WaitIdle until it is sent. WaitIdle is meant for tests and
// for "finish what is in hand" points in a program; the bus keeps taking
// messages while it waits.
func (b *Bus) WaitIdle(ctx context.Context) error {
	b.idleWaiters.Add(1)
	defer b.idleWaiters.Add(-1)
	for {
		b.idleMu.Lock()
		if b.idleCh == nil {
			b.idleCh = make(chan struct{})
		}
		ch := b.idleCh
		b.idleMu.Unlock()
		// Registered first, checked second: an emptying after the check
		// closes ch.
		if b.idle() {
			return nil
		}
		var poll *time.Timer
		var tick <-chan time.Time
		if b.transport != nil {
			poll = time.NewTimer(remotePoll)
			tick = poll.C
		}
		select {
		case <-ch:
		case <-tick:
		case <-ctx.Done():
			return fmt.Errorf("courier: bus not idle: %w (pending: %s)", ctx.Err(), b.pending())
		}
		if poll != nil {
			poll.Stop()
		}
	}
}

// pokeIdle wakes every WaitIdle call.
func (b *Bus) pokeIdle() {
	b.idleMu.Lock()
	if b.idleCh != nil {
		close(b.idleCh)
		b.idleCh = nil
	}
	b.idleMu.Unlock()
}

func (b *Bus) allMailboxes() []*mailbox {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.mailboxes
}

func (b *Bus) idle() bool {
	for _, mb := range b.allMailboxes() {
		if !mb.drained() {
			return false
		}
	}
	if !b.remotesDrained() {
		return false
	}
	// Read after the mailboxes: a message's last count drops while its
	// announcement is already counted here.
	return b.announcing.Load() == 0
}

// pending describes what keeps the bus from being idle.
func (b *Bus) pending() string {
	var parts []string
	for _, mb := range b.allMailboxes() {
		mb.mu.Lock()
		mb.transferLocked()
		mb.releaseLocked()
		if mb.owned.Load() > 0 && mb.consumers > 0 {
			name := fmt.Sprintf("queue %q", mb.destination)
			if mb.subscription != "" {
				name = fmt.Sprintf("subscription %q of topic %q", mb.subscription, mb.destination)
			}
			parts = append(parts, fmt.Sprintf("%s: %d ready, %d in flight, %d scheduled",
				name, mb.ready.len()+mb.laned, mb.inFlight, mb.scheduled))
		}
		mb.mu.Unlock()
	}
	for _, ri := range b.remoteInboxes() {
		if ri.drained() {
			continue
		}
		g, err := ri.gauges()
		if err != nil {
			parts = append(parts, fmt.Sprintf("%s: %v", ri.mb.where(), err))
			continue
		}
		parts = append(parts, fmt.Sprintf("%s: %d ready, %d in flight (%d here), %d scheduled",
			ri.mb.where(), g.Depth, g.InFlight, ri.inFlight.Load(), g.Scheduled))
	}
	if n := b.announcing.Load(); n > 0 {
		parts = append(parts, fmt.Sprintf("%d dead letter or retry hook call(s)", n))
	}
	if len(parts) == 0 {
		return "nothing"
	}
	return strings.Join(parts, "; ")
}
