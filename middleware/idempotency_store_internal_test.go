package middleware

import (
	"context"
	"math/rand/v2"
	"slices"
	"strconv"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/require"
)

// checkStore checks the invariants of the store's queues, and returns how
// many slots, live or stale, and how much ring capacity its queues hold.
func checkStore(t *testing.T, s *MemoryStore) (slots, capacity int) {
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
	require.Len(t, s.keys, s.nHeld+s.nDone)
	for k, i := range s.keys {
		if s.ents[i].key != k || !live[i] {
			t.Fatalf("key %v: entry %d holds %v, live %v", k, i, s.ents[i].key, live[i])
		}
	}
	free := 0
	for i := s.free; i >= 0; i = s.ents[i].next {
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
	require.LessOrEqual(t, len(s.ents), 151+1)
	require.NoError(t, s.Release(ctx, Key{ID: "pinned"}, pinned.Token))
}

// TestMemoryStoreClockNeverGoesBack checks that a call that read the clock
// before an earlier call locked the store uses that call's time, so that the
// queues stay in order of expiry.
func TestMemoryStoreClockNeverGoesBack(t *testing.T) {
	s := NewMemoryStore(MemoryStoreOptions{})
	t0 := time.Now()
	require.Zero(t, s.clockLocked(t0))
	require.Equal(t, int64(time.Second), s.clockLocked(t0.Add(time.Second)))
	require.Equal(t, int64(time.Second), s.clockLocked(t0.Add(time.Millisecond)))
	require.Equal(t, int64(2*time.Second), s.clockLocked(t0.Add(2*time.Second)))
}

// TestMemoryStoreAgainstModel runs random calls with several leases and TTLs
// against a plain model of the store, checking every outcome and the
// invariants of the queues. The durations are whole minutes apart from an
// odd nanosecond count, and time moves in whole minutes, so that no two keys
// of different durations expire at the same instant and the key to evict is
// never in doubt.
func TestMemoryStoreAgainstModel(t *testing.T) {
	for _, maxDurations := range []int{3, 20} { // 20: more queues than keepQueues
		t.Run(strconv.Itoa(maxDurations), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) { testAgainstModel(t, maxDurations) })
		})
	}
}

func testAgainstModel(t *testing.T, nDurations int) {
	const maxKeys = 20
	ctx := context.Background()
	s := NewMemoryStore(MemoryStoreOptions{MaxKeys: maxKeys})
	rnd := rand.New(rand.NewPCG(3, uint64(nDurations)))
	durations := make([]time.Duration, nDurations)
	for i := range durations {
		durations[i] = time.Duration(i+1)*7*time.Minute + time.Duration(i) // distinct remainders
	}
	type modelKey struct {
		token   uint64 // 0 once done
		expires time.Time
		seq     int // order of commit, among equal expiries
	}
	model := map[Key]*modelKey{}
	seq := 0
	expire := func(now time.Time) {
		for k, m := range model {
			if !now.Before(m.expires) {
				delete(model, k)
			}
		}
	}
	var evicted uint64
	for range 5000 {
		if rnd.IntN(20) == 0 {
			time.Sleep(time.Duration(rnd.IntN(10)) * time.Minute)
		}
		now := time.Now()
		expire(now)
		k := Key{ID: strconv.Itoa(rnd.IntN(60))}
		d := durations[rnd.IntN(len(durations))]
		m := model[k]
		switch op := rnd.IntN(3); {
		case op == 0 || m == nil:
			r, err := s.Reserve(ctx, k, d)
			require.NoError(t, err)
			switch {
			case m == nil:
				require.Equal(t, Reserved, r.Status)
				model[k] = &modelKey{token: r.Token, expires: now.Add(d)}
			case m.token == 0:
				require.Equal(t, Reservation{Status: Done}, r)
			default:
				require.Equal(t, Reservation{Status: InProgress}, r)
			}
		case m.token == 0:
			require.ErrorIs(t, s.Release(ctx, k, 1), ErrNotHeld)
		case op == 1:
			require.NoError(t, s.Release(ctx, k, m.token))
			delete(model, k)
		default:
			require.NoError(t, s.Commit(ctx, k, m.token, d))
			var done []Key
			for k, m := range model {
				if m.token == 0 {
					done = append(done, k)
				}
			}
			if len(done) == maxKeys {
				first := slices.MinFunc(done, func(a, b Key) int {
					if c := model[a].expires.Compare(model[b].expires); c != 0 {
						return c
					}
					return model[a].seq - model[b].seq
				})
				delete(model, first)
				evicted++
			}
			seq++
			m.token, m.expires, m.seq = 0, now.Add(d), seq
		}
		checkStore(t, s)
		st := MemoryStoreStats{Evicted: evicted}
		for _, m := range model {
			if m.token == 0 {
				st.Done++
			} else {
				st.Reserved++
			}
		}
		require.Equal(t, st, s.Stats())
		for k, m := range model {
			i, ok := s.keys[k]
			if !ok {
				t.Fatalf("key %v: not in the store", k)
			}
			if s.ents[i].token != m.token {
				t.Fatalf("key %v: token %d, want %d", k, s.ents[i].token, m.token)
			}
		}
	}
	require.NotZero(t, evicted)
	if nDurations > keepQueues {
		require.NotNil(t, s.done.byDur)
	}
}
