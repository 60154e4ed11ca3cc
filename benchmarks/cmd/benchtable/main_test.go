package main

import (
	"strings"
	"testing"
)

const sample = `goos: linux
goarch: amd64
cpu: Some CPU
BenchmarkP2P/channel-2   	 1000	 70.0 ns/op	 14000000 msgs/s	 0 B/op	 0 allocs/op
BenchmarkP2P/courier-2   	 1000	 700 ns/op	 1400000 msgs/s	 512 B/op	 1 allocs/op
BenchmarkP2P/channel-2   	 1000	 72.0 ns/op	 13000000 msgs/s	 0 B/op	 0 allocs/op
BenchmarkP2P/courier-2   	 1000	 720 ns/op	 1300000 msgs/s	 512 B/op	 1 allocs/op
BenchmarkP2P/channel-2   	 1000	 90.0 ns/op	 11000000 msgs/s	 0 B/op	 0 allocs/op
BenchmarkP2P/courier-2   	 1000	 9000 ns/op	 100000 msgs/s	 512 B/op	 1 allocs/op
BenchmarkBurst-2         	 1000000	 800 ns/op	 3.37 peak-heap-MiB	 513 B/op	 1 allocs/op
PASS
`

func TestRenderTakesMediansAndRatios(t *testing.T) {
	res, err := parse(strings.NewReader(sample))
	if err != nil {
		t.Fatal(err)
	}
	var out strings.Builder
	if err := render(&out, "Results", "2-core VM", res); err != nil {
		t.Fatal(err)
	}
	got := out.String()
	for _, want := range []string{
		"# Results\n\n2-core VM\n\n- goos: linux\n- goarch: amd64\n- cpu: Some CPU\n",
		"## P2P\n\n| contender | ns/op | msgs/s | B/op | allocs/op | × channel |\n|---|---:|---:|---:|---:|---:|\n",
		"| channel | 72.0 | 13,000,000 | 0.00 | 0.00 | 1.0× |",
		"| courier | 720 | 1,300,000 | 512 | 1.00 | 10.0× |",
		"## Burst\n\n| contender | ns/op | peak-heap-MiB | B/op | allocs/op |\n",
		"| Burst | 800 | 3.37 | 513 | 1.00 |",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("output lacks %q:\n%s", want, got)
		}
	}
}

const transportSample = `BenchmarkTransportP2P/channel-2   	 1000	 100 ns/op	 10000000 msgs/s	 0 B/op	 0 allocs/op
BenchmarkTransportP2P/courier-2   	 1000	 800 ns/op	 1250000 msgs/s	 416 B/op	 1 allocs/op
BenchmarkTransportP2P/natsjs-memory-2   	 1000	 240000 ns/op	 4166 msgs/s	 9000 B/op	 130 allocs/op
BenchmarkP2P/channel-2   	 1000	 70.0 ns/op	 14000000 msgs/s	 0 B/op	 0 allocs/op
BenchmarkTransportProducers4/channel-2   	 1000	 200 ns/op	 5000000 msgs/s	 0 B/op	 0 allocs/op
BenchmarkTransportProducers4/courier-2   	 1000	 1000 ns/op	 1000000 msgs/s	 416 B/op	 1 allocs/op
`

func TestRenderPutsTransportWorkloadsInTheirOwnSection(t *testing.T) {
	res, err := parse(strings.NewReader(transportSample))
	if err != nil {
		t.Fatal(err)
	}
	var out strings.Builder
	if err := render(&out, "Results", "", res); err != nil {
		t.Fatal(err)
	}
	got := out.String()
	for _, want := range []string{
		"## P2P\n\n| contender | ns/op | msgs/s | B/op | allocs/op | × channel |\n",
		"## Over NATS JetStream\n\n",
		"### P2P\n\n| contender | ns/op | msgs/s | B/op | allocs/op | × channel | × courier |\n|---|---:|---:|---:|---:|---:|---:|\n",
		"| courier | 800 | 1,250,000 | 416 | 1.00 | 8.0× | 1.0× |",
		"| natsjs-memory | 240,000 | 4,166 | 9,000 | 130 | 2,400× | 300.0× |",
		"### Producers4\n\n",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("output lacks %q:\n%s", want, got)
		}
	}
	if strings.Index(got, "## P2P") > strings.Index(got, "## Over NATS JetStream") {
		t.Errorf("the in-memory workloads should come first:\n%s", got)
	}
	if strings.Contains(got, "TransportP2P") {
		t.Errorf("a Transport workload keeps its prefix in its title:\n%s", got)
	}
}
