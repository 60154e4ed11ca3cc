// Command benchtable turns the output of go test -bench (several -count runs
// of the benchmarks in this module) into the Markdown tables of RESULTS.md:
// the median of every metric per benchmark, and each contender's ratio to
// the raw-channel baseline of its workload. The Transport workloads (Courier
// over a broker) come last, in a section of their own, with a second ratio:
// to the in-memory engine (the `courier` contender) of the same run.
//
//	go test -run '^$' -bench . -benchmem -count 6 . | go run ./cmd/benchtable -title "…" > RESULTS.md
package main

import (
	"bufio"
	"flag"
	"fmt"
	"io"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
)

func main() {
	title := flag.String("title", "Benchmark results", "heading of the document")
	note := flag.String("note", "", "a line to print under the heading (the machine, the command)")
	flag.Parse()
	res, err := parse(os.Stdin)
	if err != nil {
		fmt.Fprintln(os.Stderr, "benchtable:", err)
		os.Exit(1)
	}
	if err := render(os.Stdout, *title, *note, res); err != nil {
		fmt.Fprintln(os.Stderr, "benchtable:", err)
		os.Exit(1)
	}
}

// results holds every sample of every metric of every benchmark, in the
// order the benchmarks first appeared.
type results struct {
	header []string                        // goos, goarch, cpu lines
	order  []string                        // benchmark names
	values map[string]map[string][]float64 // name → unit → samples
	units  map[string][]string             // name → units in order of appearance
}

var benchLine = regexp.MustCompile(`^(Benchmark\S+?)(?:-\d+)?\s+\d+\s+(.*)$`)

func parse(r io.Reader) (*results, error) {
	res := &results{values: map[string]map[string][]float64{}, units: map[string][]string{}}
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		line := sc.Text()
		for _, h := range []string{"goos:", "goarch:", "cpu:"} {
			if strings.HasPrefix(line, h) && !slices.Contains(res.header, line) {
				res.header = append(res.header, line)
			}
		}
		m := benchLine.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		name, fields := m[1], strings.Fields(m[2])
		if res.values[name] == nil {
			res.values[name] = map[string][]float64{}
			res.order = append(res.order, name)
		}
		for i := 0; i+1 < len(fields); i += 2 {
			v, err := strconv.ParseFloat(fields[i], 64)
			if err != nil {
				return nil, fmt.Errorf("%s: %q is not a number", name, fields[i])
			}
			unit := fields[i+1]
			if _, seen := res.values[name][unit]; !seen {
				res.units[name] = append(res.units[name], unit)
			}
			res.values[name][unit] = append(res.values[name][unit], v)
		}
	}
	return res, sc.Err()
}

func median(xs []float64) float64 {
	s := slices.Clone(xs)
	slices.Sort(s)
	n := len(s)
	if n == 0 {
		return 0
	}
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}

// transportPrefix starts the names of the workloads that run Courier over a
// broker; render gives them a section of their own.
const transportPrefix = "Transport"

// transportIntro opens that section.
const transportIntro = "Courier queues over the `natsjs` transport, on an embedded nats-server reached in-process (no network), " +
	"beside the in-memory engine (`courier`, no middleware) and the raw channel, in the same run. " +
	"`natsjs-file-sync` writes every message to disk (fsync) before `Send` returns, the transport's default; " +
	"`natsjs-file-nosync` syncs once a minute; `natsjs-memory` keeps the streams in memory. " +
	"Every `Send` is a synchronous publish that the server acknowledges. " +
	"The ratios compare ns/op with the `channel` and with the `courier` contender of the workload."

// render writes one table per workload (the part of the name before the
// first slash); the Transport workloads come last, under a heading of their
// own.
func render(w io.Writer, title, note string, res *results) error {
	var b strings.Builder
	fmt.Fprintf(&b, "# %s\n\n", title)
	if note != "" {
		fmt.Fprintf(&b, "%s\n\n", note)
	}
	for _, h := range res.header {
		fmt.Fprintf(&b, "- %s\n", h)
	}
	b.WriteString("\nMedians of every run; the ratio compares ns/op with the workload's `channel` baseline, measured in the same run.\n")

	var groups []string
	members := map[string][]string{}
	for _, name := range res.order {
		g, _, _ := strings.Cut(strings.TrimPrefix(name, "Benchmark"), "/")
		if members[g] == nil {
			groups = append(groups, g)
		}
		members[g] = append(members[g], name)
	}
	var transport []string
	groups = slices.DeleteFunc(groups, func(g string) bool {
		if strings.HasPrefix(g, transportPrefix) && len(g) > len(transportPrefix) {
			transport = append(transport, g)
			return true
		}
		return false
	})
	for _, g := range groups {
		table(&b, "##", g, members[g], res, false)
	}
	if len(transport) > 0 {
		fmt.Fprintf(&b, "\n## Over NATS JetStream\n\n%s\n", transportIntro)
		for _, g := range transport {
			table(&b, "###", g, members[g], res, true)
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// table writes the table of workload g, whose benchmarks are names, under a
// heading of the given level; a Transport workload is titled without its
// prefix and, with toCourier, gets a column of ratios to its `courier`
// contender.
func table(b *strings.Builder, level, g string, names []string, res *results, toCourier bool) {
	title := g
	if toCourier {
		title = strings.TrimPrefix(g, transportPrefix)
	}
	var units []string
	for _, n := range names {
		for _, u := range res.units[n] {
			if !slices.Contains(units, u) {
				units = append(units, u)
			}
		}
	}
	base, engine := 0.0, 0.0
	for _, n := range names {
		switch {
		case strings.HasSuffix(n, "/channel"):
			base = median(res.values[n]["ns/op"])
		case toCourier && strings.HasSuffix(n, "/courier"):
			engine = median(res.values[n]["ns/op"])
		}
	}
	fmt.Fprintf(b, "\n%s %s\n\n| contender |", level, title)
	for _, u := range units {
		fmt.Fprintf(b, " %s |", u)
	}
	if base > 0 {
		b.WriteString(" × channel |")
	}
	if engine > 0 {
		b.WriteString(" × courier |")
	}
	b.WriteString("\n|---|")
	for range units {
		b.WriteString("---:|")
	}
	if base > 0 {
		b.WriteString("---:|")
	}
	if engine > 0 {
		b.WriteString("---:|")
	}
	b.WriteString("\n")
	for _, n := range names {
		_, contender, ok := strings.Cut(n, "/")
		if !ok {
			contender = strings.TrimPrefix(n, "Benchmark")
		}
		fmt.Fprintf(b, "| %s |", contender)
		for _, u := range units {
			if xs, ok := res.values[n][u]; ok {
				fmt.Fprintf(b, " %s |", format(median(xs)))
			} else {
				b.WriteString(" |")
			}
		}
		if base > 0 {
			fmt.Fprintf(b, " %s× |", ratio(median(res.values[n]["ns/op"])/base))
		}
		if engine > 0 {
			fmt.Fprintf(b, " %s× |", ratio(median(res.values[n]["ns/op"])/engine))
		}
		b.WriteString("\n")
	}
}

// ratio prints a ratio with one decimal, grouping the thousands of a large
// one (a broker round trip is thousands of channel sends).
func ratio(r float64) string {
	if r >= 1000 {
		return groupThousands(strconv.FormatFloat(r, 'f', 0, 64))
	}
	return strconv.FormatFloat(r, 'f', 1, 64)
}

// format prints a metric with a precision that suits its size.
func format(v float64) string {
	switch {
	case v >= 100:
		return groupThousands(strconv.FormatFloat(v, 'f', 0, 64))
	case v >= 10:
		return strconv.FormatFloat(v, 'f', 1, 64)
	default:
		return strconv.FormatFloat(v, 'f', 2, 64)
	}
}

func groupThousands(s string) string {
	var out []byte
	for i := range len(s) {
		if i > 0 && (len(s)-i)%3 == 0 {
			out = append(out, ',')
		}
		out = append(out, s[i])
	}
	return string(out)
}
