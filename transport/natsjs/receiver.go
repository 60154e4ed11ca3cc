package natsjs

import (
	"context"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/courierbus/courier"
)

// receiver pulls from every consumer of an inbox and hands the messages to
// the bus's workers through one unbuffered channel. Each consumer has a
// goroutine that fetches a batch at a time, waiting at most a second: a pull
// request the server loses under load (nats-server#4736) costs a second,
// not the 30 s of a long-lived pull, and a batch has a buffer of its own, so
// nothing is dropped when the workers are slow.
type receiver struct {
	in     *inbox
	decode courier.Decoder
	out    chan *delivery
	stop   chan struct{}
	wg     sync.WaitGroup
	once   sync.Once

	mu   sync.Mutex
	open map[*delivery]struct{} // handed to a worker, not yet settled
}

// fetchWait bounds how long one fetch waits for messages; Close waits for
// the fetches in progress, so it is also what stopping a receiver can take.
const fetchWait = time.Second

func (in *inbox) newReceiver(decode courier.Decoder, prefetch int) (*receiver, error) {
	r := &receiver{
		in:     in,
		decode: decode,
		out:    make(chan *delivery),
		stop:   make(chan struct{}),
		open:   make(map[*delivery]struct{}),
	}
	for i, c := range in.consumers {
		// Batches, so a busy inbox is not one round trip per message;
		// what is fetched and not taken is naked at Close.
		n := max(2*prefetch, 16)
		if i > 0 {
			n = 1 // a key partition has one message out at a time anyway
		}
		r.wg.Add(1)
		go r.pump(c, n)
	}
	r.wg.Add(1)
	go r.keepAlive()
	return r, nil
}

func (r *receiver) stopped() bool {
	select {
	case <-r.stop:
		return true
	default:
		return false
	}
}

func (r *receiver) pump(c jetstream.Consumer, n int) {
	defer r.wg.Done()
	for !r.stopped() {
		// FetchMaxWait, not a context: the server ends the request itself
		// when the wait is over, so a message it sends is always read. A
		// fetch cut short on the client drops what is in flight to it, and
		// the message then waits out AckWait.
		batch, err := c.Fetch(n, jetstream.FetchMaxWait(fetchWait))
		if err != nil {
			// A lost connection: the client reconnects on its own; do
			// not spin while it does.
			t := time.NewTimer(50 * time.Millisecond)
			select {
			case <-r.stop:
				t.Stop()
			case <-t.C:
			}
			continue
		}
		for m := range batch.Messages() {
			d := r.delivery(m)
			if d == nil {
				continue
			}
			if r.stopped() {
				_ = m.Nak()
				continue
			}
			select {
			case r.out <- d:
			case <-r.stop:
				_ = m.Nak()
			}
		}
	}
}

// delivery decodes m, or returns nil when it was dealt with here: held
// back because it is early, or dead-lettered as malformed.
func (r *receiver) delivery(m jetstream.Msg) *delivery {
	in := r.in
	codec := in.d.t.opts.Codec
	meta, err := m.Metadata()
	if err != nil {
		in.malformed(m, err)
		return nil
	}
	var md courier.Metadata
	if err := DecodeHeaders(m.Headers(), &md, codec); err != nil {
		in.malformed(m, err)
		return nil
	}
	md.Destination, md.Subscription = in.d.spec.Name, in.sub
	md.Attempt = int(meta.NumDelivered)
	if !md.DeliverAt.IsZero() {
		if wait := time.Until(md.DeliverAt); wait > 0 {
			// Early: a schedule fired ahead of time, or the stream is
			// bounded and holds delays here.
			_ = m.NakWithDelay(wait)
			return nil
		}
		if meta.Timestamp.Before(md.DeliverAt) && md.Attempt > 1 {
			md.Attempt-- // its first delivery was the early one
		}
	}
	env, err := r.decode(md, func(into any) error { return codec.Unmarshal(m.Data(), into) })
	if err != nil {
		in.malformed(m, err)
		return nil
	}
	return &delivery{r: r, m: m, env: env}
}

// keepAlive reports progress on every delivery a worker holds, so that a
// handler running longer than AckWait keeps its message.
func (r *receiver) keepAlive() {
	defer r.wg.Done()
	t := time.NewTicker(r.in.d.t.opts.AckWait / 3)
	defer t.Stop()
	for {
		select {
		case <-r.stop:
			return
		case <-t.C:
		}
		r.mu.Lock()
		held := make([]*delivery, 0, len(r.open))
		for d := range r.open {
			held = append(held, d)
		}
		r.mu.Unlock()
		for _, d := range held {
			if err := d.m.InProgress(); err != nil {
				r.in.d.t.opts.Logger.Warn("natsjs: progress report failed", "inbox", r.in.where(), "error", err)
			}
		}
	}
}

// Next implements courier.Receiver.
func (r *receiver) Next(ctx context.Context) (courier.Delivery, error) {
	select {
	case d := <-r.out:
		r.mu.Lock()
		r.open[d] = struct{}{}
		r.mu.Unlock()
		return d, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-r.stop:
		return nil, courier.ErrClosed
	}
}

// Close implements courier.Receiver: it stops fetching, and naks what was
// fetched but not taken, so that another receiver gets it at once.
func (r *receiver) Close() error {
	r.once.Do(func() {
		close(r.stop)
		r.wg.Wait()
	})
	return nil
}

// delivery implements courier.Delivery.
type delivery struct {
	r   *receiver
	m   jetstream.Msg
	env courier.Envelope
}

func (d *delivery) Message() courier.Envelope { return d.env }

func (d *delivery) settled() {
	d.r.mu.Lock()
	delete(d.r.open, d)
	d.r.mu.Unlock()
}

// Ack waits for the broker to confirm the acknowledgement, unless
// Options.AsyncAcks: an acknowledgement still in the client's buffer or
// the server's queue when either crashes is lost, and the handled message
// is delivered again.
func (d *delivery) Ack(ctx context.Context) error {
	d.settled()
	if d.r.in.d.t.opts.AsyncAcks {
		return d.m.Ack()
	}
	return d.m.DoubleAck(ctx)
}

func (d *delivery) Nak(_ context.Context, delay time.Duration) error {
	d.settled()
	if delay <= 0 {
		return d.m.Nak()
	}
	return d.m.NakWithDelay(delay)
}
