package middleware_test

import (
	"context"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/courierbus/courier/middleware"
)

func TestMemoryStoreReserveCommitRelease(t *testing.T) {
	ctx := context.Background()
	s := middleware.NewMemoryStore(middleware.MemoryStoreOptions{})

	r, err := s.Reserve(ctx, "k", time.Minute)
	require.NoError(t, err)
	require.Equal(t, middleware.Reserved, r.Status)
	require.NotEmpty(t, r.Token)

	again, err := s.Reserve(ctx, "k", time.Minute)
	require.NoError(t, err)
	require.Equal(t, middleware.Reservation{Status: middleware.InProgress}, again)

	require.ErrorIs(t, s.Commit(ctx, "k", "wrong", time.Hour), middleware.ErrNotHeld)
	require.ErrorIs(t, s.Release(ctx, "k", "wrong"), middleware.ErrNotHeld)
	require.ErrorIs(t, s.Commit(ctx, "other", r.Token, time.Hour), middleware.ErrNotHeld)

	require.NoError(t, s.Release(ctx, "k", r.Token))
	require.ErrorIs(t, s.Release(ctx, "k", r.Token), middleware.ErrNotHeld, "released once")
	r2, err := s.Reserve(ctx, "k", time.Minute)
	require.NoError(t, err)
	require.Equal(t, middleware.Reserved, r2.Status, "a released key is free")
	require.NotEqual(t, r.Token, r2.Token)

	require.NoError(t, s.Commit(ctx, "k", r2.Token, time.Hour))
	require.ErrorIs(t, s.Commit(ctx, "k", r2.Token, time.Hour), middleware.ErrNotHeld, "committed once")
	done, err := s.Reserve(ctx, "k", time.Minute)
	require.NoError(t, err)
	require.Equal(t, middleware.Reservation{Status: middleware.Done}, done)
	require.Equal(t, middleware.MemoryStoreStats{Done: 1}, s.Stats())
	require.Equal(t, "in progress", middleware.InProgress.String())
}

func TestMemoryStoreHonoursContext(t *testing.T) {
	s := middleware.NewMemoryStore(middleware.MemoryStoreOptions{})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := s.Reserve(ctx, "k", time.Minute)
	require.ErrorIs(t, err, context.Canceled)
	require.Equal(t, middleware.MemoryStoreStats{}, s.Stats(), "nothing reserved")
}

func TestMemoryStoreLeaseAndTTLExpire(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx := context.Background()
		s := middleware.NewMemoryStore(middleware.MemoryStoreOptions{})
		lost, err := s.Reserve(ctx, "crashed", time.Minute)
		require.NoError(t, err)
		held, err := s.Reserve(ctx, "done", time.Minute)
		require.NoError(t, err)
		require.NoError(t, s.Commit(ctx, "done", held.Token, time.Hour))
		require.Equal(t, middleware.MemoryStoreStats{Reserved: 1, Done: 1}, s.Stats())

		time.Sleep(time.Minute) // the lease ends
		require.Equal(t, middleware.MemoryStoreStats{Done: 1}, s.Stats())
		require.ErrorIs(t, s.Commit(ctx, "crashed", lost.Token, time.Hour), middleware.ErrNotHeld,
			"a holder whose lease ran out cannot commit")
		r, err := s.Reserve(ctx, "crashed", time.Minute)
		require.NoError(t, err)
		require.Equal(t, middleware.Reserved, r.Status, "the key is free after the lease")
		require.NoError(t, s.Release(ctx, "crashed", r.Token))

		r, err = s.Reserve(ctx, "done", time.Minute)
		require.NoError(t, err)
		require.Equal(t, middleware.Done, r.Status)
		time.Sleep(time.Hour - time.Minute) // the TTL ends
		require.Equal(t, middleware.MemoryStoreStats{}, s.Stats(), "every key forgotten")
		r, err = s.Reserve(ctx, "done", time.Minute)
		require.NoError(t, err)
		require.Equal(t, middleware.Reserved, r.Status)
	})
}

func TestMemoryStoreBoundsDoneKeys(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx := context.Background()
		s := middleware.NewMemoryStore(middleware.MemoryStoreOptions{MaxKeys: 3})
		commit := func(key string, ttl time.Duration) {
			r, err := s.Reserve(ctx, key, time.Minute)
			require.NoError(t, err)
			require.Equal(t, middleware.Reserved, r.Status)
			require.NoError(t, s.Commit(ctx, key, r.Token, ttl))
		}
		commit("a", 3*time.Hour)
		commit("b", time.Hour) // closest to its expiry: evicted first
		commit("c", 2*time.Hour)
		commit("d", 4*time.Hour)
		st := s.Stats()
		require.Equal(t, 3, st.Done)
		require.EqualValues(t, 1, st.Evicted)
		for key, want := range map[string]middleware.ReserveStatus{
			"a": middleware.Done, "b": middleware.Reserved, "c": middleware.Done, "d": middleware.Done,
		} {
			r, err := s.Reserve(ctx, key, time.Minute)
			require.NoError(t, err)
			require.Equal(t, want, r.Status, key)
		}
	})
}

func TestMemoryStoreConcurrentReserve(t *testing.T) {
	ctx := context.Background()
	s := middleware.NewMemoryStore(middleware.MemoryStoreOptions{})
	var wg sync.WaitGroup
	var mu sync.Mutex
	got := map[middleware.ReserveStatus]int{}
	for range 50 {
		wg.Go(func() {
			r, err := s.Reserve(ctx, "k", time.Minute)
			assert.NoError(t, err)
			mu.Lock()
			got[r.Status]++
			mu.Unlock()
		})
	}
	wg.Wait()
	require.Equal(t, map[middleware.ReserveStatus]int{middleware.Reserved: 1, middleware.InProgress: 49}, got)
}
