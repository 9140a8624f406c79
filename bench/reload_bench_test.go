package bench

import (
	"crypto/sha256"
	"encoding/hex"
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

// editorSaves are the ways editors save a file, as core/policy's watcher
// tests name them: each writes content to path.
var editorSaves = []struct {
	name string
	save func(path string, content []byte) error
}{
	// A new file beside it, synced, renamed over it (most editors' "safe
	// write").
	{"write then rename", func(path string, content []byte) error {
		tmp := path + ".swp"
		if err := writeSynced(tmp, os.O_CREATE|os.O_TRUNC, content); err != nil {
			return err
		}
		return os.Rename(tmp, path)
	}},
	// Truncated and written in place, then synced.
	{"in-place write", func(path string, content []byte) error {
		return writeSynced(path, os.O_TRUNC, content)
	}},
	// vim: the file renamed to a backup, a new file written and synced,
	// its mode set, the backup removed.
	{"vim rename and create", func(path string, content []byte) error {
		backup := path + "~"
		if err := os.Rename(path, backup); err != nil {
			return err
		}
		if err := writeSynced(path, os.O_CREATE|os.O_EXCL, content); err != nil {
			return err
		}
		if err := os.Chmod(path, 0o600); err != nil {
			return err
		}
		return os.Remove(backup)
	}},
}

// writeSynced writes content to path opened write-only with flag, then
// syncs and closes it.
func writeSynced(path string, flag int, content []byte) error {
	f, err := os.OpenFile(path, os.O_WRONLY|flag, 0o600)
	if err != nil {
		return fmt.Errorf("bench: open %s: %w", path, err)
	}
	if _, err := f.Write(content); err != nil {
		f.Close()
		return fmt.Errorf("bench: write %s: %w", path, err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("bench: sync %s: %w", path, err)
	}
	return f.Close()
}

// BenchmarkPolicyReload is one hot reload of policies/default.hcl: from the
// moment an editor starts saving the edited file to the moment the
// Watcher's OnReload hook sees the new generation, through a real fsnotify
// watch and the Watcher's debounce on the wall clock. Each iteration changes
// the file's content (a comment with the iteration's number), so every save
// is a new generation, and saves it the next of the editors' ways in turn
// (write then rename, in place, vim's). Besides the quantiles it reports
// how many reloads each save caused ("reloads/save": 1 means no save was
// read half-written and no reload was wasted on a new generation that was
// not the saved content) and the reloads that failed ("failed"): a
// debounce shorter than the gaps inside a save would show here.
// Sub-benchmarks: the default debounce ("debounce-ms" says which), and a
// shorter one.
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
			reloaded := make(chan *policy.Generation, 16)
			cancel := w.OnReload(func(_, g *policy.Generation) {
				select {
				case reloaded <- g:
				default:
				}
			})
			defer cancel()
			if err := w.Start(); err != nil {
				b.Fatal(err)
			}
			lat := make([]time.Duration, 0, b.N)
			b.ResetTimer()
			for i := range b.N {
				content := fmt.Appendf(slices.Clone(src), "\n# bench edit %d\n", i)
				style := editorSaves[i%len(editorSaves)]
				start := time.Now()
				if err := style.save(path, content); err != nil {
					b.Fatal(err)
				}
				deadline := time.After(10 * time.Second)
				for done := false; !done; {
					select {
					case g := <-reloaded:
						done = g.Hash == hashOf(content)
					case <-deadline:
						b.Fatalf("save %d (%s): the saved content was not active within 10s (stats %+v)", i, style.name, w.Stats())
					}
				}
				lat = append(lat, time.Since(start))
			}
			b.StopTimer()
			// Late events of the last save may still arm the debounce:
			// let it run out before reading the counters.
			time.Sleep(2*max(c.debounce, policy.DefaultDebounce) + 100*time.Millisecond)
			st := w.Stats()
			reportQuantiles(b, lat)
			b.ReportMetric(float64(st.Reloads)/float64(b.N), "reloads/save")
			b.ReportMetric(float64(st.Failures), "failed")
			d := c.debounce
			if d == 0 {
				d = policy.DefaultDebounce
			}
			b.ReportMetric(float64(d)/float64(time.Millisecond), "debounce-ms")
		})
	}
}

// hashOf is the Generation.Hash of content.
func hashOf(content []byte) string {
	sum := sha256.Sum256(content)
	return hex.EncodeToString(sum[:])
}
