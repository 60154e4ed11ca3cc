#!/usr/bin/env bash
# Runs every benchmark of this module the way RESULTS.md reports them, and
# writes RESULTS.md. Takes about fifteen minutes on a 2-core machine; close
# other work first: the numbers are only as quiet as the machine.
#
#   ./run.sh            # 6 runs of each, medians
#   COUNT=3 ./run.sh    # quicker
#   TRANSPORT_COUNT=6 ./run.sh  # more runs of the NATS JetStream workloads (default 3)
set -euo pipefail
cd "$(dirname "$0")"
count=${COUNT:-6}
transport_count=${TRANSPORT_COUNT:-3}
raw=$(mktemp)
trap 'rm -f "$raw"' EXIT

echo "throughput workloads (count=$count)..." >&2
go test -run '^$' -bench '^Benchmark(P2P|Fanout4|Producers4|Keyed64)$' -benchmem -count "$count" . | tee -a "$raw" >&2
echo "latency (count=$count)..." >&2
go test -run '^$' -bench 'Latency' -benchtime=20000x -count "$count" . | tee -a "$raw" >&2
# Courier over NATS JetStream runs at thousands of messages a second, not
# millions: its own step, a second a run (b.N scales to it), three runs;
# about five minutes.
echo "over NATS JetStream (count=$transport_count)..." >&2
go test -run '^$' -bench '^BenchmarkTransport' -benchtime=1s -benchmem -count "$transport_count" . | tee -a "$raw" >&2
echo "memory..." >&2
go test -run '^$' -bench 'Burst' -benchtime=1000000x -benchmem -count 3 . | tee -a "$raw" >&2
go test -run '^$' -bench 'Scheduled100k' -benchtime=1x -count 3 . | tee -a "$raw" >&2

machine="$(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(go version | cut -d' ' -f3-), $(date -u +%Y-%m-%d)"
go run ./cmd/benchtable \
	-title "Courier benchmarks" \
	-note "Measured with \`make bench-all\` on $machine. One producer unless the workload says otherwise; a 64-byte body; every workload checks that every message arrived." \
	< "$raw" > RESULTS.md
echo "wrote $(pwd)/RESULTS.md" >&2
