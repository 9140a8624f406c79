package main

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

var update = flag.Bool("update", false, "rewrite testdata/sample.md")

func TestParse(t *testing.T) {
	in := strings.Join([]string{
		"goos: linux",
		"pkg: github.com/lifeline-bot/lifeline/core/breaker",
		"cpu: Test CPU",
		"BenchmarkA/x-2   100   30.0 ns/op   1 allocs/op",
		"BenchmarkA/x-2   100   10.0 ns/op   1 allocs/op",
		"BenchmarkA/x-2   100   20.0 ns/op   3 allocs/op",
		"BenchmarkA/x-2   100   90.0 ns/op   3 allocs/op",
		"BenchmarkB",
		"    bench_test.go:82: a log line",
		"pkg: github.com/other/mod",
		"BenchmarkA/x-8   100   5.5 ns/op",
		"BenchmarkNoProcs   100   7 ns/op",
		"PASS",
	}, "\n")
	r, err := Parse(strings.NewReader(in))
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		key, unit string
		want      float64
		ok        bool
	}{
		{"core/breaker BenchmarkA/x", "ns/op", 25, true}, // even count: mean of the middle two
		{"core/breaker BenchmarkA/x", "allocs/op", 2, true},
		{"github.com/other/mod BenchmarkA/x", "ns/op", 5.5, true},
		{"core/breaker BenchmarkNoProcs", "ns/op", 0, false},
		{"github.com/other/mod BenchmarkNoProcs", "ns/op", 7, true},
		{"core/breaker BenchmarkB", "ns/op", 0, false},
		{"core/breaker BenchmarkA/x", "B/op", 0, false},
	} {
		got, ok := r.Median(c.key, c.unit)
		if got != c.want || ok != c.ok {
			t.Errorf("Median(%q, %q) = %v, %v; want %v, %v", c.key, c.unit, got, ok, c.want, c.ok)
		}
	}
	if p := r.Procs("github.com/other/mod BenchmarkA/x"); p != 8 {
		t.Errorf("Procs = %d, want 8", p)
	}
	if r.Header["goos"] != "linux" || r.Header["cpu"] != "Test CPU" {
		t.Errorf("Header = %v", r.Header)
	}
}

func TestParseRejectsBadValue(t *testing.T) {
	_, err := Parse(strings.NewReader("BenchmarkA-2   100   3x0 ns/op\n"))
	if err == nil || !strings.Contains(err.Error(), "line 1") {
		t.Fatalf("err = %v, want one naming line 1", err)
	}
}

func TestVerdicts(t *testing.T) {
	in, err := os.ReadFile("testdata/sample.txt")
	if err != nil {
		t.Fatal(err)
	}
	r, err := Parse(bytes.NewReader(in))
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, row := range Rows(r) {
		got[row.What] = row.Verdict
	}
	for what, prefix := range map[string]string{
		"breaker `Execute`, closed, success":                                         "met",    // 35 ≤ 0.25×170
		"breaker, open, rejection":                                                   "missed", // 20 > 0.5×30
		"breaker `Execute` under GOMAXPROCS goroutines (`RunParallel`)":              "met",    // 50 ≤ 2×35
		"default policy evaluation over a Snapshot":                                  "missed", // 15× the Go function
		"policy reload (file saved → new generation active), real fsnotify":          "missed", // p95 266 ms
		"ten plugin checks in one monitor tick":                                      "missed", // 3× one check
		"metrics Recorder observation (every method)":                                "missed", // 700 > 2×200, window moving
		"zombie detection (last ACK → client leaves the connection), Scale 200 fake": "missed", // 1.52 > 1.5 intervals
		"recovery after a dropped connection (drop → RESUMED), Scale 200 fake":       "met",
		"idle cost per shard, 1,000 shards":                                          "missed", // 66.8 KB and 1.07% of overhead
		"outage of 10 s (scaled) → all shards READY":                                 "met",    // 1.3 ms beyond the step at the median
	} {
		if !strings.HasPrefix(got[what], prefix) {
			t.Errorf("%s: verdict %q, want it to start with %q", what, got[what], prefix)
		}
	}
}

func TestMissingBenchmarkIsNotInRun(t *testing.T) {
	r, err := Parse(strings.NewReader(""))
	if err != nil {
		t.Fatal(err)
	}
	for _, row := range Rows(r) {
		if strings.HasPrefix(row.Verdict, "met") || strings.HasPrefix(row.Verdict, "missed") {
			t.Errorf("%s: verdict %q from an empty run", row.What, row.Verdict)
		}
	}
}

// TestGolden renders testdata/sample.txt on a fixed machine and compares
// it with testdata/sample.md (go test -update rewrites it).
func TestGolden(t *testing.T) {
	in, err := os.ReadFile("testdata/sample.txt")
	if err != nil {
		t.Fatal(err)
	}
	r, err := Parse(bytes.NewReader(in))
	if err != nil {
		t.Fatal(err)
	}
	m := Machine{GOOS: "linux", GOARCH: "amd64", CPU: "Test CPU", Cores: 2, GoVersion: "go1.26.8",
		Generated: time.Date(2026, 11, 27, 5, 0, 0, 0, time.UTC)}
	got := Render(Rows(r), m, []byte("- a note\n"))
	golden := filepath.Join("testdata", "sample.md")
	if *update {
		if err := os.WriteFile(golden, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("rendered report differs from %s (run go test -update):\n%s", golden, got)
	}
}

func TestRunWritesReport(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "b.md")
	var stderr bytes.Buffer
	if code := run([]string{"-in", "testdata/sample.txt", "-out", out, "-notes", "notes.md"}, &stderr); code != 0 {
		t.Fatalf("run = %d, stderr %s", code, stderr.String())
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"| breaker, open, rejection |", "- Go: go", "## Machine", "## Notes on missed targets", "**Policy reload**"} {
		if !bytes.Contains(b, []byte(want)) {
			t.Errorf("report lacks %q", want)
		}
	}
	if _, err := os.Stat("/proc/loadavg"); err == nil && !bytes.Contains(b, []byte("- Load average when generated (1, 5, 15 min): ")) {
		t.Error("report lacks the load average")
	}
	if code := run([]string{"-in", filepath.Join(dir, "missing.txt"), "-out", out}, &stderr); code != 1 {
		t.Errorf("run with a missing input = %d, want 1", code)
	}
	if code := run([]string{"-in", "testdata/sample.txt", "-out", out, "-notes", filepath.Join(dir, "none.md")}, &stderr); code != 1 {
		t.Errorf("run with a missing notes file = %d, want 1", code)
	}
	if code := run([]string{"-bogus"}, &stderr); code != 2 {
		t.Errorf("run with a bad flag = %d, want 2", code)
	}
}
