package courier

// ring is a growable FIFO over a circular slice whose length is a power of
// two (indexes wrap with a mask, not a division). The zero value is empty and
// ready to use. It is not safe for concurrent use.
type ring[T any] struct {
	buf  []T
	head int
	n    int
}

func (r *ring[T]) len() int { return r.n }

func (r *ring[T]) push(v T) {
	if r.n == len(r.buf) {
		r.grow()
	}
	r.buf[(r.head+r.n)&(len(r.buf)-1)] = v
	r.n++
}

func (r *ring[T]) pop() T {
	var zero T
	v := r.buf[r.head]
	r.buf[r.head] = zero
	r.head = (r.head + 1) & (len(r.buf) - 1)
	r.n--
	return v
}

// at returns the i-th element from the front.
func (r *ring[T]) at(i int) T { return r.buf[(r.head+i)&(len(r.buf)-1)] }

func (r *ring[T]) grow() {
	buf := make([]T, max(8, 2*len(r.buf)))
	for i := range r.n {
		buf[i] = r.at(i)
	}
	r.buf, r.head = buf, 0
}

// removeIf removes the elements for which match is true (all when match is
// nil) and returns them in order; the rest keep their order.
func (r *ring[T]) removeIf(match func(T) bool) []T {
	var taken []T
	var kept ring[T]
	for r.n > 0 {
		v := r.pop()
		if match == nil || match(v) {
			taken = append(taken, v)
		} else {
			kept.push(v)
		}
	}
	*r = kept
	return taken
}
