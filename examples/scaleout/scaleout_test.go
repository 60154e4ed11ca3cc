package scaleout_test

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"regexp"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/courierbus/courier/examples/scaleout/internal/shop"
	"github.com/courierbus/courier/examples/scaleout/internal/worker"
	"github.com/courierbus/courier/transport/natsjs"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// The worker and the shop, in one process but connected only through the
// worker's server over TCP: every good order is confirmed, the malformed one
// is dead-lettered, and the worker stops cleanly when cancelled.
func TestWorkerAndShop(t *testing.T) {
	logger := slog.New(slog.NewTextHandler(t.Output(), nil))
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()

	ready := make(chan string, 1)
	done := make(chan error, 1)
	var wout strings.Builder // written by the worker; read once it has returned
	go func() {
		done <- worker.Run(ctx, worker.Config{
			Dir:    t.TempDir(),
			Listen: "127.0.0.1:0",
			Logger: logger,
			Ready:  func(url string) { ready <- url },
		}, &wout)
	}()
	var url string
	select {
	case url = <-ready:
	case err := <-done:
		t.Fatalf("worker returned before it was ready: %v\n%s", err, wout.String())
	}

	var sout strings.Builder
	err := shop.Run(ctx, shop.Config{URL: url, N: 5, Timeout: 30 * time.Second, Logger: logger}, &sout)
	t.Log("shop:\n" + sout.String())
	if err != nil {
		t.Errorf("shop: %v", err)
	}

	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("worker: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("worker did not return after being cancelled")
	}
	t.Log("worker:\n" + wout.String())

	shopOut, workerOut := sout.String(), wout.String()
	for _, re := range []string{
		`(?m)^  confirmed O-\w+-1 `, `(?m)^  confirmed O-\w+-2 `, `(?m)^  confirmed O-\w+-4 `, `(?m)^  confirmed O-\w+-5 `,
		`(?m)^  O-\w+-3 reason=permanent attempts=1 err="order O-\w+-3: quantity 0 is not positive" body=.*\(this run\)$`,
	} {
		if !regexp.MustCompile(re).MatchString(shopOut) {
			t.Errorf("shop output lacks %s", re)
		}
	}
	for _, re := range []string{
		`(?m)^\[orders\] +O-\w+-3 attempt 1: rejected, quantity 0$`,
		`(?m)^\[orders\] +O-\w+-2 attempt 1: inventory service timed out, will retry$`,
		`(?m)^\[orders\] +O-\w+-2 attempt 2: accepted `,
		`(?m)^\[dead-letter\] message .* on orders dead-lettered \(permanent\)`,
		`(?m)^\[billing\] +O-\w+-5 invoiced `,
		`(?m)^\[shipping\] +O-\w+-5 packed `,
		`(?m)^worker: stopped`,
	} {
		if !regexp.MustCompile(re).MatchString(workerOut) {
			t.Errorf("worker output lacks %s", re)
		}
	}
	if regexp.MustCompile(`(?m)^  confirmed O-\w+-3 `).MatchString(shopOut) {
		t.Error("the malformed order was confirmed")
	}
}

// Without a worker, the shop fails at once with natsjs.ErrUnreachable.
func TestShopWithoutWorker(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close() // nothing listens there now

	var out strings.Builder
	err = shop.Run(t.Context(), shop.Config{URL: "nats://" + addr, N: 5, Timeout: time.Second}, &out)
	if !errors.Is(err, natsjs.ErrUnreachable) {
		t.Fatalf("shop.Run = %v, want an error wrapping natsjs.ErrUnreachable", err)
	}
}
