package benchmarks

import (
	"context"
	"log/slog"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/courierbus/courier"
	"github.com/courierbus/courier/transport/natsjs"
)

// The Transport workloads run Courier's queues over the natsjs transport,
// on an embedded nats-server reached in-process (no network), beside the
// in-memory engine (courier, no middleware) and the raw channel, in the same
// run. Every Send is a synchronous publish that returns once the server has
// stored the message, so these run at thousands of messages a second, not
// millions: run.sh gives them their own step.

// broker is one way of running the embedded server and its streams.
type broker struct {
	sync    natsjs.SyncPolicy
	storage jetstream.StorageType
}

var (
	// fileSync is the transport's default: file storage, every write
	// fsynced before it is acknowledged.
	fileSync = broker{natsjs.SyncAlways, jetstream.FileStorage}
	// fileNoSync acknowledges writes before they reach the disk, and syncs
	// once a minute.
	fileNoSync = broker{natsjs.SyncEvery(time.Minute), jetstream.FileStorage}
	// memoryStore keeps the streams in memory.
	memoryStore = broker{natsjs.SyncAlways, jetstream.MemoryStorage}
)

// transportContenders are the contenders of a Transport workload whose
// queue has the given number of workers.
func transportContenders(workers int) []struct {
	name string
	s    setup
} {
	channel, inMemory := channelWorkers(workers), courierWorkers(workers, noChain)
	if workers == 1 {
		channel, inMemory = channelSetup, courierQueue(noChain)
	}
	return []struct {
		name string
		s    setup
	}{
		{"channel", channel},
		{"courier", inMemory},
		{"natsjs-file-sync", natsQueue(workers, fileSync)},
		{"natsjs-file-nosync", natsQueue(workers, fileNoSync)},
		{"natsjs-memory", natsQueue(workers, memoryStore)},
	}
}

// BenchmarkTransportP2P: one producer, one queue with one worker.
func BenchmarkTransportP2P(b *testing.B) {
	for _, c := range transportContenders(1) {
		b.Run(c.name, func(b *testing.B) { runTransport(b, 1, c.s) })
	}
}

// BenchmarkTransportWorkers4: one producer, one queue with four workers.
func BenchmarkTransportWorkers4(b *testing.B) {
	for _, c := range transportContenders(4) {
		b.Run(c.name, func(b *testing.B) { runTransport(b, 1, c.s) })
	}
}

// BenchmarkTransportProducers4: four producers, one queue with four
// workers, as BenchmarkProducers4.
func BenchmarkTransportProducers4(b *testing.B) {
	for _, c := range transportContenders(4) {
		b.Run(c.name, func(b *testing.B) { runTransport(b, 4, c.s) })
	}
}

// runTransport is runOneProducer (producers 1) or runProducers that also
// reports send-ns/op: the time until the last Send returned, per message.
// ns/op lasts until the last message is handled; send-ns/op is what the
// producers paid, which a consumer that falls behind does not change.
func runTransport(b *testing.B, producers int, s setup) {
	c := newCounter(b.N)
	ps := s(b, 1, c)
	defer ps.stop()
	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	if producers == 1 {
		for i := 0; i < b.N; i++ {
			ps.send(i)
		}
	} else {
		var wg sync.WaitGroup
		for p := range producers {
			wg.Go(func() {
				for i := p; i < b.N; i += producers {
					ps.send(i)
				}
			})
		}
		wg.Wait()
	}
	sent := time.Since(start)
	c.wait(b)
	b.StopTimer()
	reportRate(b, b.N)
	b.ReportMetric(float64(sent.Nanoseconds())/float64(b.N), "send-ns/op")
}

// natsQueue is one Courier queue with the given number of workers over the
// natsjs transport, on a fresh embedded server (and storage directory) per
// run. A broker delivers at least once, so the handler counts each message
// once only: the count reaches b.N only when every message has arrived.
// stop shuts the bus, the connection and the server down, in that order, and
// fails the benchmark when goroutines outlive them.
func natsQueue(workers int, br broker) setup {
	return func(b *testing.B, subs int, c *counter) pubsub {
		if subs != 1 {
			b.Fatal("natsQueue serves one consumer")
		}
		goroutines := runtime.NumGoroutine()
		discard := slog.New(slog.DiscardHandler)
		var (
			e   *natsjs.Embedded
			nc  *nats.Conn
			bus *courier.Bus
		)
		seen := make([]atomic.Bool, b.N)
		var dups, strays atomic.Int64
		quit, watched := make(chan struct{}), make(chan struct{})
		go func() {
			defer close(watched)
			watchStalls(b, c, quit)
		}()
		stop := func() {
			close(quit)
			<-watched
			if bus != nil {
				ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
				defer cancel()
				if err := bus.Shutdown(ctx); err != nil {
					b.Error(err)
				}
			}
			if nc != nil {
				nc.Close()
			}
			if e != nil {
				e.Shutdown()
			}
			if n := dups.Load(); n > 0 {
				b.Logf("%d messages delivered more than once", n)
			}
			if n := strays.Load(); n > 0 {
				b.Errorf("%d messages that were never sent arrived", n)
			}
			checkGoroutines(b, goroutines)
		}
		fail := func(err error) {
			stop()
			b.Fatal(err)
		}

		var err error
		if e, err = natsjs.StartEmbedded(natsjs.EmbeddedOptions{Dir: b.TempDir(), Sync: br.sync}); err != nil {
			fail(err)
		}
		if nc, err = e.Connect(); err != nil {
			fail(err)
		}
		tr, err := natsjs.New(nc, natsjs.Options{Storage: br.storage, Logger: discard})
		if err != nil {
			fail(err)
		}
		bus = courier.New(courier.WithTransport(tr), courier.WithLogger(discard))
		q, err := courier.NewQueue[Payload](bus, "bench")
		if err != nil {
			fail(err)
		}
		if err := q.Consume(func(_ context.Context, m *courier.Message[Payload]) error {
			switch s := m.Body.Seq; {
			case s < 0 || s >= int64(len(seen)):
				strays.Add(1)
			case seen[s].Swap(true):
				dups.Add(1)
			default:
				c.add()
			}
			return nil
		}, courier.Workers(workers)); err != nil {
			fail(err)
		}
		ctx := context.Background()
		return pubsub{
			send: func(i int) {
				if err := q.Send(ctx, Payload{Seq: int64(i)}); err != nil {
					// Count it, so that the benchmark fails instead of
					// waiting for ever.
					b.Error(err)
					if !seen[i].Swap(true) {
						c.add()
					}
				}
			},
			stop: stop,
		}
	}
}

// stallLimit is how long a contender may deliver nothing while messages
// are outstanding before watchStalls reports it.
const stallLimit = time.Second

// watchStalls logs every stretch of stallLimit or more in which c counted
// nothing while messages were outstanding, so that an outlier in the
// figures explains itself. It returns when every message has arrived or
// quit closes.
func watchStalls(b *testing.B, c *counter, quit <-chan struct{}) {
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	last, since := c.got.Load(), time.Now()
	report := func(now time.Time, got int64) {
		if d := now.Sub(since); d >= stallLimit {
			b.Logf("stalled %v with %d of %d messages delivered", d.Round(time.Millisecond), got, c.want.Load())
		}
	}
	for {
		select {
		case <-c.done:
			return
		case <-quit:
			report(time.Now(), c.got.Load())
			return
		case now := <-tick.C:
			if got := c.got.Load(); got != last {
				report(now, last)
				last, since = got, now
			}
		}
	}
}

// checkGoroutines waits up to five seconds for the goroutines to fall back
// to the count before the contender started, and fails the benchmark with
// their stacks otherwise.
func checkGoroutines(b *testing.B, before int) {
	b.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > before {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			buf = buf[:runtime.Stack(buf, true)]
			b.Errorf("%d goroutines outlived the contender (%d before it):\n%s", runtime.NumGoroutine(), before, buf)
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
}
