package middleware

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"strconv"
	"testing"
	"testing/synctest"
	"time"
	"unsafe"

	"github.com/stretchr/testify/require"
)

// checkStore checks the invariants of the store's shards and their queues,
// and returns how many slots, live or stale, and how much ring capacity the
// queues hold.
func checkStore(t *testing.T, s *MemoryStore) (slots, capacity int) {
	t.Helper()
	require.Equal(t, uint64(len(s.shards)/2-1), s.mask, "two sides of equal shards")
	require.Zero(t, len(s.shards)&(len(s.shards)-1), "a power of two")
	for i := range s.shards {
		sh := &s.shards[i]
		n, c := checkShard(t, sh)
		slots, capacity = slots+n, capacity+c
		sh.mu.Lock()
		for k := range sh.keyMap() {
			if s.shardOf(k) != sh {
				t.Fatalf("key %v: in shard %d, hashed to another", k, i)
			}
		}
		require.Equal(t, uint64(i+1), sh.base)
		require.Equal(t, uint64(len(s.shards)), sh.step)
		sh.mu.Unlock()
	}
	return slots, capacity
}

// checkShard checks the invariants of one shard's queues, and returns how
// many slots and how much ring capacity they hold.
func checkShard(t *testing.T, s *memoryShard) (slots, capacity int) {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	live := map[int32]bool{}
	for _, qs := range []*queueSet{&s.held, &s.done} {
		n := 0
		require.Equal(t, len(qs.queues), len(qs.durs))
		for i, q := range qs.queues {
			require.Equal(t, q.d, qs.durs[i])
			require.Equal(t, i, q.pos)
			if qs.byDur != nil {
				require.Same(t, q, qs.byDur[q.d])
			}
			require.Equal(t, q.n == 0, q.index == -1, "in the heap while not empty")
			require.LessOrEqual(t, q.n, 2*q.live+compactSlack, "stale slots bounded")
			slots += q.n
			capacity += len(q.ring)
			var last int64
			nLive := 0
			for r := range q.n {
				sl := q.at(r)
				if sl.expires < last {
					t.Fatalf("queue %v: slot %d expires at %d, before %d", q.d, r, sl.expires, last)
				}
				last = sl.expires
				if s.stale(sl) {
					if r == 0 {
						t.Fatalf("queue %v: the first slot is stale", q.d)
					}
					continue
				}
				nLive++
				if live[sl.ent] || s.ents[sl.ent].q != q {
					t.Fatalf("queue %v: entry %d live twice, or in another queue", q.d, sl.ent)
				}
				if sl.expires <= s.now && q.d > 0 {
					t.Fatalf("queue %v: slot %d expired at %d, still there at %d", q.d, r, sl.expires, s.now)
				}
				live[sl.ent] = true
			}
			require.Equal(t, q.live, nLive)
			n += nLive
		}
		if qs == &s.held {
			require.Equal(t, s.nHeld, n)
		} else {
			require.Equal(t, s.nDone, n)
		}
		for i, q := range qs.heap {
			require.Equal(t, i, q.index)
			require.NotZero(t, q.n)
			if i > 0 {
				require.GreaterOrEqual(t, qs.first(i), qs.first((i-1)/2), "heap order")
			}
		}
	}
	require.LessOrEqual(t, s.nDone, s.maxKeys)
	checkIndex(t, s)
	require.Len(t, s.keyMap(), s.nHeld+s.nDone)
	for k, i := range s.keyMap() {
		if s.ents[i].key != k || !live[i] {
			t.Fatalf("key %v: entry %d holds %v, live %v", k, i, s.ents[i].key, live[i])
		}
		if tok := s.ents[i].token; tok != 0 && (tok < s.base || (tok-s.base)%s.step != 0 || tok >= s.base+s.issued*s.step) {
			t.Fatalf("key %v: token %d not one of the shard's", k, tok)
		}
	}
	free := 0
	for i := s.free; i >= 0; i = int32(s.ents[i].link) {
		require.Nil(t, s.ents[i].q)
		free++
	}
	require.Equal(t, len(s.ents), free+len(live), "every entry live or free")
	return slots, capacity
}

// TestMemoryStoreQueuesStayBounded checks that reservations released out of
// order, behind one that stays, leave no more stale slots than the queues can
// compact: the queues do not grow with the number of calls.
func TestMemoryStoreQueuesStayBounded(t *testing.T) {
	ctx := context.Background()
	s := NewMemoryStore(MemoryStoreOptions{MaxKeys: 50})
	rnd := rand.New(rand.NewPCG(1, 2))
	pinned, err := s.Reserve(ctx, Key{ID: "pinned"}, time.Hour)
	require.NoError(t, err)
	type held struct {
		key   Key
		token uint64
	}
	var window []held
	maxSlots, maxCap := 0, 0
	for n := range 200_000 {
		k := Key{ID: strconv.Itoa(n)}
		r, err := s.Reserve(ctx, k, time.Hour)
		require.NoError(t, err)
		require.Equal(t, Reserved, r.Status)
		window = append(window, held{k, r.Token})
		if len(window) < 100 {
			continue
		}
		j := rnd.IntN(len(window))
		h := window[j]
		window = slices.Delete(window, j, j+1)
		if n%10 == 0 {
			require.NoError(t, s.Commit(ctx, h.key, h.token, time.Hour))
		} else {
			require.NoError(t, s.Release(ctx, h.key, h.token))
		}
		if n%1000 == 0 {
			slots, capacity := checkStore(t, s)
			maxSlots, maxCap = max(maxSlots, slots), max(maxCap, capacity)
		}
	}
	// 100 reservations and 50 done keys live: at most twice as many slots,
	// plus slack, in rings at most twice as long.
	require.LessOrEqual(t, maxSlots, 2*150+2*compactSlack)
	require.LessOrEqual(t, maxCap, 2*(2*150+2*compactSlack))
	require.Len(t, s.shards, 2, "one shard per side")
	require.LessOrEqual(t, len(s.shards[0].ents), 151+1, "every key here is on the first side")
	require.NoError(t, s.Release(ctx, Key{ID: "pinned"}, pinned.Token))
}

// TestMemoryStoreClockNeverGoesBack checks that a call that read the clock
// before an earlier call locked the shard uses that call's time, so that the
// queues stay in order of expiry.
func TestMemoryStoreClockNeverGoesBack(t *testing.T) {
	s := &NewMemoryStore(MemoryStoreOptions{}).shards[0]
	t0 := time.Now()
	require.Zero(t, s.clockLocked(t0))
	require.Equal(t, int64(time.Second), s.clockLocked(t0.Add(time.Second)))
	require.Equal(t, int64(time.Second), s.clockLocked(t0.Add(time.Millisecond)))
	require.Equal(t, int64(2*time.Second), s.clockLocked(t0.Add(2*time.Second)))
}

// TestMemoryStoreCommitCountsFromTheShardsTime checks that Commit and
// Release read no clock: a TTL counts from the shard's time (the latest
// Reserve or Stats on it), so a done key expires early rather than late, and
// a lease that ran out while nobody looked still lets its holder commit.
func TestMemoryStoreCommitCountsFromTheShardsTime(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx := context.Background()
		s := NewMemoryStore(MemoryStoreOptions{MaxKeys: 10})
		r, err := s.Reserve(ctx, Key{ID: "a"}, time.Minute)
		require.NoError(t, err)
		time.Sleep(2 * time.Minute) // the lease ran out, unseen
		require.NoError(t, s.Commit(ctx, Key{ID: "a"}, r.Token, time.Hour), "nobody else could reserve it")
		sh := &s.shards[0]
		require.Zero(t, sh.now, "the shard's time did not move")
		time.Sleep(time.Hour - 2*time.Minute)
		require.Equal(t, MemoryStoreStats{}, s.Stats(), "an hour after the Reserve: gone, though committed later")

		r, err = s.Reserve(ctx, Key{ID: "b"}, time.Minute)
		require.NoError(t, err)
		time.Sleep(2 * time.Minute)
		require.Equal(t, MemoryStoreStats{}, s.Stats(), "the lease ran out, seen by Stats")
		require.ErrorIs(t, s.Release(ctx, Key{ID: "b"}, r.Token), ErrNotHeld)
		checkStore(t, s)
	})
}

// TestMemoryStoreAgainstModel runs random calls with several leases and TTLs
// against a plain model of the store, checking every outcome and the
// invariants of the queues. The durations are whole minutes apart from an
// odd nanosecond count, and time moves in whole minutes, so that no two keys
// of different durations expire at the same instant and the key to evict is
// never in doubt. The sharded runs use a default store, with a small bound
// per shard so that shards evict.
func TestMemoryStoreAgainstModel(t *testing.T) {
	for _, sharded := range []bool{false, true} {
		for _, maxDurations := range []int{3, 20} { // 20: more queues than keepQueues
			t.Run(fmt.Sprintf("sharded=%v/%d", sharded, maxDurations), func(t *testing.T) {
				synctest.Test(t, func(t *testing.T) { testAgainstModel(t, maxDurations, sharded) })
			})
		}
	}
}

func testAgainstModel(t *testing.T, nDurations int, sharded bool) {
	ctx := context.Background()
	// maxKeys is the bound on done keys of each shard; nKeys the IDs in use,
	// each in two scopes, one on each side of the store.
	maxKeys, nKeys := 10, 60
	s := NewMemoryStore(MemoryStoreOptions{MaxKeys: maxKeys})
	if sharded {
		maxKeys, nKeys = 2, 64
		s = NewMemoryStore(MemoryStoreOptions{})
		require.Len(t, s.shards, memoryShards)
		for i := range s.shards {
			s.shards[i].maxKeys = maxKeys
		}
	}
	rnd := rand.New(rand.NewPCG(3, uint64(nDurations)))
	durations := make([]time.Duration, nDurations)
	for i := range durations {
		durations[i] = time.Duration(i+1)*7*time.Minute + time.Duration(i) // distinct remainders
	}
	type modelKey struct {
		token   uint64 // 0 once done
		expires time.Time
		seq     int    // order of commit, among equal expiries
		mark    uint64 // the token of markSent, for a key it recorded
		res     Reservation
	}
	model := map[Key]*modelKey{}
	// clock is the time of each shard: of the latest Reserve or Stats on it.
	// Commit and Release count from it and expire nothing.
	clock := map[*memoryShard]time.Time{}
	tokens := map[uint64]bool{}
	seq := 0
	var last Reservation // the latest Reserved result
	expire := func(now time.Time, sh *memoryShard) {
		clock[sh] = now
		for k, m := range model {
			if s.shardOf(k) == sh && !now.Before(m.expires) {
				delete(model, k)
			}
		}
	}
	var evicted uint64
	// evictIfFull drops from the model the done key of sh that the store
	// evicts to make room for one more.
	evictIfFull := func(sh *memoryShard) {
		var done []Key
		for k2, m := range model {
			if m.token == 0 && s.shardOf(k2) == sh {
				done = append(done, k2)
			}
		}
		if len(done) < maxKeys {
			return
		}
		first := slices.MinFunc(done, func(a, b Key) int {
			if c := model[a].expires.Compare(model[b].expires); c != 0 {
				return c
			}
			return model[a].seq - model[b].seq
		})
		delete(model, first)
		evicted++
	}
	for n := range 5000 {
		if rnd.IntN(20) == 0 {
			time.Sleep(time.Duration(rnd.IntN(10)) * time.Minute)
		}
		k := Key{Scope: [2]string{"s", deliveryScope + "s"}[rnd.IntN(2)], ID: strconv.Itoa(rnd.IntN(nKeys))}
		sh := s.shardOf(k)
		d := durations[rnd.IntN(len(durations))]
		m := model[k]
		switch op := rnd.IntN(4); {
		case op == 3 && m == nil:
			expire(time.Now(), sh)
			r, err := s.markSent(ctx, k, d, time.Time{})
			require.NoError(t, err)
			require.Equal(t, Reserved, r.Status)
			evictIfFull(sh)
			seq++
			model[k] = &modelKey{expires: clock[sh].Add(d), seq: seq, mark: r.Token}
		case op == 3 && m.mark != 0:
			require.NoError(t, s.unmarkSent(k, m.mark))
			delete(model, k)
		case op == 3:
			require.ErrorIs(t, s.unmarkSent(k, m.token), ErrNotHeld, "not recorded by markSent")
		case op == 0 || m == nil:
			expire(time.Now(), sh)
			m = model[k]
			r, err := s.Reserve(ctx, k, d)
			require.NoError(t, err)
			switch {
			case m == nil:
				require.Equal(t, Reserved, r.Status)
				require.False(t, tokens[r.Token], "a token used before")
				tokens[r.Token] = true
				model[k] = &modelKey{token: r.Token, expires: clock[sh].Add(d), res: r}
				last = r
			case m.token == 0:
				require.Equal(t, Reservation{Status: Done}, r)
			default:
				require.Equal(t, Reservation{Status: InProgress}, r)
			}
		case m.token == 0:
			require.ErrorIs(t, s.Release(ctx, k, 1), ErrNotHeld)
			// The last reservation made, whatever became of it, does not
			// name k's entry as held: k is done.
			require.ErrorIs(t, s.releaseHeld(k, last), ErrNotHeld)
			require.ErrorIs(t, s.commitHeld(k, last, d), ErrNotHeld)
		case op == 1 && rnd.IntN(2) == 0:
			require.NoError(t, s.Release(ctx, k, m.token))
			delete(model, k)
		case op == 1:
			stale := m.res // as if from an earlier reservation of k
			stale.Token += uint64(len(s.shards))
			require.ErrorIs(t, s.releaseHeld(k, stale), ErrNotHeld)
			require.ErrorIs(t, s.commitHeld(k, stale, d), ErrNotHeld)
			require.NoError(t, s.releaseHeld(k, m.res))
			delete(model, k)
		default:
			if rnd.IntN(2) == 0 {
				require.NoError(t, s.Commit(ctx, k, m.token, d))
			} else {
				require.NoError(t, s.commitHeld(k, m.res, d))
			}
			evictIfFull(sh)
			seq++
			m.token, m.expires, m.seq = 0, clock[sh].Add(d), seq
		}
		if n%50 == 0 {
			checkStore(t, s)
		} else {
			checkShard(t, sh)
		}
		nKeys := 0
		for i := range s.shards {
			nKeys += len(s.shards[i].keyMap())
		}
		require.Len(t, model, nKeys)
		for k, m := range model {
			sh := s.shardOf(k)
			i, ok := sh.keyMap()[k]
			if !ok {
				t.Fatalf("key %v: not in the store", k)
			}
			if sh.ents[i].token != m.token {
				t.Fatalf("key %v: token %d, want %d", k, sh.ents[i].token, m.token)
			}
		}
		if rnd.IntN(4) > 0 { // now and then, let the shards' time lag
			continue
		}
		now := time.Now()
		for i := range s.shards {
			expire(now, &s.shards[i])
		}
		st := MemoryStoreStats{Evicted: evicted}
		for _, m := range model {
			if m.token == 0 {
				st.Done++
			} else {
				st.Reserved++
			}
		}
		require.Equal(t, st, s.Stats())
	}
	require.NotZero(t, evicted)
	if nDurations > keepQueues {
		// Keys spread over the shards by a seeded hash, so which shard
		// outgrew its fixed queues differs from run to run: one did.
		grew := false
		for i := range s.shards {
			grew = grew || s.shards[i].done.byDur != nil
		}
		require.True(t, grew, "no shard needed more duration queues than keepQueues")
	}
}

// TestMemoryStoreShardedKeys checks that a store with the default MaxKeys
// spreads keys over its shards, and that each key still behaves as in a
// single store: reserve, in progress, commit, done, release, lease and TTL
// expiry, and tokens unique in the store.
func TestMemoryStoreShardedKeys(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx := context.Background()
		s := NewMemoryStore(MemoryStoreOptions{})
		require.Len(t, s.shards, memoryShards)
		for i := range s.shards {
			require.Equal(t, (DefaultMaxKeys+sideShards-1)/sideShards, s.shards[i].maxKeys, "a side bounds DefaultMaxKeys")
		}
		const n = 256
		keys := make([]Key, n)
		tokens := make([]uint64, n)
		seen := map[uint64]bool{}
		for i := range keys {
			keys[i] = Key{Scope: [2]string{"handled/orders", "sent/orders"}[i%2], ID: "order-" + strconv.Itoa(i)}
			r, err := s.Reserve(ctx, keys[i], time.Minute)
			require.NoError(t, err)
			require.Equal(t, Reserved, r.Status)
			require.False(t, seen[r.Token], "token %d handed out twice", r.Token)
			seen[r.Token] = true
			tokens[i] = r.Token
		}
		used := 0
		for i := range s.shards {
			if s.shards[i].nHeld > 0 {
				used++
			}
			require.Less(t, s.shards[i].nHeld, n/2, "shard %d holds most keys", i)
		}
		require.Equal(t, memoryShards, used, "256 keys over 16 shards leave none empty")
		// The same ID in another scope is another key.
		other := Key{Scope: "sent/orders", ID: keys[0].ID}
		r, err := s.Reserve(ctx, other, time.Minute)
		require.NoError(t, err)
		require.Equal(t, Reserved, r.Status)
		require.NoError(t, s.Release(ctx, other, r.Token))

		// A third commits, a third releases, a third stays reserved.
		for i, k := range keys {
			r, err := s.Reserve(ctx, k, time.Minute)
			require.NoError(t, err)
			require.Equal(t, Reservation{Status: InProgress}, r)
			switch i % 3 {
			case 0:
				require.ErrorIs(t, s.Commit(ctx, k, tokens[i]+1, time.Hour), ErrNotHeld)
				require.NoError(t, s.Commit(ctx, k, tokens[i], time.Hour))
				require.ErrorIs(t, s.Commit(ctx, k, tokens[i], time.Hour), ErrNotHeld)
			case 1:
				require.ErrorIs(t, s.Release(ctx, k, tokens[(i+1)%n]), ErrNotHeld, "another key's token")
				require.NoError(t, s.Release(ctx, k, tokens[i]))
			}
		}
		checkStore(t, s)
		nDone, nHeld := (n+2)/3, (n+0)/3
		require.Equal(t, MemoryStoreStats{Reserved: nHeld, Done: nDone}, s.Stats())
		status := func(i int) ReserveStatus {
			t.Helper()
			r, err := s.Reserve(ctx, keys[i], time.Minute)
			require.NoError(t, err)
			if r.Status == Reserved {
				require.False(t, seen[r.Token], "token %d handed out twice", r.Token)
				seen[r.Token] = true
				require.NoError(t, s.Release(ctx, keys[i], r.Token))
			}
			return r.Status
		}
		for i := range keys {
			require.Equal(t, [...]ReserveStatus{Done, Reserved, InProgress}[i%3], status(i), i)
		}

		time.Sleep(time.Minute) // the leases run out
		require.Equal(t, MemoryStoreStats{Done: nDone}, s.Stats())
		for i := range keys {
			if i%3 == 2 {
				require.ErrorIs(t, s.Commit(ctx, keys[i], tokens[i], time.Hour), ErrNotHeld)
				require.Equal(t, Reserved, status(i))
			}
		}
		time.Sleep(time.Hour - time.Minute) // the TTLs run out
		require.Equal(t, MemoryStoreStats{}, s.Stats())
		for i := range keys {
			require.Equal(t, Reserved, status(i), i)
		}
		checkStore(t, s)
	})
}

// TestMemoryStoreShardedStats checks that Stats sums its shards, evictions
// included, and that each shard evicts the key closest to expiry among its
// own.
func TestMemoryStoreShardedStats(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx := context.Background()
		s := NewMemoryStore(MemoryStoreOptions{})
		const perShard = 4
		for i := range s.shards {
			s.shards[i].maxKeys = perShard
		}
		// Commit keys until every shard is full, then one more per shard, with
		// a TTL that puts it first to expire: it evicts a key of its own shard
		// (the first committed there), and is not evicted itself.
		byShard := make(map[*memoryShard][]Key)
		commit := func(k Key, ttl time.Duration) {
			t.Helper()
			r, err := s.Reserve(ctx, k, time.Minute)
			require.NoError(t, err)
			require.Equal(t, Reserved, r.Status)
			require.NoError(t, s.Commit(ctx, k, r.Token, ttl))
		}
		full := 0
		for i := 0; full < memoryShards; i++ {
			k := Key{Scope: [2]string{"s", deliveryScope + "s"}[i%2], ID: strconv.Itoa(i)}
			sh := s.shardOf(k)
			if len(byShard[sh]) == perShard {
				continue
			}
			commit(k, time.Hour+time.Duration(i)*time.Second)
			byShard[sh] = append(byShard[sh], k)
			if len(byShard[sh]) == perShard {
				full++
			}
		}
		held, err := s.Reserve(ctx, Key{Scope: "s", ID: "held"}, time.Minute)
		require.NoError(t, err)
		require.Equal(t, MemoryStoreStats{Reserved: 1, Done: memoryShards * perShard}, s.Stats())

		extra := map[*memoryShard]bool{}
		for i := 0; len(extra) < memoryShards; i++ {
			k := Key{Scope: [2]string{"extra", deliveryScope + "extra"}[i%2], ID: strconv.Itoa(i)}
			sh := s.shardOf(k)
			if extra[sh] {
				continue
			}
			extra[sh] = true
			commit(k, time.Minute)
			require.Equal(t, uint64(1), sh.evicted)
			require.Equal(t, perShard, sh.nDone)
		}
		var sum MemoryStoreStats
		for i := range s.shards {
			sh := &s.shards[i]
			sum.Reserved += sh.nHeld
			sum.Done += sh.nDone
			sum.Evicted += sh.evicted
		}
		want := MemoryStoreStats{Reserved: 1, Done: memoryShards * perShard, Evicted: memoryShards}
		require.Equal(t, want, sum)
		require.Equal(t, want, s.Stats())
		for _, keys := range byShard {
			for j, k := range keys {
				r, err := s.Reserve(ctx, k, time.Minute)
				require.NoError(t, err)
				if j == 0 {
					require.Equal(t, Reserved, r.Status, "the shard's first to expire is evicted")
					require.NoError(t, s.Release(ctx, k, r.Token))
				} else {
					require.Equal(t, Done, r.Status)
				}
			}
		}

		time.Sleep(time.Minute) // the extra keys and the reservation expire
		require.Equal(t, MemoryStoreStats{Done: memoryShards * (perShard - 1), Evicted: memoryShards}, s.Stats())
		require.ErrorIs(t, s.Release(ctx, Key{Scope: "s", ID: "held"}, held.Token), ErrNotHeld)
		checkStore(t, s)
	})
}

// memoryShards is how many shards a store of DefaultMaxKeys has.
const memoryShards = 2 * sideShards

// shardOf returns the shard of k.
func (s *MemoryStore) shardOf(k Key) *memoryShard {
	sh, _ := s.shard(k)
	return sh
}

// keyMap returns the shard's index as a map from key to entry.
func (s *memoryShard) keyMap() map[Key]int32 {
	m := map[Key]int32{}
	for _, v := range s.index {
		if v != 0 {
			i := int32(uint32(v)) - 1
			m[s.ents[i].key] = i
		}
	}
	return m
}

// checkIndex checks the invariants of a shard's index: at most half full,
// with its count right, each entry once, and each found by a probe from its
// first slot that meets no empty slot.
func checkIndex(t *testing.T, s *memoryShard) {
	t.Helper()
	n := 0
	seen := map[int32]bool{}
	mask := len(s.index) - 1
	for p, v := range s.index {
		if v == 0 {
			continue
		}
		n++
		i := int32(uint32(v)) - 1
		require.Equal(t, indexSlot(s.ents[i].tag, i), v, "slot %d", p)
		if seen[i] {
			t.Fatalf("entry %d indexed twice", i)
		}
		seen[i] = true
		for q := home(v, mask); q != p; q = (q + 1) & mask {
			if s.index[q] == 0 {
				t.Fatalf("entry %d at slot %d: an empty slot %d between it and its first slot", i, p, q)
			}
		}
		if got := s.find(s.ents[i].key, uint64(s.ents[i].tag)<<32); got != i {
			t.Fatalf("find(%v) = %d, want %d", s.ents[i].key, got, i)
		}
	}
	require.Equal(t, n, s.indexed)
	require.LessOrEqual(t, 2*n, len(s.index), "at most half full")
}

// TestIndexAgainstMap drives a shard's index with hashes that collide on
// purpose (few first slots, some near the end of the table so that probes
// wrap), against a map.
func TestIndexAgainstMap(t *testing.T) {
	rnd := rand.New(rand.NewPCG(7, 11))
	s := &memoryShard{free: -1}
	model := map[Key]int32{}
	var live []int32
	for n := range 20000 {
		if len(live) == 0 || rnd.IntN(2) == 0 {
			k := Key{Scope: "s", ID: strconv.Itoa(n)}
			mask := uint64(max(len(s.index), minIndex) - 1)
			slot := uint64(rnd.IntN(4)) // one of the first four slots
			if rnd.IntN(2) == 0 {
				slot = mask - uint64(rnd.IntN(3)) // or of the last three
			}
			h := slot<<32 | uint64(rnd.Uint32())&0xffff
			i := int32(len(s.ents))
			s.ents = append(s.ents, storeEntry{key: k, tag: uint32(h >> 32)})
			s.addToIndex(i)
			model[k] = i
			live = append(live, i)
		} else {
			j := rnd.IntN(len(live))
			i := live[j]
			live[j] = live[len(live)-1]
			live = live[:len(live)-1]
			s.removeFromIndex(i)
			delete(model, s.ents[i].key)
		}
		if len(live) > 200 { // keep clusters dense: remove more than add
			i := live[0]
			live = live[1:]
			s.removeFromIndex(i)
			delete(model, s.ents[i].key)
		}
		checkIndex(t, s)
		require.Equal(t, model, s.keyMap())
		if miss := (Key{Scope: "s", ID: "missing"}); s.find(miss, uint64(s.ents[0].tag)<<32) != -1 {
			t.Fatal("found a key never added")
		}
	}
}

// TestMemoryStoreMarkSent: markSent leaves a key done, as Reserve and Commit
// would; unmarkSent forgets it, but only with the token of the mark that is
// still there.
func TestMemoryStoreMarkSent(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx := context.Background()
		s := NewMemoryStore(MemoryStoreOptions{MaxKeys: 2})
		k := Key{Scope: "sent/orders", ID: "a"}

		r, err := s.markSent(ctx, k, time.Minute, time.Time{})
		require.NoError(t, err)
		require.Equal(t, Reserved, r.Status)
		require.NotZero(t, r.Token)
		require.Equal(t, MemoryStoreStats{Done: 1}, s.Stats())
		again, err := s.Reserve(ctx, k, time.Minute)
		require.NoError(t, err)
		require.Equal(t, Reservation{Status: Done}, again)
		again, err = s.markSent(ctx, k, time.Minute, time.Time{})
		require.NoError(t, err)
		require.Equal(t, Reservation{Status: Done}, again)

		require.ErrorIs(t, s.unmarkSent(k, r.Token+1), ErrNotHeld)
		require.NoError(t, s.unmarkSent(k, r.Token))
		require.ErrorIs(t, s.unmarkSent(k, r.Token), ErrNotHeld, "forgotten already")
		require.Equal(t, MemoryStoreStats{}, s.Stats())

		// A mark that expired and was made again: the old token is stale.
		old, err := s.markSent(ctx, k, time.Minute, time.Time{})
		require.NoError(t, err)
		time.Sleep(time.Minute)
		renewed, err := s.markSent(ctx, k, time.Minute, time.Time{})
		require.NoError(t, err)
		require.Equal(t, Reserved, renewed.Status)
		require.ErrorIs(t, s.unmarkSent(k, old.Token), ErrNotHeld)
		require.Equal(t, MemoryStoreStats{Done: 1}, s.Stats())

		// Marks count against MaxKeys like commits: the first to expire goes.
		for _, id := range []string{"b", "c"} {
			_, err := s.markSent(ctx, Key{Scope: "sent/orders", ID: id}, time.Hour, time.Time{})
			require.NoError(t, err)
		}
		require.Equal(t, MemoryStoreStats{Done: 2, Evicted: 1}, s.Stats())
		r, err = s.Reserve(ctx, k, time.Minute)
		require.NoError(t, err)
		require.Equal(t, Reserved, r.Status, "the evicted key is free again")
		checkStore(t, s)
	})
}

// TestMemoryStoreMarkSentAt: a mark made with the time of its send counts
// its TTL from then, unless the store has seen a later time: the store's time
// does not go back.
func TestMemoryStoreMarkSentAt(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx := context.Background()
		s := NewMemoryStore(MemoryStoreOptions{MaxKeys: 100}) // one shard a side: one time for these keys
		sent := time.Now()
		time.Sleep(40 * time.Second)
		a := Key{Scope: "sent/orders", ID: "a"}
		r, err := s.markSent(ctx, a, time.Minute, sent)
		require.NoError(t, err)
		require.Equal(t, Reserved, r.Status)
		// A reservation reads the clock: the store's time is now 40s on.
		held := Key{Scope: "sent/orders", ID: "b"}
		h, err := s.Reserve(ctx, held, 30*time.Second)
		require.NoError(t, err)
		require.Equal(t, Reserved, h.Status)
		// So a mark made with the same send time now counts from then.
		_, err = s.markSent(ctx, Key{Scope: "sent/orders", ID: "c"}, time.Minute, sent)
		require.NoError(t, err)

		time.Sleep(19 * time.Second) // 59s after the send
		require.Equal(t, MemoryStoreStats{Reserved: 1, Done: 2}, s.Stats())
		time.Sleep(time.Second) // a's minute from its send is over
		require.Equal(t, MemoryStoreStats{Reserved: 1, Done: 1}, s.Stats())
		again, err := s.markSent(ctx, a, time.Minute, time.Time{})
		require.NoError(t, err)
		require.Equal(t, Reserved, again.Status, "the first mark expired a minute after its send")
		time.Sleep(10 * time.Second) // b's lease, 30s from the 40s mark, is over
		require.Equal(t, MemoryStoreStats{Done: 2}, s.Stats())
		time.Sleep(30 * time.Second) // 100s: c's minute from the 40s mark is over
		require.Equal(t, MemoryStoreStats{Done: 1}, s.Stats())
		checkStore(t, s)
	})
}

// An entry is one cache line: see storeEntry.
func TestStoreEntryIsOneCacheLine(t *testing.T) {
	if n := unsafe.Sizeof(storeEntry{}); n != 64 {
		t.Errorf("storeEntry is %d bytes, want 64", n)
	}
}
