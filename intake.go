package courier

// putFast accepts env through the intake when the mailbox is open and has a
// free slot, and reports whether it did; otherwise put takes the slow path
// under mb.mu, which applies the overflow policy and the drain rules.
func (mb *mailbox) putFast(env Envelope) bool {
	if !mb.takeSlot() {
		return false
	}
	in := &mb.in
	in.mu.Lock()
	if in.closed {
		in.mu.Unlock()
		mb.unreserve()
		return false
	}
	in.pushLocked(env)
	in.mu.Unlock()
	mb.wakeIdle()
	return true
}

// pushLocked appends env; the caller holds in.mu and has checked closed.
// Only the first message after a transfer sets pending: the flag is set
// already for the others, and an atomic store is a full barrier, the
// costliest step of a push.
func (in *intake) pushLocked(env Envelope) {
	in.msgs = append(in.msgs, env)
	if len(in.msgs) == 1 {
		in.pending.Store(true)
	}
}

// wakeIdle is called after a message was left in the intake. A worker that
// went idle before it arrived may not have seen it: bring it to the ready
// ring, which wakes the worker.
func (mb *mailbox) wakeIdle() {
	if mb.idle.Load() > 0 {
		mb.mu.Lock()
		mb.transferLocked()
		mb.mu.Unlock()
	}
}

// takeSlot counts one more message in owned if the mailbox has room, and
// reports whether it did. putFast calls it without mb.mu, so every claim of a
// slot goes through it: a load and an add would let two claims share the
// last slot.
func (mb *mailbox) takeSlot() bool {
	for {
		n := mb.owned.Load()
		if n >= int64(mb.capacity) {
			return false
		}
		if mb.owned.CompareAndSwap(n, n+1) {
			return true
		}
	}
}

// transferLocked moves what the intake holds to the ready ring (or the key
// lanes), in the order it came, and reports whether it moved anything.
// Every holder of mb.mu that reads or changes what is ready calls it first.
func (mb *mailbox) transferLocked() bool {
	in := &mb.in
	if !in.pending.Load() {
		return false
	}
	in.mu.Lock()
	batch := in.msgs
	in.msgs = mb.spare
	in.pending.Store(false)
	in.mu.Unlock()
	for i, env := range batch {
		mb.enqueueLocked(env)
		batch[i] = nil
	}
	mb.spare = batch[:0]
	return len(batch) > 0
}

// closeIntakeLocked sends later puts down the slow path, once the mailbox
// leaves mbOpen.
func (mb *mailbox) closeIntakeLocked() {
	mb.in.mu.Lock()
	mb.in.closed = true
	mb.in.mu.Unlock()
}

// enqueueLocked is commitLocked for a message from the intake, which is never
// delayed (delayed sends take the slow path) and never meets a stopped mailbox
// (stopping empties the intake first), so never becomes a dead letter. It
// leaves out commitLocked's dead-letter record: returning one, even empty,
// means clearing some 300 bytes for every message.
func (mb *mailbox) enqueueLocked(env Envelope) {
	env.state().mb = mb
	mb.stats.Sent++
	mb.readyLocked(env)
}
