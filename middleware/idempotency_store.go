package middleware

import (
	"context"
	"errors"
	"strconv"
	"sync"
	"time"
)

// Store records idempotency keys for [Idempotency]: which keys are being
// worked on (reserved) and which are done (committed). [MemoryStore] keeps
// them in the process; implement Store over Redis or SQL to share keys
// between processes or keep them across restarts.
//
// The contract, which every implementation must keep and which
// [Idempotency] relies on:
//
//   - Reserve is atomic: of any number of concurrent calls for one key, at
//     most one gets [Reserved]. While the key is reserved, others get
//     [InProgress]; once it is committed, [Done]. In Redis terms, SET key
//     token NX PX lease; in SQL, an INSERT that a primary key makes fail.
//   - A reservation lasts for lease unless committed or released first. When
//     the lease runs out the key is free again, so a crashed holder cannot
//     block a key for ever.
//   - Commit marks a reserved key done for ttl, and Release frees it, but
//     only for the holder: the token must be the one Reserve returned. When
//     it is not (the lease ran out and someone else may hold the key), they
//     return an error wrapping [ErrNotHeld] and change nothing.
//   - After ttl a done key is forgotten, and Reserve can reserve it again.
//     An implementation may forget a done key earlier to bound its memory
//     (MemoryStore does, and counts it); duplicates of it are then no longer
//     recognised.
//   - Every method is safe for concurrent use, and returns ctx's error if it
//     gives up because ctx ended. Any error from Reserve means nothing was
//     reserved.
//
// Two [Key] values are the same key when both their fields are equal. A store
// that needs one string per key joins the fields unambiguously, for example
// Scope + "\x00" + ID (the scopes Idempotency uses never contain a NUL byte),
// under a prefix of its own.
//
// Tokens must differ between reservations of one key, including reservations
// made by other processes sharing the store: a distributed store draws each
// token at random (64 random bits, from crypto/rand or math/rand/v2), since
// counters in two processes would hand out the same tokens.
type Store interface {
	// Reserve claims key for at most lease, unless it is reserved or done.
	Reserve(ctx context.Context, key Key, lease time.Duration) (Reservation, error)
	// Commit records the reserved key as done for ttl.
	Commit(ctx context.Context, key Key, token uint64, ttl time.Duration) error
	// Release frees the reserved key, so that the next Reserve gets it.
	Release(ctx context.Context, key Key, token uint64) error
}

// Key identifies an idempotency key in a [Store]: a message's key within the
// scope where it must be unique.
type Key struct {
	// Scope names where the key applies. [Idempotency] uses "sent/" followed
	// by the queue or topic name for sends, and "handled/" followed by the
	// queue name, or the topic name, "/" and the subscription name, for
	// deliveries. Each name is escaped as by [net/url.PathEscape], so a Scope is
	// printable ASCII, holds no NUL byte, and no two destinations share one.
	Scope string
	// ID is the message's idempotency key, any bytes.
	ID string
}

// Reservation is what [Store.Reserve] found.
type Reservation struct {
	// Status says whether the caller now holds the key.
	Status ReserveStatus
	// Token identifies the caller's reservation when Status is [Reserved];
	// pass it to Commit or Release. Zero otherwise.
	Token uint64
}

// ReserveStatus is the outcome of [Store.Reserve].
type ReserveStatus uint8

const (
	// Reserved: the key was free and the caller holds it now. It must
	// Commit or Release it.
	Reserved ReserveStatus = iota + 1
	// InProgress: another holder has the key reserved.
	InProgress
	// Done: the key was committed and has not expired.
	Done
)

func (s ReserveStatus) String() string {
	switch s {
	case Reserved:
		return "reserved"
	case InProgress:
		return "in progress"
	case Done:
		return "done"
	}
	return "ReserveStatus(" + strconv.Itoa(int(s)) + ")"
}

// ErrNotHeld is wrapped by the error of Commit and Release when the caller's
// reservation is gone: its lease ran out, or the token is wrong.
var ErrNotHeld = errors.New("middleware: idempotency key not held by this reservation")

// DefaultMaxKeys is how many done keys a [MemoryStore] remembers by default.
const DefaultMaxKeys = 100_000

// MemoryStoreOptions configures [NewMemoryStore]. The zero value means the
// defaults.
type MemoryStoreOptions struct {
	// MaxKeys bounds how many done keys the store remembers. When one more is
	// committed, the one closest to its expiry is forgotten early and counted
	// in [MemoryStoreStats.Evicted]. Zero or less means [DefaultMaxKeys].
	// Reservations are not counted: there are only as many as deliveries and
	// sends in progress.
	MaxKeys int
}

// MemoryStore is the in-process [Store]. Expired keys are dropped by the
// calls that come after their expiry, so the store runs no goroutine and
// needs no Close; every call costs O(log n), and reads the clock once. Entries
// of forgotten keys are kept for reuse, so that in steady state Reserve does
// not allocate. Tokens are 1, 2, 3 and so on. It is safe for concurrent use.
// It reads time with the time package, so in a testing/synctest bubble its
// leases and TTLs pass in virtual time.
type MemoryStore struct {
	maxKeys int

	mu      sync.Mutex
	keys    map[Key]*storeEntry
	held    heldHeap    // reservations, by end of lease
	done    doneHeap    // committed keys, by end of ttl
	free    *storeEntry // entries to reuse, linked by next
	nextTok uint64
	evicted uint64
}

type storeEntry struct {
	key     Key
	token   uint64      // 0 once committed
	expires time.Time   // while reserved
	index   int         // in held, while reserved
	next    *storeEntry // in the free list
}

// MemoryStoreStats is a snapshot of a [MemoryStore].
type MemoryStoreStats struct {
	// Reserved counts keys reserved now.
	Reserved int
	// Done counts done keys remembered now.
	Done int
	// Evicted counts done keys forgotten before their TTL because the store
	// was full.
	Evicted uint64
}

// NewMemoryStore returns an empty in-memory store.
func NewMemoryStore(opts MemoryStoreOptions) *MemoryStore {
	if opts.MaxKeys <= 0 {
		opts.MaxKeys = DefaultMaxKeys
	}
	return &MemoryStore{maxKeys: opts.MaxKeys, keys: make(map[Key]*storeEntry)}
}

// Reserve implements [Store].
func (s *MemoryStore) Reserve(ctx context.Context, key Key, lease time.Duration) (Reservation, error) {
	if err := ctx.Err(); err != nil {
		return Reservation{}, err
	}
	now := time.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	s.expireLocked(now)
	if e, ok := s.keys[key]; ok {
		if e.token == 0 {
			return Reservation{Status: Done}, nil
		}
		return Reservation{Status: InProgress}, nil
	}
	e := s.free
	if e != nil {
		s.free, e.next = e.next, nil
	} else {
		e = new(storeEntry)
	}
	s.nextTok++
	e.key, e.token, e.expires = key, s.nextTok, now.Add(lease)
	s.keys[key] = e
	s.held.push(e)
	return Reservation{Status: Reserved, Token: e.token}, nil
}

// Commit implements [Store].
func (s *MemoryStore) Commit(_ context.Context, key Key, token uint64, ttl time.Duration) error {
	now := time.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	s.expireLocked(now)
	e, err := s.heldLocked(key, token)
	if err != nil {
		return err
	}
	s.held.remove(e.index)
	if len(s.done) >= s.maxKeys {
		s.forgetLocked(s.done.pop())
		s.evicted++
	}
	e.token = 0
	s.done.push(doneItem{expires: now.Add(ttl), e: e})
	return nil
}

// Release implements [Store].
func (s *MemoryStore) Release(_ context.Context, key Key, token uint64) error {
	now := time.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	s.expireLocked(now)
	e, err := s.heldLocked(key, token)
	if err != nil {
		return err
	}
	s.forgetLocked(s.held.remove(e.index))
	return nil
}

// Stats returns a snapshot of the store's contents, expired keys excluded.
func (s *MemoryStore) Stats() MemoryStoreStats {
	now := time.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	s.expireLocked(now)
	return MemoryStoreStats{Reserved: len(s.held), Done: len(s.done), Evicted: s.evicted}
}

// ignoresContext marks a Store whose Commit and Release never look at their
// context: [Idempotency] then need not detach it from cancellation.
func (*MemoryStore) ignoresContext() {}

func (s *MemoryStore) heldLocked(key Key, token uint64) (*storeEntry, error) {
	e, ok := s.keys[key]
	if !ok || e.token == 0 || e.token != token {
		return nil, ErrNotHeld
	}
	return e, nil
}

// forgetLocked drops e, already out of its heap, from the keys and keeps it
// for reuse.
func (s *MemoryStore) forgetLocked(e *storeEntry) {
	delete(s.keys, e.key)
	*e = storeEntry{next: s.free}
	s.free = e
}

// expireLocked drops every reservation and done key whose time has come.
func (s *MemoryStore) expireLocked(now time.Time) {
	for len(s.held) > 0 && !now.Before(s.held[0].expires) {
		s.forgetLocked(s.held.remove(0))
	}
	for len(s.done) > 0 && !now.Before(s.done[0].expires) {
		s.forgetLocked(s.done.pop())
	}
}

// heldHeap is a binary min-heap of reservations by end of lease, earliest
// first; each entry knows its index, to be removed when committed or released.
type heldHeap []*storeEntry

func (h *heldHeap) push(e *storeEntry) {
	e.index = len(*h)
	*h = append(*h, e)
	h.up(e.index)
}

// remove takes out the entry at index i and returns it.
func (h *heldHeap) remove(i int) *storeEntry {
	old := *h
	n := len(old) - 1
	e := old[i]
	if i != n {
		old[i] = old[n]
		old[i].index = i
	}
	old[n] = nil
	*h = old[:n]
	if i != n && !h.down(i) {
		h.up(i)
	}
	return e
}

func (h heldHeap) up(j int) {
	for j > 0 {
		i := (j - 1) / 2
		if !h[j].expires.Before(h[i].expires) {
			break
		}
		h.swap(i, j)
		j = i
	}
}

// down moves the entry at i0 down to its place, and reports whether it moved.
func (h heldHeap) down(i0 int) bool {
	i := i0
	for {
		j := 2*i + 1
		if j >= len(h) {
			break
		}
		if r := j + 1; r < len(h) && h[r].expires.Before(h[j].expires) {
			j = r
		}
		if !h[j].expires.Before(h[i].expires) {
			break
		}
		h.swap(i, j)
		i = j
	}
	return i > i0
}

func (h heldHeap) swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].index, h[j].index = i, j
}

// doneHeap is a binary min-heap of done keys by end of ttl, earliest first.
// Done keys leave only from the top, so entries need no index, and the expiry
// is kept in the heap itself: sifting reads no entry.
type doneHeap []doneItem

type doneItem struct {
	expires time.Time
	e       *storeEntry
}

func (h *doneHeap) push(it doneItem) {
	*h = append(*h, it)
	s := *h
	j := len(s) - 1
	for j > 0 {
		i := (j - 1) / 2
		if !it.expires.Before(s[i].expires) {
			break
		}
		s[j] = s[i]
		j = i
	}
	s[j] = it
}

// pop takes out the entry that expires first and returns it.
func (h *doneHeap) pop() *storeEntry {
	s := *h
	n := len(s) - 1
	top, last := s[0].e, s[n]
	s[n] = doneItem{}
	s = s[:n]
	*h = s
	if n == 0 {
		return top
	}
	i := 0
	for {
		j := 2*i + 1
		if j >= n {
			break
		}
		if r := j + 1; r < n && s[r].expires.Before(s[j].expires) {
			j = r
		}
		if !s[j].expires.Before(last.expires) {
			break
		}
		s[i] = s[j]
		i = j
	}
	s[i] = last
	return top
}
