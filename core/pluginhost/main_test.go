package pluginhost_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	hclog "github.com/hashicorp/go-hclog"
	"go.uber.org/goleak"

	"github.com/lifeline-bot/lifeline/core/clock"
	"github.com/lifeline-bot/lifeline/core/events"
	"github.com/lifeline-bot/lifeline/core/metrics"
	"github.com/lifeline-bot/lifeline/core/pluginhost"
)

// testPlugin is testdata/testplugin, built once for the package.
var testPlugin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "pluginhost")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	testPlugin = filepath.Join(dir, "testplugin")
	if out, err := exec.Command("go", "build", "-o", testPlugin, "./testdata/testplugin").CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "building the test plugin: %v\n%s", err, out)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// wait is how long a test waits for a real process to do something (start,
// exit): generous, since CI machines are shared. It bounds waits; it is
// never slept.
const wait = 20 * time.Second

// recorder is an events.Publisher that keeps every event and lets a test
// wait for one.
type recorder struct {
	mu  sync.Mutex
	evs []events.Event
	ch  chan struct{}
}

func newRecorder() *recorder { return &recorder{ch: make(chan struct{})} }

func (r *recorder) Publish(e events.Event) {
	r.mu.Lock()
	r.evs = append(r.evs, e)
	close(r.ch)
	r.ch = make(chan struct{})
	r.mu.Unlock()
}

func (r *recorder) all() []events.Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]events.Event(nil), r.evs...)
}

// waitFor returns the n-th (from 1) event matching match, waiting for it.
func (r *recorder) waitFor(t *testing.T, n int, what string, match func(events.Event) bool) events.Event {
	t.Helper()
	deadline := time.NewTimer(wait)
	defer deadline.Stop()
	for {
		r.mu.Lock()
		seen := 0
		for _, e := range r.evs {
			if match(e) {
				seen++
				if seen == n {
					r.mu.Unlock()
					return e
				}
			}
		}
		ch := r.ch
		r.mu.Unlock()
		select {
		case <-ch:
		case <-deadline.C:
			t.Fatalf("no %s (#%d) within %v; events:\n%s", what, n, wait, r.dump())
		}
	}
}

func (r *recorder) dump() string {
	var b strings.Builder
	for _, e := range r.all() {
		fmt.Fprintf(&b, "  %s\n", e)
	}
	return b.String()
}

func (r *recorder) count(match func(events.Event) bool) int {
	n := 0
	for _, e := range r.all() {
		if match(e) {
			n++
		}
	}
	return n
}

func started(name string) func(events.Event) bool {
	return func(e events.Event) bool {
		d, ok := e.Data.(events.Plugin)
		return ok && e.Type == events.PluginStarted && d.Name == name
	}
}

func exited(name string) func(events.Event) bool {
	return func(e events.Event) bool {
		d, ok := e.Data.(events.Plugin)
		return ok && e.Type == events.PluginExited && d.Name == name
	}
}

// services is a HostServices that records what plugins asked for.
type services struct {
	mu         sync.Mutex
	snap       metrics.Snapshot
	recoveries []string
	features   map[string]bool
}

func (s *services) Snapshot() metrics.Snapshot {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.snap
}

func (s *services) RequestRecovery(_ context.Context, mode, reason string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if mode == "reidentify" {
		return errors.New("identify budget exhausted")
	}
	s.recoveries = append(s.recoveries, mode+": "+reason)
	return nil
}

func (s *services) SetFeature(name string, on bool) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.features == nil {
		s.features = map[string]bool{}
	}
	s.features[name] = on
	return nil
}

func (s *services) get() ([]string, map[string]bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	f := map[string]bool{}
	for k, v := range s.features {
		f[k] = v
	}
	return append([]string(nil), s.recoveries...), f
}

// lockedBuffer is a log destination shared with the host's goroutines.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
	ch chan struct{} // closed and replaced on every write
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.ch != nil {
		close(l.ch)
		l.ch = nil
	}
	return l.b.Write(p)
}

// waitFor waits until the log holds every one of subs.
func (l *lockedBuffer) waitFor(t *testing.T, subs ...string) {
	t.Helper()
	l.waitLog(t, func(text string) bool {
		for _, s := range subs {
			if !strings.Contains(text, s) {
				return false
			}
		}
		return true
	}, func(text string) string { return fmt.Sprintf("log lacks %q within %v:\n%s", subs, wait, text) })
}

// waitLog waits (at most wait) until done holds for the log's text, woken
// by each write; on timeout it fails with what fail says of the text.
func (l *lockedBuffer) waitLog(t *testing.T, done func(text string) bool, fail func(text string) string) {
	t.Helper()
	deadline := time.NewTimer(wait)
	defer deadline.Stop()
	for {
		l.mu.Lock()
		text := l.b.String()
		if done(text) {
			l.mu.Unlock()
			return
		}
		if l.ch == nil {
			l.ch = make(chan struct{})
		}
		ch := l.ch
		l.mu.Unlock()
		select {
		case <-ch:
		case <-deadline.C:
			t.Fatal(fail(text))
		}
	}
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// harness is a Host on a fake clock with recorded events, services and log.
type harness struct {
	t    *testing.T
	h    *pluginhost.Host
	clk  *clock.Fake
	rec  *recorder
	svc  *services
	logs *lockedBuffer
}

func newHarness(t *testing.T, mutate func(*pluginhost.Options)) *harness {
	t.Helper()
	hs := &harness{t: t, clk: clock.NewFake(time.Time{}), rec: newRecorder(), svc: &services{}, logs: &lockedBuffer{}}
	o := pluginhost.Options{
		Clock:       hs.clk,
		Events:      hs.rec,
		Services:    hs.svc,
		Logger:      hclog.New(&hclog.LoggerOptions{Output: hs.logs, Level: hclog.Debug}),
		CallTimeout: 2 * time.Second,
		Restart:     pluginhost.RestartPolicy{Initial: time.Second, Max: 4 * time.Second, Limit: 3},
	}
	if mutate != nil {
		mutate(&o)
	}
	hs.h = pluginhost.New(o)
	t.Cleanup(func() {
		hs.h.Stop()
		if t.Failed() {
			t.Logf("host log:\n%s\nevents:\n%s", hs.logs.String(), hs.rec.dump())
		}
	})
	return hs
}

// spec is a Spec for the test plugin serving the check block "probe".
func spec(name string, args ...string) pluginhost.Spec {
	return pluginhost.Spec{Name: name, Path: testPlugin, Args: args,
		Checks: []pluginhost.CheckUse{{Name: "probe"}}}
}

func (hs *harness) status(name string) pluginhost.Status {
	for _, s := range hs.h.Status() {
		if s.Name == name {
			return s
		}
	}
	hs.t.Fatalf("no plugin %q in Status", name)
	return pluginhost.Status{}
}

// processGone reports whether pid no longer exists (the host reaped it).
func processGone(pid int) bool {
	return errors.Is(syscall.Kill(pid, 0), syscall.ESRCH)
}

// leakCheck fails the test if goroutines outlive it; call it first so it
// runs after the harness's cleanup.
func leakCheck(t *testing.T) {
	before := goleak.IgnoreCurrent()
	t.Cleanup(func() { goleak.VerifyNone(t, before) })
}
