package benchmarks

import (
	"context"
	"runtime"
	"slices"
	"testing"
	"time"

	"github.com/courierbus/courier"
)

// latencyInterval paces the latency workload at a moderate 10,000 messages
// a second, so queues stay short and what is measured is the hand-over.
const latencyInterval = 100 * time.Microsecond

// BenchmarkLatency reports the median and 99th percentile of the time from
// send to handler, at a fixed rate, for a raw channel and a Courier queue.
// ns/op is the pacing; read p50-ns and p99-ns.
func BenchmarkLatency(b *testing.B) {
	b.Run("channel", func(b *testing.B) {
		runLatency(b, func(lat []int64, c *counter) (func(Payload), func()) {
			ch := make(chan Payload, capacity)
			exited := make(chan struct{})
			go func() {
				for p := range ch {
					lat[p.B] = time.Now().UnixNano() - p.Seq
					c.add()
				}
				close(exited)
			}()
			return func(p Payload) { ch <- p }, func() { close(ch); <-exited }
		})
	})
	b.Run("courier", func(b *testing.B) {
		runLatency(b, func(lat []int64, c *counter) (func(Payload), func()) {
			bus := newBus(b, nil)
			q, err := courier.NewQueue[Payload](bus, "bench", courier.Capacity(capacity))
			if err != nil {
				b.Fatal(err)
			}
			if err := q.Consume(func(_ context.Context, m *courier.Message[Payload]) error {
				lat[m.Body.B] = time.Now().UnixNano() - m.Body.Seq
				c.add()
				return nil
			}); err != nil {
				b.Fatal(err)
			}
			ctx := context.Background()
			return func(p Payload) {
				if err := q.Send(ctx, p); err != nil {
					b.Error(err)
				}
			}, func() { closeBus(b, bus) }
		})
	})
}

// runLatency sends b.N messages at the latency rate, each carrying its send
// time (Seq) and index (B), and reports percentiles of the latencies the
// consumer recorded.
func runLatency(b *testing.B, start func(lat []int64, c *counter) (send func(Payload), stop func())) {
	lat := make([]int64, b.N)
	c := newCounter(b.N)
	send, stop := start(lat, c)
	defer stop()
	b.ResetTimer()
	begin := time.Now()
	for i := 0; i < b.N; i++ {
		pace(begin.Add(time.Duration(i) * latencyInterval))
		send(Payload{Seq: time.Now().UnixNano(), B: int64(i)})
	}
	c.wait(b)
	b.StopTimer()
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)/2]), "p50-ns")
	b.ReportMetric(float64(lat[len(lat)*99/100]), "p99-ns")
}

// pace returns at due. It cannot sleep until then: on these machines
// time.Sleep wakes about a millisecond late however short the sleep, so a
// pace of sleeps sends in bursts of ten and the percentiles measure the
// queueing of each burst, not the hand-over. Within sleepSlack of due it
// waits yielding the processor, as a producer that blocks between messages
// would: the consumer can run, on this processor or another.
func pace(due time.Time) {
	if d := time.Until(due); d > sleepSlack {
		time.Sleep(d - sleepSlack)
	}
	for time.Now().Before(due) {
		runtime.Gosched()
	}
}

// sleepSlack is how late time.Sleep may wake.
const sleepSlack = 2 * time.Millisecond
