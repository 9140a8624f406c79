package flight_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/lifeline-bot/lifeline/core/clock"
	"github.com/lifeline-bot/lifeline/core/events"
	"github.com/lifeline-bot/lifeline/core/flight"
	"github.com/lifeline-bot/lifeline/core/metrics"
	"github.com/lifeline-bot/lifeline/core/policy"
)

var t0 = time.Date(2026, 11, 27, 5, 0, 0, 0, time.UTC)

func snap(at time.Time, errRate float64, consecutive int) metrics.Snapshot {
	var s metrics.Snapshot
	s.Time = at
	s.Errors.Rate = errRate
	s.Errors.Consecutive = uint64(consecutive)
	s.Health.Score = 100
	return s
}

func open(t *testing.T, s flight.Settings) *flight.Recorder {
	t.Helper()
	r, err := flight.Open(s)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	return r
}

func TestRoundTrip(t *testing.T) {
	path := filepath.Join(t.TempDir(), "flight.jsonl")
	clk := clock.NewFake(t0)
	r := open(t, flight.Settings{Path: path, Clock: clk})
	for i := range 5 {
		clk.Advance(time.Second)
		if i == 2 {
			r.Event(events.New(clk.Now(), events.Error{Source: "conn", Kind: "zombie", Message: "no ACK"}))
			r.Mark("fault")
		}
		if err := r.Tick(snap(clk.Now(), float64(i)/10, i), policy.Decision{Level: policy.Level(i % 3), Recover: i == 4, Reason: "r"}, policy.Minimal); err != nil {
			t.Fatal(err)
		}
	}
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	rec, err := flight.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(rec.Lines) != 5 || len(rec.Truncated) != 0 {
		t.Fatalf("got %d lines, truncated %v", len(rec.Lines), rec.Truncated)
	}
	for i, l := range rec.Lines {
		want := t0.Add(time.Duration(i+1) * time.Second)
		if !l.Time.Equal(want) || !l.Snapshot.Time.Equal(want) {
			t.Errorf("line %d: time %v snapshot %v, want %v", i, l.Time, l.Snapshot.Time, want)
		}
		if int(l.Snapshot.Errors.Consecutive) != i || l.Decision == nil || l.Decision.Level != policy.Level(i%3) || l.Level != "MINIMAL" {
			t.Errorf("line %d: %+v", i, l)
		}
		if (len(l.Events) == 1) != (i == 2) || (len(l.Marks) == 1) != (i == 2) {
			t.Errorf("line %d: events %v marks %v", i, l.Events, l.Marks)
		}
	}
	e := rec.Lines[2].Events[0]
	if e.Type != "ERROR_OCCURRED" || !strings.Contains(string(e.Data), `"kind":"zombie"`) || rec.Lines[2].Marks[0] != "fault" {
		t.Errorf("event %+v marks %v", e, rec.Lines[2].Marks)
	}
}

func TestEventsBeyondMaxAreCounted(t *testing.T) {
	path := filepath.Join(t.TempDir(), "f.jsonl")
	clk := clock.NewFake(t0)
	r := open(t, flight.Settings{Path: path, Clock: clk, MaxEvents: 3})
	for range 10 {
		r.Event(events.New(clk.Now(), events.Error{Source: "conn"}))
	}
	if err := r.Tick(snap(clk.Now(), 0, 0), policy.Decision{}, policy.None); err != nil {
		t.Fatal(err)
	}
	rec, err := flight.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if l := rec.Lines[0]; len(l.Events) != 3 || l.Dropped != 7 || r.Stats().Dropped != 7 {
		t.Errorf("events %d dropped %d stats %+v", len(l.Events), l.Dropped, r.Stats())
	}
}

// dirBytes sums the sizes of every file in dir.
func dirBytes(t *testing.T, dir string) (int64, int) {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var n int64
	for _, e := range ents {
		fi, err := e.Info()
		if err != nil {
			t.Fatal(err)
		}
		n += fi.Size()
	}
	return n, len(ents)
}

func TestRotationKeepsOrder(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "flight.jsonl")
	clk := clock.NewFake(t0)
	r := open(t, flight.Settings{Path: path, Clock: clk, MaxFileBytes: 4000, MaxTotalBytes: 1 << 20})
	const n = 40
	for i := range n {
		clk.Advance(time.Second)
		if err := r.Tick(snap(clk.Now(), 0, i), policy.Decision{}, policy.None); err != nil {
			t.Fatal(err)
		}
	}
	st := r.Stats()
	if st.Rotations == 0 || st.Deleted != 0 || st.Lines != n {
		t.Fatalf("stats %+v", st)
	}
	rec, err := flight.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(rec.Files) != st.Files || len(rec.Lines) != n {
		t.Fatalf("%d files (stats %d), %d lines", len(rec.Files), st.Files, len(rec.Lines))
	}
	for i, l := range rec.Lines {
		if int(l.Snapshot.Errors.Consecutive) != i {
			t.Fatalf("line %d holds tick %d", i, l.Snapshot.Errors.Consecutive)
		}
	}
	for _, f := range rec.Files {
		fi, err := os.Stat(f)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Size() > 4000 {
			t.Errorf("%s: %d bytes, bound 4000", f, fi.Size())
		}
	}
}

func TestDiskBoundHeldOverALongRun(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "flight.jsonl")
	clk := clock.NewFake(t0)
	const bound = 20_000
	r := open(t, flight.Settings{Path: path, Clock: clk, MaxFileBytes: 5000, MaxTotalBytes: bound})
	const n = 3000
	for i := range n {
		clk.Advance(time.Second)
		if i%7 == 0 {
			r.Event(events.New(clk.Now(), events.Error{Source: "conn", Kind: "close", Message: strings.Repeat("x", i%200)}))
		}
		if err := r.Tick(snap(clk.Now(), 0, i), policy.Decision{}, policy.None); err != nil {
			t.Fatal(err)
		}
		if i%50 == 0 {
			if got, _ := dirBytes(t, dir); got > bound {
				t.Fatalf("tick %d: %d bytes on disk, bound %d", i, got, bound)
			}
		}
	}
	got, files := dirBytes(t, dir)
	st := r.Stats()
	if got > bound || st.Bytes != got || st.Files != files || st.Deleted == 0 {
		t.Fatalf("on disk %d bytes in %d files, stats %+v", got, files, st)
	}
	// The newest lines survive, contiguous, ending with the last tick.
	rec, err := flight.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	last := rec.Lines[len(rec.Lines)-1].Snapshot.Errors.Consecutive
	if int(last) != n-1 {
		t.Fatalf("last line is tick %d, want %d", last, n-1)
	}
	for i := 1; i < len(rec.Lines); i++ {
		if rec.Lines[i].Snapshot.Errors.Consecutive != rec.Lines[i-1].Snapshot.Errors.Consecutive+1 {
			t.Fatalf("gap at line %d", i)
		}
	}
	// A new run in the same place rotates the old file and keeps the bound.
	r.Close()
	r2 := open(t, flight.Settings{Path: path, Clock: clk, MaxFileBytes: 5000, MaxTotalBytes: bound})
	for range 20 {
		if err := r2.Tick(snap(clk.Now(), 0, 0), policy.Decision{}, policy.None); err != nil {
			t.Fatal(err)
		}
	}
	if got, _ := dirBytes(t, dir); got > bound {
		t.Fatalf("after reopening: %d bytes, bound %d", got, bound)
	}
}

func TestLineTooLarge(t *testing.T) {
	path := filepath.Join(t.TempDir(), "f.jsonl")
	r := open(t, flight.Settings{Path: path, MaxFileBytes: 100})
	err := r.Tick(snap(t0, 0, 0), policy.Decision{}, policy.None)
	if !errors.Is(err, flight.ErrLineTooLarge) {
		t.Fatalf("err = %v", err)
	}
}

func TestReadErrors(t *testing.T) {
	good := `{"time":"2026-11-27T05:00:00Z","snapshot":{"time":"2026-11-27T05:00:00Z"}}`
	tests := []struct {
		name      string
		content   string
		lines     int
		truncated bool
		errLine   int // 0: no error
	}{
		{"clean", good + "\n" + good + "\n", 2, false, 0},
		{"truncated last line", good + "\n" + good + "\n" + good[:30], 2, true, 0},
		{"blank lines", good + "\n\n" + good + "\n", 2, false, 0},
		{"garbage in the middle", good + "\n{not json}\n" + good + "\n", 0, false, 2},
		{"half line in the middle", good + "\n" + good[:30] + "\n" + good + "\n", 0, false, 2},
		{"no time", good + "\n{}\n", 0, false, 2},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "f.jsonl")
			if err := os.WriteFile(path, []byte(tc.content), 0o600); err != nil {
				t.Fatal(err)
			}
			rec, err := flight.ReadFile(path)
			if tc.errLine != 0 {
				var pe *flight.ParseError
				if !errors.As(err, &pe) || !errors.Is(err, flight.ErrCorrupt) || pe.Line != tc.errLine || pe.File != path {
					t.Fatalf("err = %v, want a ParseError at line %d", err, tc.errLine)
				}
				if !strings.Contains(err.Error(), path+":2:") {
					t.Errorf("message %q does not name the place", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(rec.Lines) != tc.lines || (len(rec.Truncated) > 0) != tc.truncated {
				t.Fatalf("%d lines, truncated %v", len(rec.Lines), rec.Truncated)
			}
		})
	}
}

func TestOpenNeedsAPath(t *testing.T) {
	if _, err := flight.Open(flight.Settings{}); !errors.Is(err, flight.ErrNoPath) {
		t.Fatalf("err = %v", err)
	}
	var r *flight.Recorder // off: a nil recorder does nothing
	r.Event(events.New(t0, events.Error{}))
	r.Mark("x")
	if err := r.Tick(metrics.Snapshot{}, policy.Decision{}, policy.None); err != nil || r.Close() != nil {
		t.Fatal("nil recorder failed")
	}
}
