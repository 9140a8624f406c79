package pluginhost

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	hclog "github.com/hashicorp/go-hclog"

	"github.com/lifeline-bot/lifeline/core/breaker"
	"github.com/lifeline-bot/lifeline/core/clock"
	"github.com/lifeline-bot/lifeline/core/events"
	"github.com/lifeline-bot/lifeline/core/metrics"
)

// Sentinel errors. Test them with errors.Is.
var (
	// ErrChecksumMismatch is returned when a plugin binary's SHA-256 is not
	// the one its plugin block pins; the plugin is not started.
	ErrChecksumMismatch = errors.New("plugin checksum mismatch")
	// ErrProtocolVersion is returned when a plugin speaks no protocol
	// version the host supports; the plugin is not restarted.
	ErrProtocolVersion = errors.New("plugin protocol version not supported")
	// ErrRefused is returned when a plugin started but cannot serve the
	// policy: it does not serve a check, action or strategy the policy
	// uses, or the policy's config does not fit its schema. The plugin is
	// stopped and not restarted until the policy changes.
	ErrRefused = errors.New("plugin refused")
	// ErrStartFailed is returned when a plugin process could not be
	// started or exited before the handshake; a restart is scheduled.
	ErrStartFailed = errors.New("plugin failed to start")
	// ErrBadResponse is returned when a plugin answered with something
	// that breaks the protocol (an invalid description, a NaN value).
	ErrBadResponse = errors.New("plugin returned an invalid response")
	// ErrNotRunning is returned by calls to a plugin that is not running
	// (starting, waiting to restart, failed, stopped or unknown).
	ErrNotRunning = errors.New("plugin not running")
	// ErrCallTimeout is returned when a call to a plugin did not finish
	// within Options.CallTimeout.
	ErrCallTimeout = errors.New("plugin call timed out")
	// ErrNotServed is returned when a plugin does not serve the check,
	// action or strategy asked for.
	ErrNotServed = errors.New("not served by the plugin")
	// ErrStopped is returned by Reconcile after Stop.
	ErrStopped = errors.New("plugin host stopped")
)

// HostServices is what plugins may ask of the rest of lifeline. The
// orchestrator implements it; every method must be safe for concurrent use
// and return promptly (RequestRecovery should start a recovery, not wait
// for it to finish).
type HostServices interface {
	// Snapshot returns the current metrics snapshot.
	Snapshot() metrics.Snapshot
	// RequestRecovery asks for a recovery of the connection: mode is
	// "resume", "reconnect", "reidentify" or "restart_client" (the
	// built-in strategies' names); reason names the plugin and says why.
	RequestRecovery(ctx context.Context, mode, reason string) error
	// SetFeature sets (on) or clears a feature flag.
	SetFeature(name string, on bool) error
}

// RestartPolicy says how a plugin that exited is restarted: after Initial,
// then Initial×Multiplier, ... up to Max between attempts, at most Limit
// times in a row. A plugin that ran for ResetAfter before exiting starts the
// count again. A plugin out of restarts is FAILED; after RetryFailed it is
// started again with a fresh count, and so on, like Kubernetes'
// CrashLoopBackOff or Nomad's restart mode "delay". The zero value is valid.
type RestartPolicy struct {
	// Initial is the wait before the first restart. Default: 1s.
	Initial time.Duration
	// Max caps the wait. Default: 1m.
	Max time.Duration
	// Multiplier grows the wait per consecutive restart. Default: 2.
	Multiplier float64
	// Limit is how many consecutive restarts are tried before the plugin
	// is marked failed. Default: 5; negative: never restart.
	Limit int
	// ResetAfter is how long a process must run for its exit to count as
	// a first failure again. Default: 1m.
	ResetAfter time.Duration
	// RetryFailed is how long a plugin that is FAILED because its
	// restarts ran out (Limit) waits before it is started again, with a
	// fresh restart count; if it fails again it goes through the backoff
	// and the limit again, then waits again. A policy change that touches
	// the plugin, Host.Restart and Host.Stop cancel a pending retry.
	// Failures a restart cannot cure (ErrChecksumMismatch,
	// ErrProtocolVersion, ErrRefused) are never retried, nor is anything
	// when Limit is negative. Default: 10m; negative: never (the plugin
	// stays FAILED until the policy changes or Restart is called).
	RetryFailed time.Duration
}

// Defaults of Options and RestartPolicy.
const (
	DefaultCallTimeout    = 5 * time.Second
	DefaultStartTimeout   = 10 * time.Second
	DefaultKillTimeout    = 2 * time.Second
	DefaultRestartInitial = time.Second
	DefaultRestartMax     = time.Minute
	DefaultRestartLimit   = 5
	DefaultResetAfter     = time.Minute
	DefaultRetryFailed    = 10 * time.Minute
	// DefaultBreakerFailures is the plugin breaker's FailureThreshold when
	// Options.Breaker leaves it zero.
	DefaultBreakerFailures = 3
	// DefaultBreakerOpen is the plugin breaker's OpenTimeout when
	// Options.Breaker leaves it zero.
	DefaultBreakerOpen = 30 * time.Second
	// DefaultLogRate is Options.LogRate's default: lines per second.
	DefaultLogRate = 100
	// DefaultLogBurst is Options.LogBurst's default: lines.
	DefaultLogBurst = 1000
)

// LogReportInterval is the least time between two reports of one plugin's
// dropped log lines (see Options.LogRate).
const LogReportInterval = 10 * time.Second

// Options configures a Host. The zero value is valid.
type Options struct {
	// Clock drives call deadlines, restart backoff and the breakers.
	// Default: clock.Real.
	Clock clock.Clock
	// Logger receives the host's lines and every plugin's output, each
	// plugin under its own name ("plugin.NAME"). Default: hclog's null
	// logger.
	Logger hclog.Logger
	// Events receives PLUGIN_STARTED, PLUGIN_EXITED, ERROR_OCCURRED (a
	// plugin call skipped or failed) and the plugin breakers'
	// CIRCUIT_BREAKER_TRIGGERED. Default: none.
	Events events.Publisher
	// Services is what plugins may call back into. Default: none; plugins
	// then get an error from Snapshot, RequestRecovery and SetFeature (Log
	// still works).
	Services HostServices
	// BaseDir resolves relative plugin paths: the policy file's directory.
	// Default: the working directory.
	BaseDir string
	// CallTimeout bounds every call to a plugin, on Clock. Default: 5s.
	CallTimeout time.Duration
	// StartTimeout bounds a plugin's start and handshake. It is real time
	// (go-plugin waits for the handshake line with a timer of its own).
	// Default: 10s.
	StartTimeout time.Duration
	// KillTimeout is how long stopping a plugin waits for it to exit
	// gracefully before killing its process group; real time, like
	// StartTimeout. Default: 2s.
	KillTimeout time.Duration
	// Restart is how exited plugins are restarted.
	Restart RestartPolicy
	// Breaker configures each plugin's circuit breaker (named
	// "plugin/NAME"); Name, Clock and Events are set by the host.
	// Defaults: FailureThreshold 3, OpenTimeout 30s, other fields as
	// breaker.Settings. When it opens, the plugin's process is killed
	// and restarted: a plugin whose calls keep failing or timing out is
	// presumed wedged.
	Breaker breaker.Settings
	// Env is the plugin processes' environment, without the variables
	// named in SecretEnv. Default: the host's variables named in
	// DefaultEnv (PATH, HOME, locale, ...), none of its others.
	Env []string
	// OnCall, when set, is told about every call into a plugin once it
	// ends: the plugin's name, the kind ("check", "action", "strategy")
	// and the call's error (nil on success). It runs on the calling
	// goroutine and must be quick (a metrics counter). Default: none.
	OnCall func(plugin, kind string, err error)
	// SecretEnv names environment variables never passed to plugins,
	// even when Env lists them. Default: DISCORD_TOKEN, LIFELINE_TOKEN
	// and LIFELINE_HTTP_TOKEN.
	SecretEnv []string
	// LogRate bounds the lines each plugin puts in Logger, in lines per
	// second on Clock: what it logs through the host (sdk Host.Log), the
	// lines of its standard error (hclog JSON lines and others) and what
	// it prints once go-plugin redirected os.Stdout and os.Stderr, all on
	// one budget per plugin, a token bucket of LogBurst lines. Lines the
	// Logger would discard for their level do not count. Lines over the
	// budget are dropped and counted: a WARN line of the host ("dropped N
	// log lines from plugin NAME") and a PLUGIN_LOGS_DROPPED event report
	// them when lines flow again, at most once per LogReportInterval, and
	// otherwise LogReportInterval after the first drop (and when the
	// plugin stops), so none is lost unsaid. go-plugin's own few lines
	// about the plugin's process count against the budget too (they come
	// through the same logger); the host's own lines about a plugin
	// (started, exited, restart scheduled, ...) are not limited. Default:
	// 100; negative: unlimited.
	LogRate float64
	// LogBurst is how many lines a plugin may log at once after a quiet
	// spell, above LogRate. Default: 1000.
	LogBurst int
}

func (o Options) withDefaults() Options {
	o.Clock = clock.Or(o.Clock)
	if o.Logger == nil {
		o.Logger = hclog.NewNullLogger()
	}
	o.Events = events.OrDiscard(o.Events)
	if o.CallTimeout <= 0 {
		o.CallTimeout = DefaultCallTimeout
	}
	if o.StartTimeout <= 0 {
		o.StartTimeout = DefaultStartTimeout
	}
	if o.KillTimeout <= 0 {
		o.KillTimeout = DefaultKillTimeout
	}
	r := &o.Restart
	if r.Initial <= 0 {
		r.Initial = DefaultRestartInitial
	}
	if r.Max <= 0 {
		r.Max = DefaultRestartMax
	}
	if r.Max < r.Initial {
		r.Max = r.Initial
	}
	if r.Multiplier < 1 {
		r.Multiplier = 2
	}
	if r.Limit == 0 {
		r.Limit = DefaultRestartLimit
	}
	if r.ResetAfter <= 0 {
		r.ResetAfter = DefaultResetAfter
	}
	if r.RetryFailed == 0 {
		r.RetryFailed = DefaultRetryFailed
	}
	if o.Breaker.FailureThreshold <= 0 {
		o.Breaker.FailureThreshold = DefaultBreakerFailures
	}
	if o.Breaker.OpenTimeout <= 0 {
		o.Breaker.OpenTimeout = DefaultBreakerOpen
	}
	if o.LogRate == 0 {
		o.LogRate = DefaultLogRate
	}
	if o.LogBurst <= 0 {
		o.LogBurst = DefaultLogBurst
	}
	if o.SecretEnv == nil {
		o.SecretEnv = []string{"DISCORD_TOKEN", "LIFELINE_TOKEN", "LIFELINE_HTTP_TOKEN"}
	}
	if o.Env == nil {
		o.Env = allowEnv(os.Environ(), DefaultEnv)
	}
	o.Env = filterEnv(o.Env, o.SecretEnv)
	return o
}

func filterEnv(env, secret []string) []string {
	out := make([]string, 0, len(env))
	for _, kv := range env {
		k, _, _ := strings.Cut(kv, "=")
		drop := false
		for _, s := range secret {
			if k == s {
				drop = true
				break
			}
		}
		if !drop {
			out = append(out, kv)
		}
	}
	return out
}

// backoff returns the wait before the n-th consecutive restart (n >= 1).
func (r RestartPolicy) backoff(n int) time.Duration {
	d := float64(r.Initial)
	for i := 1; i < n; i++ {
		d *= r.Multiplier
		if d >= float64(r.Max) {
			return r.Max
		}
	}
	return time.Duration(d)
}

// Host runs lifeline's plugins: it starts the processes a policy names,
// restarts them when they exit, bounds every call, and adapts the plugins to
// the health monitor, the degradation engine and the recovery engine.
// Create it with New; all methods are safe for concurrent use.
type Host struct {
	o       Options
	log     hclog.Logger
	timeout callTimeout // SetCallTimeout's bound (timeout_reload.go)

	mu      sync.Mutex
	plugins map[string]*managed
	stopped bool
	wg      sync.WaitGroup // watchers, restarts and starts in flight
}

// New returns a Host running no plugins.
func New(o Options) *Host {
	o = o.withDefaults()
	return &Host{o: o, log: o.Logger.Named("pluginhost"), plugins: map[string]*managed{}}
}

// Reconcile makes the running plugins match specs: it starts plugins that
// are new, stops plugins that are gone, restarts plugins whose binary,
// checksum or arguments changed, and reconfigures (without a restart)
// plugins whose config or uses changed. Plugins that did not change are
// left alone. Starts run concurrently and Reconcile waits for them, or for
// ctx; a start cut off by ctx goes on in the background.
//
// A plugin that cannot start does not stop the others or the host: its
// error is part of the joined error returned, it is reported with a
// PLUGIN_EXITED event, and it is restarted with backoff unless the failure
// is one a restart cannot cure (ErrChecksumMismatch, ErrProtocolVersion,
// ErrRefused).
func (h *Host) Reconcile(ctx context.Context, specs []Spec) error {
	seen := map[string]bool{}
	for _, s := range specs {
		if s.Name == "" {
			return fmt.Errorf("pluginhost: a plugin spec has no name")
		}
		if seen[s.Name] {
			return fmt.Errorf("pluginhost: plugin %q is given twice", s.Name)
		}
		seen[s.Name] = true
	}

	h.mu.Lock()
	if h.stopped {
		h.mu.Unlock()
		return ErrStopped
	}
	var stop []*managed
	var start []*managed
	var reconfigure []*managed
	for name, m := range h.plugins {
		if !seen[name] {
			stop = append(stop, m)
			delete(h.plugins, name)
		}
	}
	for _, s := range specs {
		s = h.resolve(s)
		m, ok := h.plugins[s.Name]
		switch {
		case !ok:
			m = newManaged(h, s)
			h.plugins[s.Name] = m
			start = append(start, m)
		case processChanged(m.currentSpec(), s):
			stop = append(stop, m)
			m = newManaged(h, s)
			h.plugins[s.Name] = m
			start = append(start, m)
		case !specEqual(m.currentSpec(), s):
			m.setSpec(s)
			reconfigure = append(reconfigure, m)
		}
	}
	h.wg.Add(len(start))
	h.mu.Unlock()

	for _, m := range stop {
		m.stop("removed or replaced by a policy reload")
	}
	errs := make(chan error, len(start)+len(reconfigure))
	for _, m := range start {
		go func() {
			defer h.wg.Done()
			errs <- m.start()
		}()
	}
	for _, m := range reconfigure {
		go func() { errs <- m.reconfigure() }()
	}
	var all []error
	for range len(start) + len(reconfigure) {
		select {
		case err := <-errs:
			if err != nil {
				all = append(all, err)
			}
		case <-ctx.Done():
			all = append(all, fmt.Errorf("pluginhost: reconcile: %w", ctx.Err()))
			return errors.Join(all...)
		}
	}
	return errors.Join(all...)
}

func specEqual(a, b Spec) bool {
	return !processChanged(a, b) && a.Name == b.Name && fmt.Sprint(a.Config) == fmt.Sprint(b.Config) &&
		fmt.Sprintf("%+v|%v|%v", a.Checks, a.Actions, a.Strategies) == fmt.Sprintf("%+v|%v|%v", b.Checks, b.Actions, b.Strategies)
}

// resolve makes a spec's path absolute against BaseDir.
func (h *Host) resolve(s Spec) Spec {
	if s.Path != "" && !filepath.IsAbs(s.Path) {
		base := h.o.BaseDir
		if base == "" {
			base = "."
		}
		if abs, err := filepath.Abs(filepath.Join(base, s.Path)); err == nil {
			s.Path = abs
		}
	}
	return s
}

// RestartPolicy returns how the host restarts exited plugins and retries
// failed ones: Options.Restart with its defaults filled in.
func (h *Host) RestartPolicy() RestartPolicy { return h.o.Restart }

// Restart stops the named plugin's process (if running) and starts it
// again at once, forgetting its restart count: the way out of the failed
// state without a policy change.
func (h *Host) Restart(ctx context.Context, name string) error {
	h.mu.Lock()
	old, ok := h.plugins[name]
	if !ok || h.stopped {
		h.mu.Unlock()
		return fmt.Errorf("pluginhost: restart %q: %w", name, ErrNotRunning)
	}
	m := newManaged(h, old.currentSpec())
	h.plugins[name] = m
	h.wg.Add(1)
	h.mu.Unlock()
	old.stop("restarted on request")
	done := make(chan error, 1)
	go func() {
		defer h.wg.Done()
		done <- m.start()
	}()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		return fmt.Errorf("pluginhost: restart %q: %w", name, ctx.Err())
	}
}

// Stop stops every plugin: pending restarts are cancelled and each process
// is asked to exit, then killed with its process group after KillTimeout.
// Stop returns when every process has exited and every goroutine of the
// host has ended. Later Reconcile calls fail with ErrStopped.
func (h *Host) Stop() {
	h.mu.Lock()
	h.stopped = true
	var all []*managed
	for name, m := range h.plugins {
		all = append(all, m)
		delete(h.plugins, name)
	}
	h.mu.Unlock()
	var wg sync.WaitGroup
	for _, m := range all {
		wg.Add(1)
		go func() {
			defer wg.Done()
			m.stop("host stopped")
		}()
	}
	wg.Wait()
	h.wg.Wait()
}

// Status returns every plugin's state, sorted by name.
func (h *Host) Status() []Status {
	h.mu.Lock()
	ms := make([]*managed, 0, len(h.plugins))
	for _, m := range h.plugins {
		ms = append(ms, m)
	}
	h.mu.Unlock()
	out := make([]Status, 0, len(ms))
	for _, m := range ms {
		out = append(out, m.status())
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// plugin returns the managed plugin called name, or nil.
func (h *Host) plugin(name string) *managed {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.plugins[name]
}

func (h *Host) publish(d events.Data) {
	h.o.Events.Publish(events.New(h.o.Clock.Now(), d))
}

// snapshot returns the host's current snapshot, or the zero Snapshot
// without Services.
func (h *Host) snapshot() metrics.Snapshot {
	if h.o.Services == nil {
		return metrics.Snapshot{}
	}
	return h.o.Services.Snapshot()
}
