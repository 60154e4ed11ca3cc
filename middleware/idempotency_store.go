package middleware

import (
	"context"
	"errors"
	"hash/maphash"
	"math"
	"strconv"
	"strings"
	"sync"
	"time"
	"unsafe"

	"github.com/courierbus/courier/internal/clock"
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

	// Where a [MemoryStore] keeps a Reserved key, so that [Idempotency] can
	// commit or release it without looking the key up again: its shard, and
	// its entry plus one (zero for none). For InProgress, the owner that
	// holds the key (see reserveOwned).
	shard  uint8
	ent    int32
	holder uint32
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

// DefaultMaxKeys is how many done keys a [MemoryStore] remembers by default
// on each of its sides (see [MemoryStoreOptions.MaxKeys]).
const DefaultMaxKeys = 100_000

// deliveryScope begins the scopes [Idempotency] gives the keys of deliveries.
// A [MemoryStore] keeps those keys on a side of their own.
const deliveryScope = "handled/"

// A [MemoryStore] has two sides (deliveries and the rest), each of one shard,
// or of sideShards shards when MaxKeys is at least shardedMinKeys.
const (
	sideShards     = 8
	shardedMinKeys = sideShards * 4096
)

// MemoryStoreOptions configures [NewMemoryStore]. The zero value means the
// defaults.
type MemoryStoreOptions struct {
	// MaxKeys bounds how many done keys the store remembers on each of its
	// two sides: the keys of deliveries (those whose Scope begins with
	// "handled/", as [Idempotency] makes them) and all other keys (the
	// sends'). When one more is committed on a side, the one closest to its
	// expiry on that side is forgotten early and counted in
	// [MemoryStoreStats.Evicted]. Zero or less means [DefaultMaxKeys]. The
	// store as a whole thus remembers up to twice MaxKeys done keys, and a
	// burst of sends never pushes out the keys that keep deliveries
	// effectively-once. Reservations are not counted: there are only as many
	// as deliveries and sends in progress.
	//
	// With MaxKeys at 32,768 (8 × 4096) or more, as by default, each side is
	// split into 8 shards by a hash of the key, and each shard remembers at
	// most MaxKeys/8 (rounded up) done keys: the key forgotten early is the
	// one closest to its expiry within the shard of the committed key, and a
	// shard may evict while its side as a whole holds fewer than MaxKeys.
	// With fewer, each side is one shard and the bound is exact.
	MaxKeys int
}

// MemoryStore is the in-process [Store]. Expired keys are dropped by the
// calls that come after their expiry, so the store runs no goroutine and
// needs no Close. Reserve and Stats read the clock once; Commit and Release
// do not. Each call costs O(1) amortized when the calls use few distinct
// leases and TTLs, as [Idempotency] does (three); with q distinct values in
// use, O(log q). Entries of forgotten keys are kept for reuse, so that in
// steady state no call allocates. It is safe for concurrent use. It reads
// time with the time package, so in a testing/synctest bubble its leases and
// TTLs pass in virtual time.
//
// The keys of deliveries and the other keys (see
// [MemoryStoreOptions.MaxKeys]) live in shards of their own, each shard with
// its own lock. So in a process that both sends and handles, senders and
// workers lock different shards, and the processor cores they run on do not
// pass a shard's memory back and forth at every call. A large store
// splits each side further into 8 shards, so that concurrent calls for
// different keys seldom wait for each other; a key always goes to the same
// shard, chosen by its scope's side and a hash of the whole [Key] with a seed
// of the store's own. Each shard bounds its own done keys and evicts the one
// closest to expiry among them. Each shard also counts its own tokens, so
// tokens are unique per key, as the [Store] contract asks, and a token is
// only ever checked against its own key; the shards' counts are interleaved,
// so that in fact no two reservations in the store share a token.
//
// Each shard keeps its own time: the latest clock reading of any Reserve or
// Stats on it. Commit counts the TTL from that time, which is at or after the
// Reserve of the key being committed, rather than from the instant of the
// Commit: a done key may expire early by at most as long as it was reserved
// (the time between its Reserve and its Commit), and never late. Likewise a
// lease runs out for Commit and Release only once a later call on the shard
// has read the clock: a holder whose lease ran out can still commit or
// release while no call has seen that, when nobody else can hold the key.
//
// Keys that share a lease or a TTL expire in the order they were reserved or
// committed, so each shard keeps one first-in first-out queue of expiries per
// lease and per TTL, and a heap of those queues by their first expiry. A key
// that leaves a queue early (a reservation committed or released) leaves a
// stale slot behind, skipped once it reaches the front; a queue that holds
// more stale slots than live ones is compacted, so that the queues stay
// within about twice the keys the store holds.
type MemoryStore struct {
	seed   maphash.Seed
	mask   uint64        // shards per side less one: a power of two less one
	shards []memoryShard // the other keys' side, then the deliveries'
}

// memoryShard is one part of a [MemoryStore]: the keys whose hash leads to
// it, under a lock of its own.
type memoryShard struct {
	mu      sync.Mutex
	maxKeys int          // done keys this shard remembers
	index   []uint64     // the keys: see find
	indexed int          // entries in index
	ents    []storeEntry // reserved, done and free entries
	free    int32        // first free entry, linked by link; -1 for none
	held    queueSet     // reservations, one queue per lease
	done    queueSet     // committed keys, one queue per ttl
	nHeld   int          // live slots in held
	nDone   int          // live slots in done
	// epoch is the first clock reading, and now the latest, in nanoseconds
	// since epoch. Calls read the clock before they lock, so they may come in
	// out of order: now never goes back, so that expiries pushed to a queue
	// never decrease. Commit and Release read no clock and use now.
	epoch time.Time
	now   int64
	// The tokens of this shard are base, base+step, base+2*step and so on:
	// issued of them so far. base is the shard's index plus one, step the
	// number of shards.
	issued, base, step uint64
	evicted            uint64
	// Keeps the locks and counters of neighbouring shards off each other's
	// cache lines.
	_ [64]byte
}

// storeEntry is one key of a shard. Its fields fill exactly 64 bytes, one
// cache line: in a full store nearly every entry an operation touches (the
// one it evicts, the one it finds) is cold, and a second line would be a
// second miss.
type storeEntry struct {
	key   Key
	token uint64       // 0 once committed
	gen   uint64       // bumped when the entry leaves its queue: its slot there is stale
	q     *expiryQueue // where the entry's live slot is; nil while free
	tag   uint32       // the high half of key's hash, for the index
	// link is who reserved the key (see reserveOwned) while the entry is
	// reserved, and the next free entry (an int32, -1 for none) while it
	// is free. A done entry does not use it.
	link uint32
}

// MemoryStoreStats is a snapshot of a [MemoryStore].
type MemoryStoreStats struct {
	// Reserved counts keys reserved now.
	Reserved int
	// Done counts done keys remembered now.
	Done int
	// Evicted counts done keys forgotten before their TTL because the store
	// (or the key's shard) was full.
	Evicted uint64
}

// NewMemoryStore returns an empty in-memory store.
func NewMemoryStore(opts MemoryStoreOptions) *MemoryStore {
	if opts.MaxKeys <= 0 {
		opts.MaxKeys = DefaultMaxKeys
	}
	side := 1
	if opts.MaxKeys >= shardedMinKeys {
		side = sideShards
	}
	n := 2 * side
	s := &MemoryStore{seed: maphash.MakeSeed(), mask: uint64(side - 1), shards: make([]memoryShard, n)}
	perShard := (opts.MaxKeys + side - 1) / side
	for i := range s.shards {
		sh := &s.shards[i]
		sh.maxKeys, sh.free = perShard, -1
		sh.base, sh.step = uint64(i+1), uint64(n)
	}
	return s
}

// shard returns the shard of key, and the key's hash.
func (s *MemoryStore) shard(key Key) (*memoryShard, uint64) {
	h := maphash.Comparable(s.seed, key)
	i := h & s.mask
	if strings.HasPrefix(key.Scope, deliveryScope) {
		i += s.mask + 1
	}
	return &s.shards[i], h
}

// Reserve implements [Store].
func (s *MemoryStore) Reserve(ctx context.Context, key Key, lease time.Duration) (Reservation, error) {
	return s.claim(ctx, key, lease, false, time.Time{}, 0)
}

// reserveOwned is Reserve for a holder named owner (not 0): a Reserved key
// records it, and an InProgress result tells which owner holds the key
// (Reservation.holder; 0 for a plain Reserve). [Idempotency] names itself,
// to tell its own deliveries from those of another process.
func (s *MemoryStore) reserveOwned(ctx context.Context, key Key, lease time.Duration, owner uint32) (Reservation, error) {
	return s.claim(ctx, key, lease, false, time.Time{}, owner)
}

// claim is Reserve (done false) for owner, or markSent (done true), at time
// t: a clock reading taken now if t is zero.
func (s *MemoryStore) claim(ctx context.Context, key Key, d time.Duration, done bool, t time.Time, owner uint32) (Reservation, error) {
	if err := ctx.Err(); err != nil {
		return Reservation{}, err
	}
	sh, h := s.shard(key)
	if t.IsZero() {
		t = clock.Now()
	}
	sh.mu.Lock()
	defer sh.mu.Unlock()
	return sh.claimLocked(key, h, d, done, t, owner), nil
}

// Commit implements [Store].
func (s *MemoryStore) Commit(_ context.Context, key Key, token uint64, ttl time.Duration) error {
	sh, h := s.shard(key)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	return sh.commitLocked(key, h, token, ttl)
}

// Release implements [Store].
func (s *MemoryStore) Release(_ context.Context, key Key, token uint64) error {
	sh, h := s.shard(key)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	return sh.releaseLocked(key, h, token)
}

// Stats returns a snapshot of the store's contents, expired keys excluded:
// the sums over its shards, each locked in turn.
func (s *MemoryStore) Stats() MemoryStoreStats {
	t := clock.Now()
	var st MemoryStoreStats
	for i := range s.shards {
		sh := &s.shards[i]
		sh.mu.Lock()
		sh.expireLocked(sh.clockLocked(t))
		st.Reserved += sh.nHeld
		st.Done += sh.nDone
		st.Evicted += sh.evicted
		sh.mu.Unlock()
	}
	return st
}

// ignoresContext marks a Store whose Commit and Release never look at their
// context: [Idempotency] then need not detach it from cancellation.
func (*MemoryStore) ignoresContext() {}

// claimLocked is Reserve on the shard, for lease d (done false), or
// markSent, for ttl d (done true), with h the hash of key and t the clock
// reading.
func (s *memoryShard) claimLocked(key Key, h uint64, d time.Duration, done bool, t time.Time, owner uint32) Reservation {
	now := s.clockLocked(t)
	s.expireLocked(now)
	if i := s.find(key, h); i >= 0 {
		if s.ents[i].token == 0 {
			return Reservation{Status: Done}
		}
		return Reservation{Status: InProgress, holder: s.ents[i].link}
	}
	if done {
		if s.nDone >= s.maxKeys {
			s.evictLocked()
		}
		i := s.newEntryLocked(key, h)
		s.pushLocked(&s.done, i, d, now)
		s.nDone++
		return Reservation{Status: Reserved, Token: markToken(i, s.ents[i].gen)}
	}
	i := s.newEntryLocked(key, h)
	e := &s.ents[i]
	e.token = s.base + s.issued*s.step
	e.link = owner
	s.issued++
	s.pushLocked(&s.held, i, d, now)
	s.nHeld++
	return Reservation{Status: Reserved, Token: e.token, shard: uint8(s.base - 1), ent: i + 1}
}

// newEntryLocked takes a free entry (or a new one) for key, with hash h, and
// indexes it. The caller sets its token and queues it.
func (s *memoryShard) newEntryLocked(key Key, h uint64) int32 {
	i := s.free
	if i >= 0 {
		s.free = int32(s.ents[i].link)
	} else {
		i = int32(len(s.ents))
		s.ents = append(s.ents, storeEntry{})
	}
	e := &s.ents[i]
	e.key, e.tag, e.token, e.link = key, uint32(h>>32), 0, 0
	s.addToIndex(i)
	return i
}

// markSent records that key was sent at time at (read from the clock if
// zero): done for ttl, as a Reserve and a Commit would leave it, in one call.
// [Idempotency] uses it on the send path of a MemoryStore, where nothing is
// done between the two, with the message's SentAt, read just before. Like
// any reading, at moves the shard's time forward but never back. The token
// of a Reserved result is for unmarkSent only.
func (s *MemoryStore) markSent(ctx context.Context, key Key, ttl time.Duration, at time.Time) (Reservation, error) {
	return s.claim(ctx, key, ttl, true, at, 0)
}

// unmarkSent forgets a key that markSent recorded, for a send that failed.
// It fails with ErrNotHeld, changing nothing, when the key is no longer the
// one that token names (it expired or was evicted, and may be recorded
// again).
func (s *MemoryStore) unmarkSent(key Key, token uint64) error {
	sh, h := s.shard(key)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	return sh.unmarkLocked(key, h, token)
}

// markToken names entry i in its present use (gen moves on when the entry
// leaves its queue). It is never zero.
func markToken(i int32, gen uint64) uint64 { return uint64(i+1)<<32 | uint64(uint32(gen)) }

func (s *memoryShard) unmarkLocked(key Key, h, token uint64) error {
	i := s.find(key, h)
	if i < 0 || s.ents[i].token != 0 || markToken(i, s.ents[i].gen) != token {
		return ErrNotHeld
	}
	q := s.ents[i].q
	s.forgetLocked(i)
	s.settleLocked(&s.done, q, false)
	return nil
}

// commitLocked is Commit on the shard. It reads no clock: the key expires
// ttl after the shard's time, which is at or after the key's Reserve, and
// nothing in the shard is due to expire before that time that was not
// dropped already.
func (s *memoryShard) commitLocked(key Key, h, token uint64, ttl time.Duration) error {
	i, err := s.heldLocked(key, h, token)
	if err != nil {
		return err
	}
	s.commitEntLocked(i, ttl)
	return nil
}

// commitEntLocked commits the reservation in entry i.
func (s *memoryShard) commitEntLocked(i int32, ttl time.Duration) {
	q := s.unlinkLocked(i)
	s.nHeld--
	s.settleLocked(&s.held, q, false)
	if s.nDone >= s.maxKeys {
		s.evictLocked()
	}
	s.ents[i].token = 0
	s.pushLocked(&s.done, i, ttl, s.now)
	s.nDone++
}

// releaseLocked is Release on the shard. It reads no clock either.
func (s *memoryShard) releaseLocked(key Key, h, token uint64) error {
	i, err := s.heldLocked(key, h, token)
	if err != nil {
		return err
	}
	s.releaseEntLocked(i)
	return nil
}

// releaseEntLocked frees the reservation in entry i.
func (s *memoryShard) releaseEntLocked(i int32) {
	q := s.ents[i].q
	s.forgetLocked(i)
	s.settleLocked(&s.held, q, false)
}

// commitHeld is Commit for the reservation r of key, made by this store: it
// goes straight to the entry r names instead of looking key up. The entry
// must still hold key under r's token, as Commit checks.
func (s *MemoryStore) commitHeld(key Key, r Reservation, ttl time.Duration) error {
	return s.endHeld(key, r, true, ttl)
}

// releaseHeld is Release as commitHeld is Commit.
func (s *MemoryStore) releaseHeld(key Key, r Reservation) error {
	return s.endHeld(key, r, false, 0)
}

// endHeld commits (for ttl) or releases the reservation r of key.
func (s *MemoryStore) endHeld(key Key, r Reservation, commit bool, ttl time.Duration) error {
	sh, i := s.hinted(r)
	switch {
	case sh == nil && commit:
		return s.Commit(context.Background(), key, r.Token, ttl)
	case sh == nil:
		return s.Release(context.Background(), key, r.Token)
	}
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if !sh.holdsLocked(i, key, r.Token) {
		return ErrNotHeld
	}
	if commit {
		sh.commitEntLocked(i, ttl)
	} else {
		sh.releaseEntLocked(i)
	}
	return nil
}

// hinted returns the shard and entry that r names, or a nil shard.
func (s *MemoryStore) hinted(r Reservation) (*memoryShard, int32) {
	if r.ent <= 0 || int(r.shard) >= len(s.shards) {
		return nil, -1
	}
	return &s.shards[r.shard], r.ent - 1
}

// holdsLocked reports whether entry i is key, reserved under token.
func (s *memoryShard) holdsLocked(i int32, key Key, token uint64) bool {
	if int(i) >= len(s.ents) {
		return false
	}
	e := &s.ents[i]
	return e.token != 0 && e.token == token && e.key == key
}

// clockLocked turns the clock reading t into the shard's time: nanoseconds
// since its first reading, never less than the last call's.
func (s *memoryShard) clockLocked(t time.Time) int64 {
	if s.epoch.IsZero() {
		s.epoch = t
	}
	now := int64(t.Sub(s.epoch))
	if now < s.now {
		return s.now
	}
	s.now = now
	return now
}

func (s *memoryShard) heldLocked(key Key, h, token uint64) (int32, error) {
	i := s.find(key, h)
	if i < 0 || s.ents[i].token == 0 || s.ents[i].token != token {
		return -1, ErrNotHeld
	}
	return i, nil
}

// pushLocked appends entry i to the queue of d in qs, to expire d after now.
func (s *memoryShard) pushLocked(qs *queueSet, i int32, d time.Duration, now int64) {
	q := qs.queue(d)
	expires := now + int64(d)
	if d > 0 && expires < now {
		expires = math.MaxInt64
	}
	e := &s.ents[i]
	e.q = q
	q.pushBack(slot{expires: expires, gen: e.gen, ent: i})
	q.live++
	if q.n == 1 {
		qs.push(q)
	}
}

// unlinkLocked makes the slot of entry i stale, and returns its queue, which
// the caller must settle.
func (s *memoryShard) unlinkLocked(i int32) *expiryQueue {
	e := &s.ents[i]
	q := e.q
	e.gen++
	e.q = nil
	q.live--
	return q
}

// forgetLocked drops entry i from its queue (the caller settles it) and the
// keys, and keeps it for reuse.
func (s *memoryShard) forgetLocked(i int32) {
	s.unlinkLocked(i)
	e := &s.ents[i]
	if e.token == 0 {
		s.nDone--
	} else {
		s.nHeld--
	}
	s.removeFromIndex(i)
	*e = storeEntry{gen: e.gen, link: uint32(s.free)}
	s.free = i
}

func (s *memoryShard) stale(sl *slot) bool { return s.ents[sl.ent].gen != sl.gen }

// settleLocked restores the invariants of q, in qs, after a slot of it went
// stale (moved false) or its first slot was taken out (moved true): the first
// slot is live, stale slots are at most as many as live ones (give or take),
// and q is in its place in qs's heap, or out of it if empty.
func (s *memoryShard) settleLocked(qs *queueSet, q *expiryQueue, moved bool) {
	for q.n > 0 && s.stale(q.front()) {
		q.popFront()
		moved = true
	}
	if q.n > 2*q.live+compactSlack {
		s.compactLocked(q)
	}
	switch {
	case q.n == 0:
		qs.remove(q)
	case moved:
		qs.down(q.index) // the first expiry only grows
	}
}

// compactSlack is how many stale slots beyond the live ones a queue may hold
// before it is compacted.
const compactSlack = 16

// compactLocked drops the stale slots of q, keeping the order of the others.
// The first slot is live, so it stays first. It takes out more than half the
// slots, so it costs O(1) per stale slot, amortized.
func (s *memoryShard) compactLocked(q *expiryQueue) {
	w := 0
	for r := range q.n {
		if sl := q.at(r); !s.stale(sl) {
			*q.at(w) = *sl
			w++
		}
	}
	q.n = w
}

// evictLocked forgets the done key that expires first.
func (s *memoryShard) evictLocked() {
	q := s.done.heap[0]
	i := q.front().ent
	q.popFront()
	s.forgetLocked(i)
	s.settleLocked(&s.done, q, true)
	s.evicted++
	// In a full store every commit evicts, and an eviction reads three cold
	// lines: the victim's entry, its slot in the index, and the entry of the
	// victim after it (settleLocked checks that one). The first is cached
	// already, by this eviction's settleLocked. Ask for the other two of the
	// next eviction now, so that they load while this call returns and the
	// calls on other shards run: the shard's next eviction then finds them
	// in the cache instead of waiting on memory twice.
	if q.n >= 2 {
		next := q.front().ent // where removeFromIndex will start looking
		p := home(indexSlot(s.ents[next].tag, next), len(s.index)-1)
		prefetch(uintptr(unsafe.Pointer(&s.index[p])))
		prefetch(uintptr(unsafe.Pointer(&s.ents[q.at(1).ent])))
	}
}

// expireLocked drops every reservation and done key whose time has come.
func (s *memoryShard) expireLocked(now int64) {
	for _, qs := range [...]*queueSet{&s.held, &s.done} {
		for len(qs.heap) > 0 {
			q := qs.heap[0]
			sl := q.front()
			if sl.expires > now {
				break
			}
			i, stale := sl.ent, s.stale(sl)
			q.popFront()
			if !stale { // it is not: settleLocked keeps first slots live
				s.forgetLocked(i)
			}
			s.settleLocked(qs, q, true)
		}
	}
}

// slot is a place in an expiryQueue. It is stale once its entry's gen has
// moved on: the entry left the queue, and may be in use again elsewhere.
type slot struct {
	expires int64 // in the shard's time
	gen     uint64
	ent     int32 // index in memoryShard.ents
}

// expiryQueue holds the slots of one lease or TTL, in the order they were
// pushed, which is the order they expire: a ring buffer.
type expiryQueue struct {
	d     time.Duration
	ring  []slot // empty, or a power of two long
	head  int    // index in ring of the first slot
	n     int    // slots, live or stale
	live  int    // live slots
	index int    // in queueSet.heap; -1 while n is 0
	pos   int    // in queueSet.queues
}

const minRing = 16

// at returns the r-th slot from the front, r < q.n.
func (q *expiryQueue) at(r int) *slot { return &q.ring[(q.head+r)&(len(q.ring)-1)] }

func (q *expiryQueue) front() *slot { return &q.ring[q.head] }

func (q *expiryQueue) popFront() {
	q.head = (q.head + 1) & (len(q.ring) - 1)
	q.n--
}

func (q *expiryQueue) pushBack(sl slot) {
	if q.n == len(q.ring) {
		ring := make([]slot, max(2*len(q.ring), minRing))
		k := copy(ring, q.ring[q.head:])
		copy(ring[k:], q.ring[:q.head])
		q.ring, q.head = ring, 0
	}
	*q.at(q.n) = sl
	q.n++
}

// queueSet holds the queues of reservations or of done keys, one per
// duration.
type queueSet struct {
	// durs and queues list the queues, with their durations side by side, to
	// be scanned while there are few; then byDur finds them.
	durs   []time.Duration
	queues []*expiryQueue
	byDur  map[time.Duration]*expiryQueue
	// heap holds the non-empty queues, a binary min-heap by first expiry.
	heap []*expiryQueue
}

// Queues for up to keepQueues durations are kept while empty, for reuse;
// beyond that, a queue is dropped when it empties, and byDur indexes them.
const keepQueues = 8

// queue returns the queue of d, made if need be.
func (qs *queueSet) queue(d time.Duration) *expiryQueue {
	if qs.byDur == nil {
		for i, qd := range qs.durs {
			if qd == d {
				return qs.queues[i]
			}
		}
	} else if q, ok := qs.byDur[d]; ok {
		return q
	}
	q := &expiryQueue{d: d, index: -1, pos: len(qs.queues)}
	qs.durs = append(qs.durs, d)
	qs.queues = append(qs.queues, q)
	if qs.byDur != nil {
		qs.byDur[d] = q
	} else if len(qs.queues) > keepQueues {
		qs.byDur = make(map[time.Duration]*expiryQueue, len(qs.queues))
		for _, q := range qs.queues {
			qs.byDur[q.d] = q
		}
	}
	return q
}

func (qs *queueSet) first(i int) int64 {
	q := qs.heap[i]
	return q.ring[q.head].expires
}

func (qs *queueSet) push(q *expiryQueue) {
	q.index = len(qs.heap)
	qs.heap = append(qs.heap, q)
	qs.up(q.index)
}

// remove takes the empty queue q out of the heap, and drops it if there are
// many queues.
func (qs *queueSet) remove(q *expiryQueue) {
	h := qs.heap
	i, n := q.index, len(h)-1
	if i != n {
		qs.swap(i, n)
	}
	h[n] = nil
	qs.heap = h[:n]
	q.index = -1
	if i != n && !qs.down(i) {
		qs.up(i)
	}
	if len(qs.queues) > keepQueues {
		last := len(qs.queues) - 1
		moved := qs.queues[last]
		qs.queues[q.pos], qs.durs[q.pos] = moved, moved.d
		moved.pos = q.pos
		qs.queues[last] = nil
		qs.queues, qs.durs = qs.queues[:last], qs.durs[:last]
		delete(qs.byDur, q.d)
	}
}

func (qs *queueSet) up(j int) {
	for j > 0 {
		i := (j - 1) / 2
		if qs.first(j) >= qs.first(i) {
			break
		}
		qs.swap(i, j)
		j = i
	}
}

// down moves the queue at i0 down to its place, and reports whether it moved.
func (qs *queueSet) down(i0 int) bool {
	i, n := i0, len(qs.heap)
	for {
		j := 2*i + 1
		if j >= n {
			break
		}
		if r := j + 1; r < n && qs.first(r) < qs.first(j) {
			j = r
		}
		if qs.first(j) >= qs.first(i) {
			break
		}
		qs.swap(i, j)
		i = j
	}
	return i > i0
}

func (qs *queueSet) swap(i, j int) {
	h := qs.heap
	h[i], h[j] = h[j], h[i]
	h[i].index, h[j].index = i, j
}
