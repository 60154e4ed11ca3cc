package middleware_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/courierbus/courier/middleware"
)

// key returns the store key of id in a test scope.
func key(id string) middleware.Key { return middleware.Key{Scope: "test", ID: id} }

func TestMemoryStoreReserveCommitRelease(t *testing.T) {
	ctx := context.Background()
	s := middleware.NewMemoryStore(middleware.MemoryStoreOptions{})

	r, err := s.Reserve(ctx, key("k"), time.Minute)
	require.NoError(t, err)
	require.Equal(t, middleware.Reserved, r.Status)
	require.NotZero(t, r.Token)

	again, err := s.Reserve(ctx, key("k"), time.Minute)
	require.NoError(t, err)
	require.Equal(t, middleware.Reservation{Status: middleware.InProgress}, again)

	require.ErrorIs(t, s.Commit(ctx, key("k"), r.Token+100, time.Hour), middleware.ErrNotHeld)
	require.ErrorIs(t, s.Release(ctx, key("k"), r.Token+100), middleware.ErrNotHeld)
	require.ErrorIs(t, s.Commit(ctx, key("other"), r.Token, time.Hour), middleware.ErrNotHeld)

	require.NoError(t, s.Release(ctx, key("k"), r.Token))
	require.ErrorIs(t, s.Release(ctx, key("k"), r.Token), middleware.ErrNotHeld, "released once")
	r2, err := s.Reserve(ctx, key("k"), time.Minute)
	require.NoError(t, err)
	require.Equal(t, middleware.Reserved, r2.Status, "a released key is free")
	require.NotEqual(t, r.Token, r2.Token)

	require.NoError(t, s.Commit(ctx, key("k"), r2.Token, time.Hour))
	require.ErrorIs(t, s.Commit(ctx, key("k"), r2.Token, time.Hour), middleware.ErrNotHeld, "committed once")
	done, err := s.Reserve(ctx, key("k"), time.Minute)
	require.NoError(t, err)
	require.Equal(t, middleware.Reservation{Status: middleware.Done}, done)
	require.Equal(t, middleware.MemoryStoreStats{Done: 1}, s.Stats())
	require.Equal(t, "in progress", middleware.InProgress.String())
}

func TestMemoryStoreHonoursContext(t *testing.T) {
	s := middleware.NewMemoryStore(middleware.MemoryStoreOptions{})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := s.Reserve(ctx, key("k"), time.Minute)
	require.ErrorIs(t, err, context.Canceled)
	require.Equal(t, middleware.MemoryStoreStats{}, s.Stats(), "nothing reserved")
}

func TestMemoryStoreLeaseAndTTLExpire(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx := context.Background()
		s := middleware.NewMemoryStore(middleware.MemoryStoreOptions{})
		lost, err := s.Reserve(ctx, key("crashed"), time.Minute)
		require.NoError(t, err)
		held, err := s.Reserve(ctx, key("done"), time.Minute)
		require.NoError(t, err)
		require.NoError(t, s.Commit(ctx, key("done"), held.Token, time.Hour))
		require.Equal(t, middleware.MemoryStoreStats{Reserved: 1, Done: 1}, s.Stats())

		time.Sleep(time.Minute) // the lease ends
		require.Equal(t, middleware.MemoryStoreStats{Done: 1}, s.Stats())
		require.ErrorIs(t, s.Commit(ctx, key("crashed"), lost.Token, time.Hour), middleware.ErrNotHeld,
			"a holder whose lease ran out cannot commit")
		r, err := s.Reserve(ctx, key("crashed"), time.Minute)
		require.NoError(t, err)
		require.Equal(t, middleware.Reserved, r.Status, "the key is free after the lease")
		require.NoError(t, s.Release(ctx, key("crashed"), r.Token))

		r, err = s.Reserve(ctx, key("done"), time.Minute)
		require.NoError(t, err)
		require.Equal(t, middleware.Done, r.Status)
		time.Sleep(time.Hour - time.Minute) // the TTL ends
		require.Equal(t, middleware.MemoryStoreStats{}, s.Stats(), "every key forgotten")
		r, err = s.Reserve(ctx, key("done"), time.Minute)
		require.NoError(t, err)
		require.Equal(t, middleware.Reserved, r.Status)
	})
}

func TestMemoryStoreBoundsDoneKeys(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx := context.Background()
		s := middleware.NewMemoryStore(middleware.MemoryStoreOptions{MaxKeys: 3})
		commit := func(k string, ttl time.Duration) {
			r, err := s.Reserve(ctx, key(k), time.Minute)
			require.NoError(t, err)
			require.Equal(t, middleware.Reserved, r.Status)
			require.NoError(t, s.Commit(ctx, key(k), r.Token, ttl))
		}
		commit("a", 3*time.Hour)
		commit("b", time.Hour) // closest to its expiry: evicted first
		commit("c", 2*time.Hour)
		commit("d", 4*time.Hour)
		st := s.Stats()
		require.Equal(t, 3, st.Done)
		require.EqualValues(t, 1, st.Evicted)
		for k, want := range map[string]middleware.ReserveStatus{
			"a": middleware.Done, "b": middleware.Reserved, "c": middleware.Done, "d": middleware.Done,
		} {
			r, err := s.Reserve(ctx, key(k), time.Minute)
			require.NoError(t, err)
			require.Equal(t, want, r.Status, k)
		}
	})
}

// The keys of deliveries and the other keys are bounded apart: a burst of
// sends does not push out the keys that keep deliveries effectively-once,
// nor the other way round. Both a small store (a shard a side) and the
// default one (eight a side) keep them apart.
func TestMemoryStoreBoundsDeliveriesApart(t *testing.T) {
	for _, maxKeys := range []int{3, 0} {
		t.Run(fmt.Sprint("MaxKeys=", maxKeys), func(t *testing.T) {
			ctx := context.Background()
			s := middleware.NewMemoryStore(middleware.MemoryStoreOptions{MaxKeys: maxKeys})
			sent := func(id int) middleware.Key { return middleware.Key{Scope: "sent/orders", ID: fmt.Sprint(id)} }
			handled := func(id int) middleware.Key { return middleware.Key{Scope: "handled/orders", ID: fmt.Sprint(id)} }
			commit := func(k middleware.Key) {
				t.Helper()
				r, err := s.Reserve(ctx, k, time.Minute)
				require.NoError(t, err)
				require.Equal(t, middleware.Reserved, r.Status, k)
				require.NoError(t, s.Commit(ctx, k, r.Token, time.Hour))
			}
			status := func(k middleware.Key) middleware.ReserveStatus {
				t.Helper()
				r, err := s.Reserve(ctx, k, time.Minute)
				require.NoError(t, err)
				if r.Status == middleware.Reserved {
					require.NoError(t, s.Release(ctx, k, r.Token))
				}
				return r.Status
			}
			// A few deliveries, then sends beyond any bound.
			for i := range 3 {
				commit(handled(i))
			}
			sends := 3
			if maxKeys == 0 {
				sends = 2 * middleware.DefaultMaxKeys
			}
			for i := range sends {
				commit(sent(i))
			}
			st := s.Stats()
			for i := range 3 {
				require.Equal(t, middleware.Done, status(handled(i)), "delivery %d", i)
			}
			if maxKeys == 3 {
				// The bound is exact on each side: three of each, no eviction;
				// one more delivery evicts the first delivery only.
				require.Equal(t, middleware.MemoryStoreStats{Done: 6}, st)
				commit(handled(3))
				require.Equal(t, middleware.MemoryStoreStats{Done: 6, Evicted: 1}, s.Stats())
				require.Equal(t, middleware.Reserved, status(handled(0)), "the first delivery was evicted")
				for i := range 3 {
					require.Equal(t, middleware.Done, status(sent(i)), "send %d", i)
				}
				return
			}
			// Twice the bound in sends fills each of their shards: their side
			// holds exactly MaxKeys, and evicted the rest.
			want := middleware.MemoryStoreStats{Done: 3 + middleware.DefaultMaxKeys, Evicted: middleware.DefaultMaxKeys}
			require.Equal(t, want, st)
		})
	}
}

func TestMemoryStoreConcurrentReserve(t *testing.T) {
	ctx := context.Background()
	s := middleware.NewMemoryStore(middleware.MemoryStoreOptions{})
	var wg sync.WaitGroup
	var mu sync.Mutex
	got := map[middleware.ReserveStatus]int{}
	for range 50 {
		wg.Go(func() {
			r, err := s.Reserve(ctx, key("k"), time.Minute)
			assert.NoError(t, err)
			mu.Lock()
			got[r.Status]++
			mu.Unlock()
		})
	}
	wg.Wait()
	require.Equal(t, map[middleware.ReserveStatus]int{middleware.Reserved: 1, middleware.InProgress: 49}, got)
}

func TestMemoryStoreReusesEntriesWithFreshTokens(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx := context.Background()
		s := middleware.NewMemoryStore(middleware.MemoryStoreOptions{MaxKeys: 1})
		seen := map[uint64]bool{}
		reserve := func(k string) middleware.Reservation {
			r, err := s.Reserve(ctx, key(k), time.Minute)
			require.NoError(t, err)
			require.Equal(t, middleware.Reserved, r.Status, k)
			require.False(t, seen[r.Token], "tokens are not reused")
			seen[r.Token] = true
			return r
		}
		released := reserve("a")
		require.NoError(t, s.Release(ctx, key("a"), released.Token))
		b := reserve("b") // in a's entry
		require.ErrorIs(t, s.Release(ctx, key("a"), released.Token), middleware.ErrNotHeld)
		require.ErrorIs(t, s.Commit(ctx, key("b"), released.Token, time.Hour), middleware.ErrNotHeld)
		require.NoError(t, s.Commit(ctx, key("b"), b.Token, time.Hour))

		c := reserve("c")
		require.NoError(t, s.Commit(ctx, key("c"), c.Token, time.Hour)) // evicts b
		d := reserve("b")
		time.Sleep(time.Minute) // d's lease ends
		e := reserve("e")
		require.ErrorIs(t, s.Commit(ctx, key("b"), d.Token, time.Hour), middleware.ErrNotHeld)
		require.NoError(t, s.Release(ctx, key("e"), e.Token))
		require.Equal(t, middleware.MemoryStoreStats{Done: 1, Evicted: 1}, s.Stats())
		r, err := s.Reserve(ctx, key("c"), time.Minute)
		require.NoError(t, err)
		require.Equal(t, middleware.Done, r.Status)
	})
}

func TestMemoryStoreDoesNotAllocateInSteadyState(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector allocates")
	}
	ctx := context.Background()
	s := middleware.NewMemoryStore(middleware.MemoryStoreOptions{MaxKeys: 16})
	keys := make([]middleware.Key, 2000)
	for i := range keys {
		keys[i] = key(fmt.Sprint(i))
	}
	n := 0
	one := func() {
		k := keys[n%len(keys)]
		n++
		r, err := s.Reserve(ctx, k, time.Minute)
		if err != nil || r.Status != middleware.Reserved {
			panic(fmt.Sprint(r, err))
		}
		if n%2 == 0 {
			err = s.Commit(ctx, k, r.Token, time.Hour)
		} else {
			err = s.Release(ctx, k, r.Token)
		}
		if err != nil {
			panic(err)
		}
	}
	for range 100 {
		one()
	}
	require.Zero(t, testing.AllocsPerRun(1000, one))
}

// TestMemoryStoreShardedDoesNotAllocate checks that a store with the default
// MaxKeys, split into shards, allocates nothing in steady state either, once
// every shard is full and every commit evicts.
func TestMemoryStoreShardedDoesNotAllocate(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector allocates")
	}
	if testing.Short() {
		t.Skip("fills 100,000 keys")
	}
	ctx := context.Background()
	s := middleware.NewMemoryStore(middleware.MemoryStoreOptions{})
	// Each key is reused only after twice MaxKeys commits, once evicted.
	keys := make([]middleware.Key, 2*middleware.DefaultMaxKeys)
	for i := range keys {
		keys[i] = middleware.Key{Scope: "handled/orders", ID: fmt.Sprint("order-", i)}
	}
	n := 0
	one := func() {
		k := keys[n%len(keys)]
		n++
		r, err := s.Reserve(ctx, k, time.Minute)
		if err != nil || r.Status != middleware.Reserved {
			panic(fmt.Sprint(k, r, err))
		}
		if err := s.Commit(ctx, k, r.Token, time.Hour); err != nil {
			panic(err)
		}
	}
	for range len(keys) + 1000 {
		one()
	}
	require.Zero(t, testing.AllocsPerRun(1000, one))
	st := s.Stats()
	require.Positive(t, st.Evicted)
	require.LessOrEqual(t, st.Done, middleware.DefaultMaxKeys)
	require.Greater(t, st.Done, middleware.DefaultMaxKeys*9/10, "the shards are about even")
}

// TestMemoryStoreMixesDurations checks that, with several TTLs and leases in
// use at once, keys expire at their own time and eviction takes the done key
// that expires first, whichever TTL it has.
func TestMemoryStoreMixesDurations(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx := context.Background()
		s := middleware.NewMemoryStore(middleware.MemoryStoreOptions{MaxKeys: 3})
		reserve := func(k string, lease time.Duration) middleware.Reservation {
			t.Helper()
			r, err := s.Reserve(ctx, key(k), lease)
			require.NoError(t, err)
			require.Equal(t, middleware.Reserved, r.Status, k)
			return r
		}
		commit := func(k string, ttl time.Duration) {
			t.Helper()
			r := reserve(k, time.Minute)
			require.NoError(t, s.Commit(ctx, key(k), r.Token, ttl))
		}
		// status reserves k to see whether it is done, and releases it.
		status := func(k string) middleware.ReserveStatus {
			t.Helper()
			r, err := s.Reserve(ctx, key(k), time.Minute)
			require.NoError(t, err)
			if r.Status == middleware.Reserved {
				require.NoError(t, s.Release(ctx, key(k), r.Token))
			}
			return r.Status
		}
		stats := func(reserved, done int, evicted uint64) {
			t.Helper()
			require.Equal(t, middleware.MemoryStoreStats{Reserved: reserved, Done: done, Evicted: evicted}, s.Stats())
		}
		sleepUntil := func(start time.Time, d time.Duration) { time.Sleep(time.Until(start.Add(d))) }
		start := time.Now()

		commit("a", 2*time.Hour) // expires at 2h
		commit("b", time.Hour)   // 1h
		sleepUntil(start, 30*time.Minute)
		commit("c", time.Hour)            // 1h30
		h := reserve("h", 45*time.Minute) // lease ends at 1h15
		commit("d", 2*time.Hour)          // 2h30, evicts b (1h)
		stats(1, 3, 1)
		require.Equal(t, middleware.Reserved, status("b"))
		require.Equal(t, middleware.Done, status("a"))
		require.Equal(t, middleware.Done, status("c"))

		sleepUntil(start, 70*time.Minute)
		commit("e", 10*time.Minute) // 1h20, evicts c (1h30) rather than a (2h)
		stats(1, 3, 2)
		require.Equal(t, middleware.Reserved, status("c"))

		sleepUntil(start, 75*time.Minute) // h's lease ends
		stats(0, 3, 2)
		require.ErrorIs(t, s.Commit(ctx, key("h"), h.Token, time.Hour), middleware.ErrNotHeld)
		sleepUntil(start, 80*time.Minute) // e expires
		stats(0, 2, 2)
		require.Equal(t, middleware.Reserved, status("e"))
		sleepUntil(start, 2*time.Hour) // a expires
		stats(0, 1, 2)
		require.Equal(t, middleware.Reserved, status("a"))
		require.Equal(t, middleware.Done, status("d"))

		sleepUntil(start, 125*time.Minute)
		commit("f", time.Hour)      // 3h05
		commit("g", 10*time.Minute) // 2h15
		commit("i", time.Hour)      // 3h05, evicts g (2h15), the last of its TTL
		require.Equal(t, middleware.Reserved, status("g"))
		commit("j", 10*time.Minute) // 2h15, evicts d (2h30) rather than f (3h05)
		stats(0, 3, 4)
		for k, want := range map[string]middleware.ReserveStatus{
			"d": middleware.Reserved, "f": middleware.Done, "i": middleware.Done, "j": middleware.Done,
		} {
			require.Equal(t, want, status(k), k)
		}
		sleepUntil(start, 135*time.Minute) // j expires
		stats(0, 2, 4)
		sleepUntil(start, 185*time.Minute) // f and i expire
		stats(0, 0, 4)
	})
}
