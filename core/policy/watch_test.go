package policy

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/hcl/v2"

	"github.com/lifeline-bot/lifeline/core/clock"
	"github.com/lifeline-bot/lifeline/core/events"
	"go.uber.org/goleak"
)

// Reload tests use real files and real fsnotify. Waiting is always for an
// event, with a generous real-time bound for a slow, shared CI machine;
// the debounce runs on a fake clock, so nothing depends on timing.

const waitFor = 20 * time.Second

const validA = `degradation {
  level "minimal" {
    when = "errors.rate > 0.1"
  }
  recover {
    when = "errors.rate < 0.05"
  }
}
`

func valid(rate float64) string {
	return strings.Replace(validA, "0.1", fmt.Sprint(rate), 1)
}

// chanPublisher hands events to a test.
type chanPublisher struct{ ch chan events.Event }

func (c chanPublisher) Publish(e events.Event) {
	select {
	case c.ch <- e:
	default:
		panic("test publisher full: a test is not reading its events")
	}
}

type harness struct {
	t    *testing.T
	dir  string
	path string
	clk  *clock.Fake
	ev   chan events.Event
	w    *Watcher
}

func newHarness(t *testing.T, initial string) *harness {
	t.Helper()
	defer func() {
		if t.Failed() {
			t.FailNow()
		}
	}()
	h := &harness{t: t, dir: t.TempDir(), clk: clock.NewFake(time.Time{}), ev: make(chan events.Event, 64)}
	h.path = filepath.Join(h.dir, "policy.hcl")
	h.write(initial)
	w, err := NewWatcher(WatcherOptions{Path: h.path, Clock: h.clk, Events: chanPublisher{h.ev}, Debounce: time.Second, Decode: testOptions()})
	if err != nil {
		t.Fatal(err)
	}
	h.w = w
	if err := w.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := w.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return h
}

func (h *harness) write(content string) {
	h.t.Helper()
	if err := os.WriteFile(h.path, []byte(content), 0o644); err != nil {
		h.t.Fatal(err)
	}
}

// settle waits until the watcher has armed its debounce timer (it saw an
// event for the file), then moves the fake clock past the debounce.
func (h *harness) settle() {
	h.t.Helper()
	if !h.clk.BlockUntil(1, waitFor) {
		h.t.Fatal("the watcher never armed its debounce timer: no fsnotify event for the policy file")
	}
	h.clk.Advance(time.Second)
}

func (h *harness) next() events.Event {
	h.t.Helper()
	select {
	case e := <-h.ev:
		return e
	case <-time.After(waitFor):
		h.t.Fatalf("no reload event within %s", waitFor)
		return events.Event{}
	}
}

func (h *harness) expectReloaded(to uint64) events.PolicyReload {
	h.t.Helper()
	e := h.next()
	d, ok := e.Data.(events.PolicyReload)
	if !ok || e.Type != events.PolicyReloaded || d.ToGeneration != to {
		h.t.Fatalf("want POLICY_RELOADED to generation %d, got %s", to, e)
	}
	return d
}

func (h *harness) expectFailed() events.PolicyReload {
	h.t.Helper()
	e := h.next()
	d, ok := e.Data.(events.PolicyReload)
	if !ok || e.Type != events.PolicyReloadFailed {
		h.t.Fatalf("want POLICY_RELOAD_FAILED, got %s", e)
	}
	return d
}

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

func TestWatcherSaveStyles(t *testing.T) {
	tests := []struct {
		name string
		save func(h *harness, content string)
	}{
		{"in-place write", func(h *harness, c string) { h.write(c) }},
		{"write then rename", func(h *harness, c string) {
			tmp := filepath.Join(h.dir, ".policy.hcl.tmp")
			if err := os.WriteFile(tmp, []byte(c), 0o644); err != nil {
				t.Fatal(err)
			}
			if err := os.Rename(tmp, h.path); err != nil {
				t.Fatal(err)
			}
		}},
		{"vim rename and create", func(h *harness, c string) {
			backup := h.path + "~"
			if err := os.Rename(h.path, backup); err != nil {
				t.Fatal(err)
			}
			h.write(c)
			if err := os.Remove(backup); err != nil {
				t.Fatal(err)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, valid(0.1))
			first := h.w.Current()
			h.expectNoEvent()
			tt.save(h, valid(0.3))
			h.settle()
			d := h.expectReloaded(2)
			gen := h.w.Current()
			if gen.Number != 2 || gen.Hash == first.Hash || d.Hash != gen.Hash || d.FromGeneration != 1 {
				t.Fatalf("generation %d hash %s (event %+v)", gen.Number, gen.Hash, d)
			}
			if got := gen.Policy.Degradation.Levels[0].When.Expr; got != "errors.rate > 0.3" {
				t.Errorf("new generation's condition is %q", got)
			}
			// Late events for the same save may re-arm the timer; firing it
			// finds the same content, which is not a new generation.
			h.clk.Advance(time.Second)
			if _, err := h.w.Reload(); err != nil {
				t.Fatal(err)
			}
			st := h.w.Stats()
			if st.Reloads != 1 || st.Failures != 0 || st.Unchanged < 1 || st.Generation != 2 || st.Hash != gen.Hash {
				t.Errorf("stats %+v: want exactly one reload", st)
			}
		})
	}
}

// expectNoEvent checks nothing was published yet (no waiting: events are
// published synchronously by reloads, none of which the test caused).
func (h *harness) expectNoEvent() {
	h.t.Helper()
	select {
	case e := <-h.ev:
		h.t.Fatalf("unexpected event %s", e)
	default:
	}
}

func TestWatcherInvalidEditKeepsGeneration(t *testing.T) {
	h := newHarness(t, valid(0.1))
	h.write(strings.Replace(valid(0.2), "errors.rate > 0.2", "errors.rat > 0.2", 1))
	h.settle()
	d := h.expectFailed()
	if d.FromGeneration != 1 || d.ToGeneration != 1 || len(d.Diagnostics) != 1 {
		t.Fatalf("failed reload event %+v", d)
	}
	want := h.path + ":3:20: error: Unknown name in condition"
	if !strings.HasPrefix(d.Diagnostics[0], want) {
		t.Errorf("diagnostic %q does not start with %q", d.Diagnostics[0], want)
	}
	if g := h.w.Current(); g.Number != 1 || g.Policy.Degradation.Levels[0].When.Expr != "errors.rate > 0.1" {
		t.Errorf("active generation changed: %d", g.Number)
	}
	st := h.w.Stats()
	var de *DiagnosticsError
	if st.Failures != 1 || !errors.As(st.LastError, &de) || !errors.Is(st.LastError, ErrInvalid) {
		t.Errorf("stats %+v", st)
	}

	// A later valid edit applies.
	h.write(valid(0.2))
	h.settle()
	h.expectReloaded(2)
	if st := h.w.Stats(); st.LastError != nil || st.Reloads != 1 || st.Failures != 1 {
		t.Errorf("stats after the fix %+v", st)
	}
}

func TestWatcherBurstIsOneReload(t *testing.T) {
	h := newHarness(t, valid(0.1))
	for i := 1; i <= 25; i++ {
		h.write(valid(0.1 + float64(i)/100))
	}
	h.settle()
	h.expectReloaded(2)
	if got := h.w.Current().Policy.Degradation.Levels[0].When.Expr; got != "errors.rate > 0.35" {
		t.Errorf("the reload did not see the last write: %q", got)
	}
	h.clk.Advance(time.Second)
	if _, err := h.w.Reload(); err != nil {
		t.Fatal(err)
	}
	if st := h.w.Stats(); st.Reloads != 1 || st.Generation != 2 {
		t.Errorf("a burst of 25 writes made %d reloads (stats %+v)", st.Reloads, st)
	}
}

func TestWatcherFileRemoved(t *testing.T) {
	h := newHarness(t, valid(0.1))
	if err := os.Remove(h.path); err != nil {
		t.Fatal(err)
	}
	h.settle()
	d := h.expectFailed()
	if len(d.Diagnostics) != 1 || !strings.Contains(d.Diagnostics[0], "is missing") || !strings.Contains(d.Diagnostics[0], "Keeping generation 1") {
		t.Errorf("diagnostics %q do not say the file is missing and generation 1 is kept", d.Diagnostics)
	}
	if g := h.w.Current(); g.Number != 1 {
		t.Errorf("generation %d after removal", g.Number)
	}
	if _, err := h.w.Reload(); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Reload of a missing file: %v", err)
	}
	h.expectFailed()

	h.write(valid(0.4))
	h.settle()
	h.expectReloaded(2)
}

func TestWatcherReloadAndCallbacks(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "p.hcl")
	if err := os.WriteFile(path, []byte(valid(0.1)), 0o644); err != nil {
		t.Fatal(err)
	}
	clk := clock.NewFake(time.Time{})
	w, err := NewWatcher(WatcherOptions{Path: path, Clock: clk})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	var mu sync.Mutex
	var seen []string
	cancel := w.OnReload(func(old, new *Generation) {
		mu.Lock()
		defer mu.Unlock()
		seen = append(seen, fmt.Sprintf("%d->%d", old.Number, new.Number))
	})
	w.OnReload(func(*Generation, *Generation) { panic("a broken callback") })

	// Identical content is not a new generation.
	if g, err := w.Reload(); err != nil || g.Number != 1 {
		t.Fatalf("Reload of unchanged content: gen %d, %v", g.Number, err)
	}
	clk.Advance(time.Minute)
	if err := os.WriteFile(path, []byte(valid(0.5)), 0o644); err != nil {
		t.Fatal(err)
	}
	g, err := w.Reload()
	if err != nil || g.Number != 2 || !g.Loaded.Equal(clk.Now()) || g.Path != path {
		t.Fatalf("Reload: %+v, %v", g, err)
	}
	cancel()
	if err := os.WriteFile(path, []byte(valid(0.6)), 0o644); err != nil {
		t.Fatal(err)
	}
	if g, err := w.Reload(); err != nil || g.Number != 3 {
		t.Fatalf("Reload: %+v, %v", g, err)
	}
	mu.Lock()
	if strings.Join(seen, ",") != "1->2" {
		t.Errorf("callback saw %v; want only 1->2 (it was cancelled before 2->3)", seen)
	}
	mu.Unlock()
	st := w.Stats()
	if st.Reloads != 2 || st.Unchanged != 1 || !st.LastSuccess.Equal(clk.Now()) {
		t.Errorf("stats %+v", st)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := w.Reload(); !errors.Is(err, ErrWatcherClosed) {
		t.Errorf("Reload after Close: %v", err)
	}
	if err := w.Start(); !errors.Is(err, ErrWatcherClosed) {
		t.Errorf("Start after Close: %v", err)
	}
}

func TestNewWatcherInvalid(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "p.hcl")
	if _, err := NewWatcher(WatcherOptions{Path: path}); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing file: %v", err)
	}
	if err := os.WriteFile(path, []byte(`connection { intents = ["Nope"] }`), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := NewWatcher(WatcherOptions{Path: path})
	var de *DiagnosticsError
	if !errors.As(err, &de) || !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "p.hcl:1:25: error: Unknown intent") {
		t.Errorf("invalid file: %v", err)
	}
}

// TestWatcherRealClock runs the whole path with the wall clock once.
func TestWatcherRealClock(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "policy.hcl")
	if err := os.WriteFile(path, []byte(valid(0.1)), 0o644); err != nil {
		t.Fatal(err)
	}
	reloaded := make(chan *Generation, 8)
	w, err := NewWatcher(WatcherOptions{Path: path, Debounce: 10 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	w.OnReload(func(_, g *Generation) { reloaded <- g })
	if err := w.Start(); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(valid(0.7)), 0o644); err != nil {
		t.Fatal(err)
	}
	// A reload may land between the truncation and the write of the
	// file (an empty file is the default policy); wait for the content.
	deadline := time.After(waitFor)
	for done := false; !done; {
		select {
		case g := <-reloaded:
			done = g.Policy.Degradation.Levels[0].When.Expr == "errors.rate > 0.7"
		case <-deadline:
			t.Fatal("no reload with the new content")
		}
	}
}

// TestWatcherLoadHook shows that WatcherOptions.Load replaces Decode on the
// first load and on every reload (so layers around the file are applied
// again each time), and that its diagnostics, a nil policy or a panic keep
// the active generation.
func TestWatcherLoadHook(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "p.hcl")
	write := func(s string) {
		t.Helper()
		if err := os.WriteFile(path, []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write(valid(0.1))
	var mode string // what the hook does with the next load
	var calls int
	load := func(p string, src []byte) (*Policy, hcl.Diagnostics) {
		calls++
		switch mode {
		case "nil":
			return nil, nil
		case "panic":
			panic("loader bug")
		case "layer-error":
			return nil, hcl.Diagnostics{{Severity: hcl.DiagError, Summary: "env DISCORD_MAX_RECONNECT_ATTEMPTS=\"ten\": Invalid value"}}
		}
		pol, diags := Decode(p, src, Options{})
		if pol != nil {
			// The "layer": a value the file does not set.
			pol.Connection.MaxReconnectAttempts = 7
		}
		return pol, diags
	}
	w, err := NewWatcher(WatcherOptions{Path: path, Clock: clock.NewFake(time.Time{}), Load: load})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	if got := w.Policy().Connection.MaxReconnectAttempts; got != 7 || calls != 1 {
		t.Fatalf("first load: max_reconnect_attempts %d after %d calls; want 7 after 1 (the hook)", got, calls)
	}
	write(valid(0.5))
	g, err := w.Reload()
	if err != nil || g.Number != 2 || g.Policy.Connection.MaxReconnectAttempts != 7 || calls != 2 {
		t.Fatalf("reload: gen %+v, err %v, calls %d; want gen 2 through the hook", g, err, calls)
	}
	for i, m := range []string{"layer-error", "nil", "panic"} {
		mode = m
		write(valid(0.6 + float64(i)/10))
		g, err := w.Reload()
		var de *DiagnosticsError
		if !errors.As(err, &de) || g.Number != 2 || w.Current().Number != 2 {
			t.Fatalf("%s: gen %d, err %v; want generation 2 kept and a *DiagnosticsError", m, g.Number, err)
		}
		if m == "layer-error" && !strings.Contains(err.Error(), "DISCORD_MAX_RECONNECT_ATTEMPTS") {
			t.Errorf("%s: error %q does not carry the hook's diagnostic", m, err)
		}
	}
	if st := w.Stats(); st.Failures != 3 || st.Reloads != 1 {
		t.Errorf("stats %+v; want 3 failures, 1 reload", st)
	}
}

// TestWatcherEmptiedFileKeepsGeneration: a reload that finds the file
// emptied (an editor saving in place truncates it before writing) keeps
// the policy in force instead of putting the built-in defaults in force;
// a file holding only a comment does reset to the defaults.
func TestWatcherEmptiedFileKeepsGeneration(t *testing.T) {
	path := filepath.Join(t.TempDir(), "p.hcl")
	write := func(s string) {
		t.Helper()
		if err := os.WriteFile(path, []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write(valid(0.3))
	w, err := NewWatcher(WatcherOptions{Path: path, Clock: clock.NewFake(time.Time{})})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	for _, empty := range []string{"", " \n\t\n"} {
		write(empty)
		g, err := w.Reload()
		if !errors.Is(err, ErrInvalid) || g.Number != 1 || w.Policy().Degradation.Levels[0].When.Expr != "errors.rate > 0.3" {
			t.Fatalf("reload of an emptied file (%q): gen %d, err %v; want generation 1 kept and ErrInvalid", empty, g.Number, err)
		}
		if !strings.Contains(err.Error(), "is empty") {
			t.Errorf("error %q does not say the file is empty", err)
		}
	}
	write("# back to the built-in defaults\n")
	g, err := w.Reload()
	if err != nil || g.Number != 2 {
		t.Fatalf("a comment-only file: gen %d, err %v; want generation 2", g.Number, err)
	}
	if got, want := len(w.Policy().Degradation.Levels), len(Default().Degradation.Levels); got != want {
		t.Errorf("comment-only file: %d levels; want the defaults' %d", got, want)
	}
}
