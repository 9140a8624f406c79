package policy

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/fsnotify/fsnotify"
	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/hcl/v2"

	"github.com/lifeline-bot/lifeline/core/clock"
	"github.com/lifeline-bot/lifeline/core/events"
)

// DefaultDebounce is how long the Watcher waits after the last change to
// the policy file before it reloads, when WatcherOptions.Debounce is zero.
// It must outlast the gaps between the file system events of one save, or
// a reload could read a save half done. Those gaps are microseconds (an
// editor renames, writes, syncs and removes in a row): over hundreds of
// saves in each of the ways editors save (write then rename, in place,
// vim's rename and create) the events of one save spanned at most about
// 3 ms, on a loaded machine. 100 ms is thirty times that and keeps a save
// active well within a quarter second (bench's BenchmarkPolicyReload,
// docs/benchmarks.md).
const DefaultDebounce = 100 * time.Millisecond

// ErrWatcherClosed is returned by Start and Reload after Close.
var ErrWatcherClosed = errors.New("policy watcher closed")

// Generation is one loaded policy. Generations are immutable; the Watcher
// swaps the active one atomically.
type Generation struct {
	// Number counts generations from 1 (the initial load).
	Number uint64
	// Hash is the hex SHA-256 of the file's content.
	Hash string
	// Path is the policy file.
	Path string
	// Loaded is when this generation became active (Watcher's clock).
	Loaded time.Time
	// Policy is the compiled policy.
	Policy *Policy
	// Warnings are the non-fatal diagnostics of the load.
	Warnings hcl.Diagnostics

	source []byte // the file's content, to tell an emptied file apart
}

// WatcherOptions configures a Watcher. Only Path is required.
type WatcherOptions struct {
	// Path is the policy file to load and watch.
	Path string
	// Decode is passed to Decode on every load.
	Decode Options
	// Load, when set, turns the file's content into a policy instead of
	// Decode (and Decode options are not used): core/config's Decoder
	// puts a preset, environment variables and Go options around the file
	// this way, so every reload re-applies the same layers. It reports
	// problems as Decode does, in diagnostics; errors keep the active
	// generation. Default: nil, Decode(path, src, Decode).
	Load LoadFunc
	// Debounce is the quiet time after the last change before reloading.
	// Default: DefaultDebounce.
	Debounce time.Duration
	// Clock drives the debounce timer and the Loaded times.
	// Default: clock.Real.
	Clock clock.Clock
	// Events receives POLICY_RELOADED and POLICY_RELOAD_FAILED.
	// Default: events.Discard.
	Events events.Publisher
	// Logger gets one line per reload and the full diagnostics of a failed
	// one. Default: a null logger.
	Logger hclog.Logger
}

// LoadFunc turns a policy file's content into a compiled policy, as Decode
// does; see WatcherOptions.Load.
type LoadFunc func(path string, src []byte) (*Policy, hcl.Diagnostics)

// WatcherStats are the Watcher's counters.
type WatcherStats struct {
	// Reloads counts reloads that activated a new generation (the initial
	// load is not counted).
	Reloads uint64
	// Failures counts reloads that kept the old generation because the
	// file was unreadable or invalid.
	Failures uint64
	// Unchanged counts reloads that found the active content again.
	Unchanged uint64
	// LastSuccess is when the file was last read and found valid (a new
	// generation or unchanged content).
	LastSuccess time.Time
	// LastError is the error of the last reload; nil once one succeeds.
	LastError error
	// Generation and Hash describe the active generation.
	Generation uint64
	Hash       string
}

// Watcher keeps the policy of one file current: it watches the file's
// directory with fsnotify (editors save by writing a new file and renaming
// it over the old one, which a watch on the file itself would miss),
// debounces bursts of changes, reloads, and swaps the active Generation
// atomically. An invalid or missing file keeps the last good generation.
type Watcher struct {
	opts     WatcherOptions
	clk      clock.Clock
	pub      events.Publisher
	log      hclog.Logger
	path     string
	dir      string
	base     string
	debounce time.Duration

	current atomic.Pointer[Generation]

	mu          sync.Mutex // serialises reloads and guards the fields below
	reloads     uint64
	failures    uint64
	unchanged   uint64
	lastSuccess time.Time
	lastErr     error

	cbMu   sync.Mutex
	cbs    map[uint64]func(old, new *Generation)
	nextCB uint64

	lifeMu  sync.Mutex
	started bool
	closed  bool
	fsw     *fsnotify.Watcher
	done    chan struct{}
	wg      sync.WaitGroup
}

// NewWatcher loads the policy at opts.Path as generation 1. It fails with
// a *DiagnosticsError when the file cannot be read or is invalid. Call
// Start to begin watching.
func NewWatcher(opts WatcherOptions) (*Watcher, error) {
	if opts.Path == "" {
		return nil, errors.New("policy: NewWatcher: Path is required")
	}
	abs, err := filepath.Abs(opts.Path)
	if err != nil {
		return nil, fmt.Errorf("policy: NewWatcher: %w", err)
	}
	w := &Watcher{
		opts:     opts,
		clk:      clock.Or(opts.Clock),
		pub:      events.OrDiscard(opts.Events),
		log:      opts.Logger,
		path:     abs,
		dir:      filepath.Dir(abs),
		base:     filepath.Base(abs),
		debounce: opts.Debounce,
		cbs:      map[uint64]func(old, new *Generation){},
		done:     make(chan struct{}),
	}
	if w.log == nil {
		w.log = hclog.NewNullLogger()
	}
	if w.debounce <= 0 {
		w.debounce = DefaultDebounce
	}
	src, err := os.ReadFile(w.path)
	if err != nil {
		return nil, readError(w.path, err, nil)
	}
	p, diags := w.load(src)
	if diags.HasErrors() {
		return nil, &DiagnosticsError{Diagnostics: diags, Sources: map[string][]byte{w.path: src}}
	}
	now := w.clk.Now()
	w.current.Store(&Generation{Number: 1, Hash: hashOf(src), Path: w.path, Loaded: now, Policy: p, Warnings: diags, source: src})
	w.lastSuccess = now
	w.logWarnings(diags)
	return w, nil
}

// Current returns the active generation. It never returns nil.
func (w *Watcher) Current() *Generation { return w.current.Load() }

// Policy returns the active generation's policy.
func (w *Watcher) Policy() *Policy { return w.current.Load().Policy }

// OnReload registers fn to run after each new generation becomes active,
// with the previous and the new one, in the reloading goroutine and in
// registration order. The returned function unregisters fn. A panicking
// callback is recovered and logged.
func (w *Watcher) OnReload(fn func(old, new *Generation)) (cancel func()) {
	w.cbMu.Lock()
	defer w.cbMu.Unlock()
	w.nextCB++
	id := w.nextCB
	w.cbs[id] = fn
	return func() {
		w.cbMu.Lock()
		defer w.cbMu.Unlock()
		delete(w.cbs, id)
	}
}

// Stats returns a copy of the counters.
func (w *Watcher) Stats() WatcherStats {
	w.mu.Lock()
	defer w.mu.Unlock()
	g := w.current.Load()
	return WatcherStats{Reloads: w.reloads, Failures: w.failures, Unchanged: w.unchanged,
		LastSuccess: w.lastSuccess, LastError: w.lastErr, Generation: g.Number, Hash: g.Hash}
}

// Start begins watching the file's directory. It returns at once; changes
// are handled in a goroutine until Close.
func (w *Watcher) Start() error {
	w.lifeMu.Lock()
	defer w.lifeMu.Unlock()
	if w.closed {
		return ErrWatcherClosed
	}
	if w.started {
		return nil
	}
	fsw, err := fsnotify.NewWatcher()
	if err != nil {
		return fmt.Errorf("policy: watch %s: %w", w.dir, err)
	}
	if err := fsw.Add(w.dir); err != nil {
		fsw.Close()
		return fmt.Errorf("policy: watch %s: %w", w.dir, err)
	}
	w.fsw, w.started = fsw, true
	w.wg.Add(1)
	go w.loop()
	return nil
}

// Close stops watching and waits for the watching goroutine to end. A
// reload in progress finishes first.
func (w *Watcher) Close() error {
	w.lifeMu.Lock()
	if w.closed {
		w.lifeMu.Unlock()
		return nil
	}
	w.closed = true
	close(w.done)
	fsw := w.fsw
	w.lifeMu.Unlock()
	var err error
	if fsw != nil {
		err = fsw.Close()
	}
	w.wg.Wait()
	return err
}

// Reload reads the file now, as SIGHUP or an HTTP endpoint would ask. It
// returns the active generation afterwards, and an error (a
// *DiagnosticsError) when the file was unreadable or invalid, in which
// case the previous generation stays active.
func (w *Watcher) Reload() (*Generation, error) {
	w.lifeMu.Lock()
	closed := w.closed
	w.lifeMu.Unlock()
	if closed {
		return w.current.Load(), ErrWatcherClosed
	}
	return w.reload("requested")
}

func (w *Watcher) loop() {
	defer w.wg.Done()
	var timer clock.Timer
	var timerC <-chan time.Time
	for {
		select {
		case <-w.done:
			if timer != nil {
				timer.Stop()
			}
			return
		case ev, ok := <-w.fsw.Events:
			if !ok {
				return
			}
			if !w.relevant(ev) {
				continue
			}
			if timer == nil {
				timer = w.clk.NewTimer(w.debounce)
			} else {
				timer.Stop()
				timer.Reset(w.debounce)
			}
			timerC = timer.C()
		case err, ok := <-w.fsw.Errors:
			if !ok {
				return
			}
			w.log.Warn("policy watcher error", "path", w.path, "error", err)
		case <-timerC:
			timerC = nil
			_, _ = w.reload("file changed")
		}
	}
}

// relevant reports whether a directory event may change the policy: an
// event on the file's own name, or any event when the file is a symlink
// (Kubernetes ConfigMaps swap a ..data link, not the file).
func (w *Watcher) relevant(ev fsnotify.Event) bool {
	if filepath.Base(ev.Name) == w.base {
		return true
	}
	fi, err := os.Lstat(w.path)
	return err == nil && fi.Mode()&fs.ModeSymlink != 0
}

func (w *Watcher) reload(trigger string) (*Generation, error) {
	w.mu.Lock()
	old := w.current.Load()
	src, err := os.ReadFile(w.path)
	if err != nil {
		return w.failLocked(old, readError(w.path, err, old), nil)
	}
	if len(bytes.TrimSpace(src)) == 0 && len(bytes.TrimSpace(old.source)) > 0 {
		// An editor saving in place truncates the file before it writes
		// it: a reload that lands in between must not put the built-in
		// defaults in force. The write that follows triggers the next
		// reload.
		return w.failLocked(old, emptyError(w.path, old), src)
	}
	hash := hashOf(src)
	now := w.clk.Now()
	if hash == old.Hash {
		w.unchanged++
		w.lastSuccess, w.lastErr = now, nil
		w.mu.Unlock()
		w.log.Debug("policy unchanged", "path", w.path, "generation", old.Number, "trigger", trigger)
		return old, nil
	}
	p, diags := w.load(src)
	if diags.HasErrors() {
		return w.failLocked(old, &DiagnosticsError{Diagnostics: diags, Sources: map[string][]byte{w.path: src}}, src)
	}
	gen := &Generation{Number: old.Number + 1, Hash: hash, Path: w.path, Loaded: now, Policy: p, Warnings: diags, source: src}
	w.current.Store(gen)
	w.reloads++
	w.lastSuccess, w.lastErr = now, nil
	w.mu.Unlock()

	w.log.Info("policy reloaded", "path", w.path, "from", old.Number, "to", gen.Number, "hash", shortHash(hash), "trigger", trigger)
	w.logWarnings(diags)
	// Callbacks first: POLICY_RELOADED means every component that follows
	// the watcher already runs the new generation.
	w.callbacks(old, gen)
	w.pub.Publish(events.New(now, events.PolicyReload{Path: w.path, FromGeneration: old.Number, ToGeneration: gen.Number, Hash: hash}))
	return gen, nil
}

// load compiles the file's content with WatcherOptions.Load or Decode.
func (w *Watcher) load(src []byte) (p *Policy, diags hcl.Diagnostics) {
	if w.opts.Load == nil {
		return Decode(w.path, src, w.opts.Decode)
	}
	defer func() {
		// A loader is outside code: its panic is one more invalid edit,
		// not the end of the watcher (and of the running policy).
		if r := recover(); r != nil {
			p, diags = nil, hcl.Diagnostics{{Severity: hcl.DiagError, Summary: "Policy loader panicked",
				Detail: fmt.Sprintf("Loading %s panicked: %v.", w.path, r)}}
		}
	}()
	p, diags = w.opts.Load(w.path, src)
	if p == nil && !diags.HasErrors() {
		diags = append(diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Policy loader returned no policy",
			Detail: fmt.Sprintf("Loading %s returned neither a policy nor an error.", w.path)})
	}
	return p, diags
}

// failLocked records a failed reload; it releases w.mu.
func (w *Watcher) failLocked(old *Generation, err *DiagnosticsError, src []byte) (*Generation, error) {
	w.failures++
	w.lastErr = err
	now := w.clk.Now()
	w.mu.Unlock()

	lines := DiagnosticLines(errorsOnly(err.Diagnostics))
	w.log.Error("policy reload failed; keeping the active generation", "path", w.path, "generation", old.Number, "errors", len(lines))
	if w.log.IsError() {
		var b bytes.Buffer
		_ = WriteDiagnostics(&b, errorsOnly(err.Diagnostics), err.Sources, false)
		w.log.Error(b.String())
	}
	w.pub.Publish(events.New(now, events.PolicyReload{Failed: true, Path: w.path,
		FromGeneration: old.Number, ToGeneration: old.Number, Hash: old.Hash, Diagnostics: lines}))
	return old, err
}

func (w *Watcher) callbacks(old, gen *Generation) {
	w.cbMu.Lock()
	ids := make([]uint64, 0, len(w.cbs))
	for id := range w.cbs {
		ids = append(ids, id)
	}
	sort.Slice(ids, func(i, j int) bool { return ids[i] < ids[j] })
	fns := make([]func(old, new *Generation), len(ids))
	for i, id := range ids {
		fns[i] = w.cbs[id]
	}
	w.cbMu.Unlock()
	for _, fn := range fns {
		func() {
			defer func() {
				if r := recover(); r != nil {
					w.log.Error("policy OnReload callback panicked", "panic", fmt.Sprint(r))
				}
			}()
			fn(old, gen)
		}()
	}
}

func (w *Watcher) logWarnings(diags hcl.Diagnostics) {
	for _, l := range DiagnosticLines(diags) {
		w.log.Warn(l)
	}
}

func readError(path string, err error, old *Generation) *DiagnosticsError {
	detail := fmt.Sprintf("Reading %s failed: %v.", path, err)
	if errors.Is(err, fs.ErrNotExist) {
		detail = fmt.Sprintf("The policy file %s is missing (removed, or renamed away).", path)
	}
	if old != nil {
		detail += fmt.Sprintf(" Keeping generation %d (loaded %s, sha256 %s) until a valid file appears.",
			old.Number, old.Loaded.UTC().Format(time.RFC3339), shortHash(old.Hash))
	}
	return &DiagnosticsError{
		err: fmt.Errorf("policy: read %s: %w", path, err),
		Diagnostics: hcl.Diagnostics{{Severity: hcl.DiagError, Summary: "Cannot read policy file", Detail: detail,
			Subject: &hcl.Range{Filename: path, Start: hcl.InitialPos, End: hcl.InitialPos}}},
	}
}

func emptyError(path string, old *Generation) *DiagnosticsError {
	return &DiagnosticsError{
		err: fmt.Errorf("policy: %s is empty: %w", path, ErrInvalid),
		Diagnostics: hcl.Diagnostics{{Severity: hcl.DiagError, Summary: "Policy file is empty",
			Detail: fmt.Sprintf("%s is empty (an editor in the middle of a save?). Keeping generation %d (sha256 %s); "+
				"to go back to the built-in defaults, save a file holding only a comment.", path, old.Number, shortHash(old.Hash)),
			Subject: &hcl.Range{Filename: path, Start: hcl.InitialPos, End: hcl.InitialPos}}},
	}
}

func hashOf(src []byte) string {
	sum := sha256.Sum256(src)
	return hex.EncodeToString(sum[:])
}

func shortHash(h string) string {
	if len(h) > 12 {
		return h[:12]
	}
	return h
}
