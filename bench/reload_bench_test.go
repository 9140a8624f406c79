package bench

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/lifeline-bot/lifeline/core/policy"
)

// reportQuantiles adds the median and p95 of d, in milliseconds, to the
// benchmark's output (as custom metrics the report generator reads).
func reportQuantiles(b *testing.B, d []time.Duration) {
	if len(d) == 0 {
		return
	}
	slices.Sort(d)
	q := func(p float64) time.Duration { return d[int(p*float64(len(d)-1)+0.5)] }
	ms := func(x time.Duration) float64 { return float64(x) / float64(time.Millisecond) }
	b.ReportMetric(ms(q(0.50)), "p50-ms")
	b.ReportMetric(ms(q(0.95)), "p95-ms")
}

// saveLikeAnEditor writes content to a new file beside path and renames it
// over path, as editors do.
func saveLikeAnEditor(path string, content []byte) error {
	tmp := path + ".swp"
	if err := os.WriteFile(tmp, content, 0o600); err != nil {
		return fmt.Errorf("bench: write %s: %w", tmp, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("bench: rename %s over %s: %w", tmp, path, err)
	}
	return nil
}

// BenchmarkPolicyReload is one hot reload of policies/default.hcl: from the
// moment the edited file is saved (renamed into place) to the moment the
// Watcher's OnReload hook sees the new generation, through a real fsnotify
// watch and the Watcher's debounce on the wall clock. Each iteration changes
// the file's content (a comment with the iteration's number) so every save
// is a new generation. Sub-benchmarks: the default debounce, and a shorter
// one to show how much of the time is the debounce.
func BenchmarkPolicyReload(b *testing.B) {
	src, err := os.ReadFile("../policies/default.hcl")
	if err != nil {
		b.Fatal(err)
	}
	for _, c := range []struct {
		name     string
		debounce time.Duration
	}{
		{"debounce=default", 0},
		{"debounce=50ms", 50 * time.Millisecond},
	} {
		b.Run(c.name, func(b *testing.B) {
			path := filepath.Join(b.TempDir(), "policy.hcl")
			if err := os.WriteFile(path, src, 0o600); err != nil {
				b.Fatal(err)
			}
			w, err := policy.NewWatcher(policy.WatcherOptions{Path: path, Debounce: c.debounce})
			if err != nil {
				b.Fatal(err)
			}
			defer w.Close()
			reloaded := make(chan uint64, 1)
			cancel := w.OnReload(func(_, g *policy.Generation) {
				select {
				case reloaded <- g.Number:
				default:
				}
			})
			defer cancel()
			if err := w.Start(); err != nil {
				b.Fatal(err)
			}
			lat := make([]time.Duration, 0, b.N)
			want := w.Current().Number
			b.ResetTimer()
			for i := range b.N {
				content := fmt.Appendf(slices.Clone(src), "\n# bench edit %d\n", i)
				start := time.Now()
				if err := saveLikeAnEditor(path, content); err != nil {
					b.Fatal(err)
				}
				want++
				select {
				case n := <-reloaded:
					if n != want {
						b.Fatalf("generation %d after save %d, want %d", n, i, want)
					}
				case <-time.After(10 * time.Second):
					b.Fatalf("save %d: no new generation within 10s (stats %+v)", i, w.Stats())
				}
				lat = append(lat, time.Since(start))
			}
			b.StopTimer()
			reportQuantiles(b, lat)
		})
	}
}
