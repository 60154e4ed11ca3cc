package conformance

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/courierbus/courier"
	"github.com/courierbus/courier/couriertest"
)

// Item is the message type of the suite.
type Item struct {
	N    int
	Text string
}

// fast is a retry policy with short, exact delays.
func fast(attempts int) courier.Option {
	return courier.WithRetry(courier.RetryPolicy{
		MaxAttempts: attempts, InitialInterval: 5 * time.Millisecond, MaxInterval: 20 * time.Millisecond, Jitter: -1,
	})
}

func queue(t *testing.T, h *couriertest.Harness, name string, opts ...courier.Option) *courier.Queue[Item] {
	t.Helper()
	q, err := courier.NewQueue[Item](h.Bus, name, opts...)
	require.NoError(t, err)
	return q
}

func topic(t *testing.T, h *couriertest.Harness, name string, opts ...courier.Option) *courier.Topic[Item] {
	t.Helper()
	tp, err := courier.NewTopic[Item](h.Bus, name, opts...)
	require.NoError(t, err)
	return tp
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	t.Cleanup(cancel)
	return c
}

// tally counts handled messages by a key, safely from many workers.
type tally[K comparable] struct {
	mu sync.Mutex
	n  map[K]int
}

func (c *tally[K]) add(k K) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.n == nil {
		c.n = make(map[K]int)
	}
	c.n[k]++
}

func (c *tally[K]) snapshot() map[K]int {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make(map[K]int, len(c.n))
	for k, v := range c.n {
		out[k] = v
	}
	return out
}
