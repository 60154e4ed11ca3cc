// Command shop is the storefront of the scale-out example. It connects to
// the worker's NATS server, sends orders (one of them malformed), waits for
// their confirmations and prints the dead letters of the orders queue. It
// exits 0 when every well-formed order was confirmed.
//
//	go run ./shop [-url nats://127.0.0.1:4333] [-n 5] [-timeout 30s]
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/courierbus/courier/examples/scaleout/internal/shop"
	"github.com/courierbus/courier/transport/natsjs"
)

func main() {
	var cfg shop.Config
	flag.StringVar(&cfg.URL, "url", "nats://127.0.0.1:4333", "the worker's NATS server")
	flag.IntVar(&cfg.N, "n", 5, "orders to send, one of them malformed")
	flag.DurationVar(&cfg.Timeout, "timeout", 30*time.Second, "how long to wait for the confirmations")
	flag.Parse()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := shop.Run(ctx, cfg, os.Stdout)
	stop()
	if errors.Is(err, natsjs.ErrUnreachable) {
		fmt.Fprintf(os.Stderr, "shop: %v\nshop: start the worker first: go run ./worker\n", err)
		os.Exit(1)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "shop:", err)
		os.Exit(1)
	}
}
