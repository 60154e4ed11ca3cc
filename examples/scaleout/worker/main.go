// Command worker is the order service of the scale-out example. It runs an
// embedded NATS JetStream server with file storage, which the shop connects
// to, and handles the orders queue until it receives SIGINT or SIGTERM.
//
//	go run ./worker [-dir DIR] [-listen 127.0.0.1:4333] [-workers 4]
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"

	"github.com/courierbus/courier/examples/scaleout/internal/worker"
)

func main() {
	var cfg worker.Config
	flag.StringVar(&cfg.Dir, "dir", filepath.Join(os.TempDir(), "courier-scaleout"),
		"JetStream storage directory; queued orders survive a restart on the same one")
	flag.StringVar(&cfg.Listen, "listen", "127.0.0.1:4333", "host:port the shop connects to")
	flag.IntVar(&cfg.Workers, "workers", 4, "orders handled at once")
	flag.Parse()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := worker.Run(ctx, cfg, os.Stdout)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "worker:", err)
		os.Exit(1)
	}
}
