// Package worker is the order service of the scale-out example: it runs the
// embedded NATS JetStream server that both programs share, consumes the
// orders queue and publishes each accepted order on the order-placed topic.
package worker

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strconv"
	"time"

	"github.com/courierbus/courier"
	"github.com/courierbus/courier/examples/scaleout/internal/console"
	"github.com/courierbus/courier/examples/scaleout/orders"
	"github.com/courierbus/courier/transport/natsjs"
)

// Config configures [Run].
type Config struct {
	// Dir is where the server keeps its JetStream files. Orders still queued
	// when the worker stops are there when it starts again on the same Dir.
	Dir string
	// Listen is the host:port the server accepts the shop on; a port of 0
	// picks a free one (Ready is told which).
	Listen string
	// Workers is how many orders are handled at once. Default 4.
	Workers int
	// Logger receives the bus's and the transport's warnings and errors
	// (dead letters among them). Default slog.Default().
	Logger *slog.Logger
	// Ready, when set, is called with the server's client URL once the
	// worker consumes the queue.
	Ready func(url string)
}

// shutdownTimeout bounds how long the worker, once told to stop, keeps
// handling the orders it has already been given.
const shutdownTimeout = 10 * time.Second

// Run runs the server and the order service until ctx ends, then shuts the
// bus down, closes the connection and stops the server. It prints what it
// handles to out.
func Run(ctx context.Context, cfg Config, out io.Writer) error {
	host, port, err := splitListen(cfg.Listen)
	if err != nil {
		return err
	}
	if cfg.Workers <= 0 {
		cfg.Workers = 4
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if err := checkFree(cfg.Listen); err != nil {
		return err
	}
	con := console.New(out)

	e, err := natsjs.StartEmbedded(natsjs.EmbeddedOptions{Dir: cfg.Dir, Listen: true, ListenHost: host, ListenPort: port})
	if err != nil {
		return err
	}
	defer e.Shutdown()
	nc, err := e.Connect()
	if err != nil {
		return err
	}
	defer nc.Close()
	tr, err := natsjs.New(nc, natsjs.Options{Logger: cfg.Logger})
	if err != nil {
		return err
	}
	bus := courier.New(
		courier.WithTransport(tr),
		courier.WithLogger(cfg.Logger),
		courier.WithDeadLetterHook(func(d courier.DeadLetterInfo) {
			con.Printf("[dead-letter] %s", d.Description())
		}),
	)
	// After a failure below, Close stops the bus at once; after Shutdown it
	// only returns Shutdown's result.
	defer bus.Close()

	q, tp, err := orders.Declare(bus, courier.WithRetry(retryPolicy))
	if err != nil {
		return err
	}
	svc := &service{out: con, placed: tp}
	for _, sub := range subscribers {
		if err := tp.Subscribe(sub.name, svc.subscriber(sub.name, sub.does)); err != nil {
			return err
		}
	}
	if err := q.Consume(svc.handleOrder, courier.Workers(cfg.Workers)); err != nil {
		return err
	}
	url := e.ClientURL()
	con.Printf("worker: listening on %s, storing in %s (%v); %d workers on queue %q", url, cfg.Dir, e.Sync(), cfg.Workers, q.Name())
	if cfg.Ready != nil {
		cfg.Ready(url)
	}

	<-ctx.Done()
	con.Printf("worker: stopping; finishing the orders in hand (up to %v)", shutdownTimeout)
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), shutdownTimeout)
	defer cancel()
	if err := bus.Shutdown(sctx); err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	con.Printf("worker: stopped; what was not handled stays queued in %s", cfg.Dir)
	return con.Err()
}

// splitListen splits a host:port address.
func splitListen(addr string) (string, int, error) {
	host, p, err := net.SplitHostPort(addr)
	if err != nil {
		return "", 0, fmt.Errorf("listen address %q: %w", addr, err)
	}
	port, err := strconv.Atoi(p)
	if err != nil || port < 0 || port > 65535 {
		return "", 0, errors.New("listen address " + strconv.Quote(addr) + ": bad port")
	}
	return host, port, nil
}

// checkFree fails at once when addr is already taken, by another worker
// most likely: the embedded server would only say, after its ready timeout,
// that it is not ready.
func checkFree(addr string) error {
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("cannot listen on %s (is another worker running?): %w", addr, err)
	}
	return l.Close()
}
