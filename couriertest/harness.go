package couriertest

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"go.uber.org/goleak"

	"github.com/courierbus/courier"
)

// Default settle timeouts. Inside a synctest bubble the timeout runs in
// virtual time, so it is long enough for backoffs of hours.
const (
	DefaultSettleTimeout       = 10 * time.Second
	DefaultBubbleSettleTimeout = 7 * 24 * time.Hour
)

// Harness is a bus under test and the record of everything that happened on
// it. Create it with [New]. Its methods are safe for concurrent use, except
// those that take a testing.TB, which must be called from the test's
// goroutine.
type Harness struct {
	// Bus is the bus under test: declare queues and topics on it as usual.
	Bus *courier.Bus

	t        testing.TB
	cfg      config
	start    time.Time
	inBubble bool

	mu       sync.Mutex
	events   []*Event
	expected []func(courier.DeadLetterInfo) bool
	seen     map[*Event]bool // dead letters an assertion matched
}

type config struct {
	allowDead     bool
	leakCheck     bool
	settleTimeout time.Duration
	busOpts       []courier.BusOption
	logger        *slog.Logger
	newBus        func(...courier.BusOption) *courier.Bus
}

// Option configures [New].
type Option func(*config)

// AllowDeadLetters stops the harness from failing the test for dead letters
// it did not expect. By default every dead letter must be matched by
// [Harness.ExpectDeadLetters] or one of the DeadLettered assertions.
func AllowDeadLetters() Option { return func(c *config) { c.allowDead = true } }

// NoLeakCheck turns off the check, outside a synctest bubble, that no
// goroutine started during the test outlives it. Use it in tests that run
// in parallel with others (t.Parallel), whose goroutines the check would see.
// Inside a bubble, synctest itself checks.
func NoLeakCheck() Option { return func(c *config) { c.leakCheck = false } }

// SettleTimeout sets how long [Harness.Settle], the assertions, and the
// shutdown at the end of the test wait for the bus to go idle. Default
// [DefaultSettleTimeout], or [DefaultBubbleSettleTimeout] of virtual time in a
// synctest bubble.
func SettleTimeout(d time.Duration) Option { return func(c *config) { c.settleTimeout = d } }

// WithBusOptions passes options to [courier.New]. The harness adds its own
// dead-letter and retry hooks; hooks given here run too.
func WithBusOptions(opts ...courier.BusOption) Option {
	return func(c *config) { c.busOpts = append(c.busOpts, opts...) }
}

// WithNewBus makes the harness create its bus with newBus instead of
// [courier.New], for a bus over another transport. newBus must pass the
// options it is given on to the bus.
func WithNewBus(newBus func(opts ...courier.BusOption) *courier.Bus) Option {
	return func(c *config) { c.newBus = newBus }
}

// WithLogger sets the bus's logger. By default the bus logs at Warn and
// above to the test's log (t.Log), so its lines appear with a failing test.
func WithLogger(l *slog.Logger) Option { return func(c *config) { c.logger = l } }

// New returns a harness around a new bus for the test t. When the test ends
// the bus is shut down (waiting up to the settle timeout for accepted
// messages), and the test fails if
//   - a dead letter was not expected (unless [AllowDeadLetters]): the
//     failure gives each one's reason and error, and the recorded flow;
//   - a handler never returned after its context was cancelled;
//   - outside a synctest bubble, a goroutine started during the test is still
//     running (unless [NoLeakCheck]).
//
// Call New inside the synctest bubble when the test uses one. To find out
// whether it runs in one, New calls synctest.Wait there, which waits until
// every other goroutine of the bubble is blocked: call it before starting
// goroutines of your own.
func New(t testing.TB, opts ...Option) *Harness {
	t.Helper()
	cfg := config{leakCheck: true}
	for _, o := range opts {
		if o != nil {
			o(&cfg)
		}
	}
	h := &Harness{t: t, cfg: cfg, inBubble: inBubble(), seen: make(map[*Event]bool)}
	if h.cfg.settleTimeout <= 0 {
		h.cfg.settleTimeout = DefaultSettleTimeout
		if h.inBubble {
			h.cfg.settleTimeout = DefaultBubbleSettleTimeout
		}
	}
	var leakOpt goleak.Option
	if cfg.leakCheck && !h.inBubble {
		leakOpt = goleak.IgnoreCurrent()
	}
	logger := cfg.logger
	if logger == nil {
		logger = slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn}))
	}
	busOpts := append([]courier.BusOption{
		courier.WithLogger(logger),
		courier.WithDeadLetterHook(h.recordDeadLetter),
		courier.WithRetryHook(h.recordRetry),
	}, cfg.busOpts...)
	h.start = time.Now()
	if cfg.newBus == nil {
		cfg.newBus = courier.New
	}
	h.Bus = cfg.newBus(busOpts...)
	h.Bus.Use(h.recorder())
	t.Cleanup(func() { h.finish(leakOpt) })
	return h
}

// inBubble reports whether the caller runs in a synctest bubble:
// synctest.Wait panics outside one.
func inBubble() (in bool) {
	defer func() {
		if recover() != nil {
			in = false
		}
	}()
	synctest.Wait()
	return true
}

// finish shuts the bus down and runs the end-of-test checks.
func (h *Harness) finish(leakOpt goleak.Option) {
	t := h.t
	ctx, cancel := context.WithTimeout(context.Background(), h.cfg.settleTimeout)
	err := h.Bus.Shutdown(ctx)
	cancel()
	var se *courier.ShutdownError
	if errors.As(err, &se) && se.Abandoned > 0 {
		t.Errorf("couriertest: %d handler(s) never returned after their context was cancelled; their goroutines are left behind", se.Abandoned)
	}
	if !h.cfg.allowDead {
		if unexpected := h.unexpectedDeadLetters(); len(unexpected) > 0 {
			var b strings.Builder
			fmt.Fprintf(&b, "couriertest: %d unexpected dead letter(s):\n", len(unexpected))
			for _, e := range unexpected {
				fmt.Fprintf(&b, "  %s\n", e.describe())
			}
			b.WriteString("(expect them with ExpectDeadLetters or RequireDeadLettered, or use AllowDeadLetters)\n\n")
			b.WriteString(h.Flow())
			t.Error(b.String())
		}
	}
	if leakOpt != nil {
		if err := goleak.Find(leakOpt); err != nil {
			t.Errorf("couriertest: goroutines left behind: %v", err)
		}
	}
}

// Settle waits until the bus is idle: nothing ready, in flight or scheduled
// in any queue or subscription that has a consumer (see
// [courier.Bus.WaitIdle]). Inside a synctest bubble, scheduled messages pass
// in virtual time. After the settle timeout it fails the test, saying what
// is pending and printing the recorded flow. Call it from the test's
// goroutine.
func (h *Harness) Settle() {
	h.t.Helper()
	if err := h.SettleContext(context.Background()); err != nil {
		h.t.Fatalf("couriertest: Settle: %v\n\n%s", err, h.Flow())
	}
}

// SettleContext is Settle that returns an error instead of failing the
// test; it gives up when ctx ends or the settle timeout passes.
func (h *Harness) SettleContext(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, h.cfg.settleTimeout)
	defer cancel()
	return h.Bus.WaitIdle(ctx)
}

// ExpectDeadLetters declares that dead letters for which match returns true
// are part of the test, past and future ones alike, so they do not fail it.
func (h *Harness) ExpectDeadLetters(match func(courier.DeadLetterInfo) bool) {
	if match == nil {
		match = func(courier.DeadLetterInfo) bool { return true }
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	h.expected = append(h.expected, match)
}

func (h *Harness) unexpectedDeadLetters() []*Event {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []*Event
outer:
	for _, e := range h.events {
		if e.Kind != KindDeadLettered || h.seen[e] {
			continue
		}
		for _, match := range h.expected {
			if match(e.deadLetter) {
				continue outer
			}
		}
		out = append(out, e)
	}
	return out
}

// testWriter sends the bus's log lines to the test's log.
type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}
