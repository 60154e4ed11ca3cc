package courier

import (
	"container/heap"
	"sync"
	"time"
)

// scheduler holds every message of a bus that is waiting for a time: delayed
// sends and retries after backoff. One goroutine and one timer serve them all,
// so a waiting message costs a heap slot, not a goroutine or a timer.
type scheduler struct {
	mu      sync.Mutex
	h       schedHeap
	seq     uint64 // breaks ties between equal due times: first scheduled, first due
	stopped bool

	wake chan struct{} // cap 1: the earliest due time changed
	quit chan struct{}
	done chan struct{}
}

func newScheduler() *scheduler {
	s := &scheduler{
		wake: make(chan struct{}, 1),
		quit: make(chan struct{}),
		done: make(chan struct{}),
	}
	go s.run()
	return s
}

// add schedules env for env.state().x.due. It reports false, leaving env alone,
// when the scheduler has stopped. Callers hold env's mailbox lock.
func (s *scheduler) add(env Envelope) bool {
	s.mu.Lock()
	if s.stopped {
		s.mu.Unlock()
		return false
	}
	s.seq++
	env.state().x.seq = s.seq
	heap.Push(&s.h, env)
	first := s.h[0] == env
	s.mu.Unlock()
	if first {
		select {
		case s.wake <- struct{}{}:
		default:
		}
	}
	return true
}

func (s *scheduler) run() {
	defer close(s.done)
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	var due []Envelope
	for {
		s.mu.Lock()
		now := time.Now()
		for len(s.h) > 0 && !s.h[0].state().x.due.After(now) {
			due = append(due, heap.Pop(&s.h).(Envelope))
		}
		var next time.Duration = -1
		if len(s.h) > 0 {
			next = s.h[0].state().x.due.Sub(now)
		}
		s.mu.Unlock()

		for i, env := range due {
			env.state().mb.fromScheduler(env)
			due[i] = nil
		}
		due = due[:0]

		if next >= 0 {
			timer.Reset(next)
		}
		select {
		case <-timer.C:
		case <-s.wake:
			timer.Stop()
		case <-s.quit:
			timer.Stop()
			return
		}
	}
}

// stop ends the scheduler goroutine, after it has handed over any batch it
// had taken, and returns the messages still waiting, which now belong to the
// caller.
func (s *scheduler) stop() []Envelope {
	s.mu.Lock()
	if s.stopped {
		s.mu.Unlock()
		<-s.done
		return nil
	}
	s.stopped = true
	left := make([]Envelope, len(s.h))
	for i := range left {
		left[i] = heap.Pop(&s.h).(Envelope)
	}
	s.mu.Unlock()
	close(s.quit)
	<-s.done
	return left
}

// schedHeap orders envelopes by due time, then by scheduling order.
type schedHeap []Envelope

func (h schedHeap) Len() int { return len(h) }

func (h schedHeap) Less(i, j int) bool {
	a, b := h[i].state().x, h[j].state().x
	if a.due.Equal(b.due) {
		return a.seq < b.seq
	}
	return a.due.Before(b.due)
}

func (h schedHeap) Swap(i, j int) { h[i], h[j] = h[j], h[i] }

func (h *schedHeap) Push(x any) { *h = append(*h, x.(Envelope)) }

func (h *schedHeap) Pop() any {
	old := *h
	n := len(old) - 1
	env := old[n]
	old[n] = nil
	*h = old[:n]
	return env
}
