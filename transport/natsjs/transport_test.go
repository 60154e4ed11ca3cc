package natsjs_test

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/courierbus/courier"
	"github.com/courierbus/courier/transport/natsjs"
)

// fixture is one embedded server, a connection and a bus over it.
type fixture struct {
	e   *natsjs.Embedded
	nc  *nats.Conn
	js  jetstream.JetStream
	bus *courier.Bus
}

func newFixture(t *testing.T, opts natsjs.Options) *fixture {
	t.Helper()
	e := start(t, natsjs.EmbeddedOptions{Dir: t.TempDir()})
	t.Cleanup(e.Shutdown)
	nc, err := e.Connect()
	require.NoError(t, err)
	t.Cleanup(nc.Close)
	if opts.Logger == nil {
		opts.Logger = quietLogger()
	}
	tr, err := natsjs.New(nc, opts)
	require.NoError(t, err)
	js, err := jetstream.New(nc)
	require.NoError(t, err)
	bus := courier.New(courier.WithTransport(tr), courier.WithLogger(quietLogger()))
	t.Cleanup(func() { _ = bus.Close() })
	return &fixture{e: e, nc: nc, js: js, bus: bus}
}

func TestNewChecksItsConnection(t *testing.T) {
	_, err := natsjs.New(nil, natsjs.Options{})
	require.Error(t, err)

	e := start(t, natsjs.EmbeddedOptions{Dir: t.TempDir()})
	defer e.Shutdown()
	nc, err := e.Connect()
	require.NoError(t, err)
	nc.Close()
	_, err = natsjs.New(nc, natsjs.Options{})
	require.ErrorIs(t, err, natsjs.ErrUnreachable)

	nc, err = e.Connect()
	require.NoError(t, err)
	defer nc.Close()
	_, err = natsjs.New(nc, natsjs.Options{SubjectPrefix: "a.b"})
	require.Error(t, err, "a prefix must be one subject token")
}

// Semantics JetStream cannot give fail when the queue or topic is declared.
func TestCapabilitiesFailAtDeclaration(t *testing.T) {
	f := newFixture(t, natsjs.Options{})
	_, err := courier.NewQueue[job](f.bus, "drop", courier.WithOverflow(courier.DropNewest))
	assert.ErrorIs(t, err, courier.ErrUnsupported)
	tp, err := courier.NewTopic[job](f.bus, "events")
	require.NoError(t, err)
	err = tp.Subscribe("small", func(context.Context, *courier.Message[job]) error { return nil }, courier.Capacity(3))
	assert.ErrorIs(t, err, courier.ErrUnsupported)
}

// A second send with the same idempotency key within the duplicate window
// is dropped by the broker and reported.
func TestDuplicateSendsAreDropped(t *testing.T) {
	f := newFixture(t, natsjs.Options{})
	q, err := courier.NewQueue[job](f.bus, "orders")
	require.NoError(t, err)
	require.NoError(t, q.Send(ctx(t), job{N: 1}, courier.WithIdempotencyKey("order-1")))
	err = q.Send(ctx(t), job{N: 1}, courier.WithIdempotencyKey("order-1"))
	require.ErrorIs(t, err, courier.ErrDuplicate)
	require.NoError(t, q.Send(ctx(t), job{N: 2}, courier.WithIdempotencyKey("order-2")))
	assert.Equal(t, 2, q.Stats().Depth)
}

// A handler that runs longer than the acknowledgement wait keeps its
// message: the transport reports progress, so it is not delivered again.
func TestLongHandlerKeepsItsMessage(t *testing.T) {
	f := newFixture(t, natsjs.Options{AckWait: 300 * time.Millisecond})
	q, err := courier.NewQueue[job](f.bus, "slow")
	require.NoError(t, err)
	var calls atomic.Int32
	release := make(chan struct{})
	require.NoError(t, q.Consume(func(context.Context, *courier.Message[job]) error {
		if calls.Add(1) == 1 {
			<-release
		}
		return nil
	}, courier.Workers(2)))
	require.NoError(t, q.Send(ctx(t), job{N: 1}))
	// Hold the handler across three acknowledgement waits; a lapse would
	// hand the message to the idle second worker.
	timer := time.NewTimer(time.Second)
	<-timer.C
	close(release)
	require.NoError(t, f.bus.WaitIdle(ctx(t)))
	assert.EqualValues(t, 1, calls.Load())
}

// A queue with a capacity cannot use message schedules; its delayed
// messages are held back on delivery instead, and the attempt count does
// not include the early delivery.
func TestDelayOnABoundedQueue(t *testing.T) {
	f := newFixture(t, natsjs.Options{})
	q, err := courier.NewQueue[job](f.bus, "bounded", courier.Capacity(10))
	require.NoError(t, err)
	got := make(chan *courier.Message[job], 1)
	require.NoError(t, q.Consume(func(_ context.Context, m *courier.Message[job]) error {
		got <- m
		return nil
	}))
	require.NoError(t, q.Send(ctx(t), job{N: 1}, courier.WithDelay(50*time.Millisecond)))
	m := <-got
	assert.False(t, time.Now().Before(m.DeliverAt), "handled before it was due")
	assert.Equal(t, 1, m.Attempt)
}

// A message no decoder can read is dead-lettered as malformed, with the
// reason in the dead-letter stream's headers.
func TestMalformedMessageIsDeadLettered(t *testing.T) {
	f := newFixture(t, natsjs.Options{})
	q, err := courier.NewQueue[job](f.bus, "strict")
	require.NoError(t, err)
	var handled atomic.Int32
	require.NoError(t, q.Consume(func(context.Context, *courier.Message[job]) error {
		handled.Add(1)
		return nil
	}))
	msg := nats.NewMsg("courier.q.strict.m.u")
	msg.Data = []byte("{not json")
	msg.Header.Set(natsjs.HeaderID, "junk-1")
	_, err = f.js.PublishMsg(ctx(t), msg)
	require.NoError(t, err)
	require.NoError(t, f.bus.WaitIdle(ctx(t)))
	assert.Zero(t, handled.Load())
	assert.Equal(t, 1, q.DeadLetters().Count())
	s, err := f.js.Stream(ctx(t), "COURIER_DLQ_Q_strict")
	require.NoError(t, err)
	raw, err := s.GetLastMsgForSubject(ctx(t), "courier.dlq.q.strict")
	require.NoError(t, err)
	assert.Equal(t, string(natsjs.ReasonMalformed), raw.Header.Get(natsjs.HeaderDeadLetterReason))
	assert.NotEmpty(t, raw.Header.Get(natsjs.HeaderDeadLetterError))
	assert.Equal(t, "{not json", string(raw.Data), "the body is kept as it came")
}

// Dead letters carry reason, error and attempts, and come back typed; a
// subscription's replay reaches that subscription alone.
func TestSubscriptionDeadLettersAndReplay(t *testing.T) {
	f := newFixture(t, natsjs.Options{})
	tp, err := courier.NewTopic[job](f.bus, "events", courier.WithRetry(courier.RetryPolicy{MaxAttempts: 2, InitialInterval: time.Millisecond}))
	require.NoError(t, err)
	var good, bad atomic.Int32
	var fixed atomic.Bool
	require.NoError(t, tp.Subscribe("good", func(context.Context, *courier.Message[job]) error {
		good.Add(1)
		return nil
	}))
	require.NoError(t, tp.Subscribe("bad", func(context.Context, *courier.Message[job]) error {
		if !fixed.Load() {
			return errPoison
		}
		bad.Add(1)
		return nil
	}))
	require.NoError(t, tp.Publish(ctx(t), job{N: 7}, courier.WithHeader("tenant", "acme")))
	require.NoError(t, f.bus.WaitIdle(ctx(t)))

	sub, err := tp.Subscription("bad")
	require.NoError(t, err)
	list := sub.DeadLetters().List()
	require.Len(t, list, 1)
	d := list[0]
	assert.Equal(t, job{N: 7}, d.Body)
	assert.Equal(t, courier.ReasonMaxAttempts, d.Reason)
	assert.Equal(t, 2, d.Attempts)
	assert.EqualError(t, d.Err, errPoison.Error())
	assert.Equal(t, "acme", d.Header("tenant"))
	assert.Equal(t, "events", d.Destination)
	assert.Equal(t, "bad", d.Subscription)
	assert.False(t, d.DeadLetteredAt.IsZero())

	fixed.Store(true)
	n, err := sub.DeadLetters().Replay(ctx(t))
	require.NoError(t, err)
	assert.Equal(t, 1, n)
	require.NoError(t, f.bus.WaitIdle(ctx(t)))
	assert.EqualValues(t, 1, bad.Load())
	assert.EqualValues(t, 1, good.Load(), "the replay reached the failing subscription only")
	assert.Zero(t, sub.DeadLetters().Count())

	// Purge removes what is left.
	fixed.Store(false)
	require.NoError(t, tp.Publish(ctx(t), job{N: 8}))
	require.NoError(t, f.bus.WaitIdle(ctx(t)))
	assert.Equal(t, 1, sub.DeadLetters().Purge())
	assert.Zero(t, sub.DeadLetters().Count())
}

// Stats come from the broker: messages wait in the stream while nobody
// consumes, delayed ones count as scheduled.
func TestStatsFromTheBroker(t *testing.T) {
	f := newFixture(t, natsjs.Options{})
	q, err := courier.NewQueue[job](f.bus, "waiting")
	require.NoError(t, err)
	for i := range 3 {
		require.NoError(t, q.Send(ctx(t), job{N: i}))
	}
	require.NoError(t, q.Send(ctx(t), job{N: 9}, courier.WithDelay(time.Hour)))
	s := q.Stats()
	assert.Equal(t, 3, s.Depth)
	assert.Equal(t, 1, s.Scheduled)
	assert.EqualValues(t, 4, s.Sent)
	bs := f.bus.Stats()
	assert.Equal(t, 3, bs.Total.Depth)
}

// Declarations of one name must agree across processes: a second bus that
// declares the queue with another capacity is told, not silently obeyed.
func TestDeclarationsMustAgree(t *testing.T) {
	e := start(t, natsjs.EmbeddedOptions{Dir: t.TempDir()})
	defer e.Shutdown()
	one, close1 := openBus(t, e)
	defer close1()
	two, close2 := openBus(t, e)
	defer close2()
	_, err := courier.NewQueue[job](one, "orders", courier.Capacity(10))
	require.NoError(t, err)
	_, err = courier.NewQueue[job](two, "orders", courier.Capacity(10))
	require.NoError(t, err, "the same declaration opens the queue")
	three, close3 := openBus(t, e)
	defer close3()
	_, err = courier.NewQueue[job](three, "orders", courier.Capacity(20))
	require.ErrorIs(t, err, natsjs.ErrConfigMismatch)
	for _, b := range []*courier.Bus{one, two, three} {
		require.NoError(t, b.Shutdown(ctx(t)))
	}
}
