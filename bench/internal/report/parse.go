package main

import (
	"bufio"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
)

// modulePrefix is stripped from package paths so keys read "core/breaker".
const modulePrefix = "github.com/lifeline-bot/lifeline/"

// Results are the benchmark figures of one raw `go test -bench` output,
// possibly covering several packages and several -count repetitions.
type Results struct {
	// Header holds the first value of each "key: value" line go test
	// prints before a package's results (goos, goarch, cpu).
	Header map[string]string
	// values maps a benchmark key ("core/breaker BenchmarkX/sub", the
	// -GOMAXPROCS suffix removed) to its unit ("ns/op", "allocs/op",
	// "p95-ms"...) and every value seen for it.
	values map[string]map[string][]float64
	// procs is the GOMAXPROCS suffix each key ran with.
	procs map[string]int
}

// Parse reads raw go test -bench output. Lines that are neither a header
// nor a benchmark result (PASS, ok, log lines) are skipped; a benchmark line
// that cannot be read is an error naming its line number.
func Parse(r io.Reader) (*Results, error) {
	res := &Results{Header: map[string]string{}, values: map[string]map[string][]float64{}, procs: map[string]int{}}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	pkg := ""
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if k, v, ok := strings.Cut(line, ": "); ok && !strings.Contains(k, " ") && !strings.HasPrefix(k, "Benchmark") {
			switch k {
			case "pkg":
				pkg = strings.TrimPrefix(v, modulePrefix)
			case "goos", "goarch", "cpu":
				if _, seen := res.Header[k]; !seen {
					res.Header[k] = v
				}
			}
			continue
		}
		if !strings.HasPrefix(line, "Benchmark") {
			continue
		}
		f := strings.Fields(line)
		if len(f) < 4 || len(f)%2 != 0 {
			continue // a benchmark's name on a line of its own, or its log output
		}
		if _, err := strconv.ParseInt(f[1], 10, 64); err != nil {
			continue
		}
		name, procs := splitProcs(f[0])
		key := pkg + " " + name
		units := res.values[key]
		if units == nil {
			units = map[string][]float64{}
			res.values[key] = units
		}
		res.procs[key] = procs
		for i := 2; i+1 < len(f); i += 2 {
			v, err := strconv.ParseFloat(f[i], 64)
			if err != nil {
				return nil, fmt.Errorf("report: line %d: value %q of %s: %w", n, f[i], f[i+1], err)
			}
			units[f[i+1]] = append(units[f[i+1]], v)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("report: reading benchmark output: %w", err)
	}
	return res, nil
}

// splitProcs removes the "-N" GOMAXPROCS suffix go test adds to a name.
func splitProcs(name string) (string, int) {
	i := strings.LastIndexByte(name, '-')
	if i < 0 {
		return name, 1
	}
	p, err := strconv.Atoi(name[i+1:])
	if err != nil {
		return name, 1
	}
	return name[:i], p
}

// Median is the median of every value of unit seen for the benchmark key
// ("core/breaker BenchmarkExecuteClosedSuccess/lifeline"); ok is false when
// the run did not produce it.
func (r *Results) Median(key, unit string) (v float64, ok bool) {
	vs := r.values[key][unit]
	if len(vs) == 0 {
		return 0, false
	}
	s := slices.Clone(vs)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2], true
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2, true
}

// Procs is the GOMAXPROCS the benchmark key ran with (1 if unknown).
func (r *Results) Procs(key string) int {
	if p, ok := r.procs[key]; ok {
		return p
	}
	return 1
}

// Keys lists the benchmark keys starting with prefix, sorted.
func (r *Results) Keys(prefix string) []string {
	var out []string
	for k := range r.values {
		if strings.HasPrefix(k, prefix) {
			out = append(out, k)
		}
	}
	slices.Sort(out)
	return out
}
