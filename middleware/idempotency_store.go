package middleware

import (
	"container/heap"
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
// Keys are opaque strings of any bytes; Idempotency builds them from the
// destination, subscription and message key, escaped so they cannot collide.
type Store interface {
	// Reserve claims key for at most lease, unless it is reserved or done.
	Reserve(ctx context.Context, key string, lease time.Duration) (Reservation, error)
	// Commit records the reserved key as done for ttl.
	Commit(ctx context.Context, key, token string, ttl time.Duration) error
	// Release frees the reserved key, so that the next Reserve gets it.
	Release(ctx context.Context, key, token string) error
}

// Reservation is what [Store.Reserve] found.
type Reservation struct {
	// Status says whether the caller now holds the key.
	Status ReserveStatus
	// Token identifies the caller's reservation when Status is [Reserved];
	// pass it to Commit or Release. Empty otherwise.
	Token string
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
// needs no Close; every call costs O(log n). It is safe for concurrent use.
// It reads time with the time package, so in a testing/synctest bubble its
// leases and TTLs pass in virtual time.
type MemoryStore struct {
	maxKeys int

	mu      sync.Mutex
	keys    map[string]*storeEntry
	held    expiryHeap // reservations, by end of lease
	done    expiryHeap // committed keys, by end of ttl
	nextTok uint64
	evicted uint64
}

type storeEntry struct {
	key     string
	token   string // empty once committed
	expires time.Time
	index   int // in held or done
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
	return &MemoryStore{maxKeys: opts.MaxKeys, keys: make(map[string]*storeEntry)}
}

// Reserve implements [Store].
func (s *MemoryStore) Reserve(ctx context.Context, key string, lease time.Duration) (Reservation, error) {
	if err := ctx.Err(); err != nil {
		return Reservation{}, err
	}
	now := time.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	s.expireLocked(now)
	if e, ok := s.keys[key]; ok {
		if e.token == "" {
			return Reservation{Status: Done}, nil
		}
		return Reservation{Status: InProgress}, nil
	}
	s.nextTok++
	e := &storeEntry{key: key, token: strconv.FormatUint(s.nextTok, 10), expires: now.Add(lease)}
	s.keys[key] = e
	heap.Push(&s.held, e)
	return Reservation{Status: Reserved, Token: e.token}, nil
}

// Commit implements [Store].
func (s *MemoryStore) Commit(_ context.Context, key, token string, ttl time.Duration) error {
	now := time.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	s.expireLocked(now)
	e, err := s.heldLocked(key, token)
	if err != nil {
		return err
	}
	heap.Remove(&s.held, e.index)
	if s.done.Len() >= s.maxKeys {
		old := heap.Pop(&s.done).(*storeEntry)
		delete(s.keys, old.key)
		s.evicted++
	}
	e.token, e.expires = "", now.Add(ttl)
	heap.Push(&s.done, e)
	return nil
}

// Release implements [Store].
func (s *MemoryStore) Release(_ context.Context, key, token string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.expireLocked(time.Now())
	e, err := s.heldLocked(key, token)
	if err != nil {
		return err
	}
	heap.Remove(&s.held, e.index)
	delete(s.keys, key)
	return nil
}

// Stats returns a snapshot of the store's contents, expired keys excluded.
func (s *MemoryStore) Stats() MemoryStoreStats {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.expireLocked(time.Now())
	return MemoryStoreStats{Reserved: s.held.Len(), Done: s.done.Len(), Evicted: s.evicted}
}

func (s *MemoryStore) heldLocked(key, token string) (*storeEntry, error) {
	e, ok := s.keys[key]
	if !ok || e.token == "" || e.token != token {
		return nil, ErrNotHeld
	}
	return e, nil
}

// expireLocked drops every reservation and done key whose time has come.
func (s *MemoryStore) expireLocked(now time.Time) {
	for _, h := range []*expiryHeap{&s.held, &s.done} {
		for h.Len() > 0 && !now.Before((*h)[0].expires) {
			e := heap.Pop(h).(*storeEntry)
			delete(s.keys, e.key)
		}
	}
}

// expiryHeap orders entries by expiry, earliest first.
type expiryHeap []*storeEntry

func (h expiryHeap) Len() int           { return len(h) }
func (h expiryHeap) Less(i, j int) bool { return h[i].expires.Before(h[j].expires) }
func (h expiryHeap) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].index, h[j].index = i, j
}
func (h *expiryHeap) Push(x any) {
	e := x.(*storeEntry)
	e.index = len(*h)
	*h = append(*h, e)
}
func (h *expiryHeap) Pop() any {
	old := *h
	e := old[len(old)-1]
	old[len(old)-1] = nil
	*h = old[:len(old)-1]
	return e
}
