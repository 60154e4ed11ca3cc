// Command benchtable turns the output of go test -bench (several -count runs
// of the benchmarks in this module) into the Markdown tables of RESULTS.md:
// the median of every metric per benchmark, and each contender's ratio to
// the raw-channel baseline of its workload.
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

// render writes one table per workload (the part of the name before the
// first slash).
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
	for _, g := range groups {
		names := members[g]
		var units []string
		for _, n := range names {
			for _, u := range res.units[n] {
				if !slices.Contains(units, u) {
					units = append(units, u)
				}
			}
		}
		base := 0.0
		for _, n := range names {
			if strings.HasSuffix(n, "/channel") {
				base = median(res.values[n]["ns/op"])
			}
		}
		fmt.Fprintf(&b, "\n## %s\n\n| contender |", g)
		for _, u := range units {
			fmt.Fprintf(&b, " %s |", u)
		}
		if base > 0 {
			b.WriteString(" × channel |")
		}
		b.WriteString("\n|---|")
		for range units {
			b.WriteString("---:|")
		}
		if base > 0 {
			b.WriteString("---:|")
		}
		b.WriteString("\n")
		for _, n := range names {
			_, contender, ok := strings.Cut(n, "/")
			if !ok {
				contender = strings.TrimPrefix(n, "Benchmark")
			}
			fmt.Fprintf(&b, "| %s |", contender)
			for _, u := range units {
				if xs, ok := res.values[n][u]; ok {
					fmt.Fprintf(&b, " %s |", format(median(xs)))
				} else {
					b.WriteString(" |")
				}
			}
			if base > 0 {
				fmt.Fprintf(&b, " %.1f× |", median(res.values[n]["ns/op"])/base)
			}
			b.WriteString("\n")
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
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
