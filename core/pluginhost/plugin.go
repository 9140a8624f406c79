package pluginhost

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	hclog "github.com/hashicorp/go-hclog"
	plugin "github.com/hashicorp/go-plugin"
	"github.com/hashicorp/go-plugin/runner"

	"github.com/lifeline-bot/lifeline/core/breaker"
	"github.com/lifeline-bot/lifeline/core/clock"
	"github.com/lifeline-bot/lifeline/core/events"
	"github.com/lifeline-bot/lifeline/sdk"
	pb "github.com/lifeline-bot/lifeline/sdk/proto"
)

// State is where a plugin is in its life.
type State int

// The plugin states.
const (
	// Starting: the process is being started and shaken hands with.
	Starting State = iota
	// Running: the process serves calls.
	Running
	// Restarting: the process exited; a restart is scheduled.
	Restarting
	// Failed: the plugin is not running. Out of restarts, it is started
	// again after RestartPolicy.RetryFailed (Status.Retry says when);
	// after a checksum mismatch, a protocol version or a refusal, only a
	// policy change or Restart starts it again.
	Failed
	// Stopped: the host stopped the plugin.
	Stopped
)

var stateNames = [...]string{"STARTING", "RUNNING", "RESTARTING", "FAILED", "STOPPED"}

// String returns the state's upper-case name, e.g. "RUNNING".
func (s State) String() string {
	if s < 0 || int(s) >= len(stateNames) {
		return fmt.Sprintf("State(%d)", int(s))
	}
	return stateNames[s]
}

// MarshalText renders the state as its name (for JSON).
func (s State) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// States returns every state's name, in order (STARTING ... STOPPED).
func States() []string { return append([]string(nil), stateNames[:]...) }

// Status is one plugin as the host sees it.
type Status struct {
	Name  string `json:"name"`
	Path  string `json:"path"`
	State State  `json:"state"`
	// PID is the running process's id; 0 when none runs.
	PID int `json:"pid,omitempty"`
	// Protocol is the negotiated protocol version.
	Protocol int `json:"protocol,omitempty"`
	// Restarts counts consecutive restarts (reset after a long run).
	Restarts int `json:"restarts"`
	// LastExit says how the last process ended; LastError is the last
	// start or refusal error.
	LastExit  string `json:"last_exit,omitempty"`
	LastError string `json:"last_error,omitempty"`
	// Retry is when a plugin FAILED for running out of restarts is
	// started again (RestartPolicy.RetryFailed); zero when no retry is
	// pending.
	Retry time.Time `json:"retry,omitzero"`
	// Since is when the plugin entered State.
	Since time.Time `json:"since"`
	// Serves lists what the running process serves, and SDKVersion the
	// version of the sdk it was built with.
	Serves     []sdk.Descriptor `json:"serves,omitempty"`
	SDKVersion string           `json:"sdk_version,omitempty"`
	// Breaker is the plugin breaker's state.
	Breaker string `json:"breaker"`
}

// process is one plugin process.
type process struct {
	client    *plugin.Client
	runner    *procRunner
	remote    *sdk.Remote
	version   int
	startedAt time.Time
	killedFor atomic.Pointer[string] // why the host killed it, if it did
	hostID    atomic.Uint32          // broker id of the host services
	released  sync.Once
}

// release lets go-plugin close its side of the process (connections,
// broker) and, if the process still runs, ask it to exit, waiting up to
// go-plugin's grace period before it kills it. Concurrent and later calls
// wait for the first.
func (p *process) release() {
	p.released.Do(p.client.Kill)
}

// managed is one plugin and its successive processes.
type managed struct {
	h   *Host
	log hclog.Logger // the host's lines about the plugin
	// lim is the plugin's log budget (Options.LogRate), shared by its
	// successive processes; plog and pluginLog are "plugin.NAME" and
	// "plugin" (for go-plugin) within it, for the lines the plugin makes.
	lim       *logLimiter
	plog      hclog.Logger
	pluginLog hclog.Logger
	brk       *breaker.Breaker

	mu        sync.Mutex
	spec      Spec
	state     State
	since     time.Time
	proc      *process
	desc      []sdk.Descriptor
	sdkVer    string
	restarts  int
	lastExit  string
	lastErr   string
	timer     clock.Timer // the pending restart or retry
	timerSeq  uint64      // bumped whenever timer is armed or cancelled
	retryAt   time.Time   // when the pending retry of a FAILED plugin fires
	stopping  bool
	stoppedCh chan struct{} // closed when stop has finished
}

func newManaged(h *Host, s Spec) *managed {
	m := &managed{h: h, spec: s, log: h.o.Logger.Named("plugin." + s.Name), since: h.o.Clock.Now(),
		stoppedCh: make(chan struct{})}
	m.lim = newLogLimiter(h.o, &h.wg, m.reportDroppedLogs)
	m.plog = &limitedLogger{Logger: m.log, lim: m.lim}
	m.pluginLog = &limitedLogger{Logger: h.o.Logger.Named("plugin"), lim: m.lim}
	bs := h.o.Breaker
	bs.Name = "plugin/" + s.Name
	bs.Clock = h.o.Clock
	bs.Events = h.o.Events
	m.brk = breaker.New(bs)
	m.brk.OnStateChange(func(t breaker.Transition) {
		if t.To == breaker.StateOpen {
			m.kill(fmt.Sprintf("unresponsive: its breaker opened (%s)", t.Reason))
		}
	})
	return m
}

func (m *managed) currentSpec() Spec {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.spec
}

func (m *managed) setSpec(s Spec) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.spec = s
}

func (m *managed) setState(s State) {
	m.state = s
	m.since = m.h.o.Clock.Now()
}

// start starts a process for the plugin. It is the only place a process is
// made; a failure is recorded, published and (when a restart can cure it)
// followed by a restart with backoff.
func (m *managed) start() error {
	m.mu.Lock()
	if m.stopping {
		m.mu.Unlock()
		return nil
	}
	spec := m.spec
	m.setState(Starting)
	m.mu.Unlock()

	proc, desc, ver, err := m.launch(spec)
	if err != nil {
		m.startFailed(spec, err)
		return fmt.Errorf("pluginhost: plugin %q: %w", spec.Name, err)
	}

	m.mu.Lock()
	if m.stopping {
		m.mu.Unlock()
		m.closeProcess(proc, "stopped while starting")
		return nil
	}
	m.proc, m.desc, m.sdkVer = proc, desc, ver
	m.lastErr = ""
	m.setState(Running)
	m.mu.Unlock()
	m.brk.ForceClose()

	m.h.publish(events.Plugin{Name: spec.Name, Path: spec.Path, PID: proc.runner.PID(), Version: proc.version})
	m.log.Info("plugin started", "path", spec.Path, "pid", proc.runner.PID(), "protocol", proc.version, "serves", describe(desc))
	m.h.wg.Add(1)
	go m.watch(proc)
	return nil
}

// launch starts, shakes hands with, describes, checks and configures one
// process.
func (m *managed) launch(spec Spec) (*process, []sdk.Descriptor, string, error) {
	if spec.Path == "" {
		return nil, nil, "", fmt.Errorf("%w: no path", ErrStartFailed)
	}
	if _, err := os.Stat(spec.Path); err != nil {
		return nil, nil, "", fmt.Errorf("%w: %v", ErrStartFailed, err)
	}
	if spec.SHA256 != "" {
		if err := verifyChecksum(spec.Path, spec.SHA256); err != nil {
			return nil, nil, "", err
		}
	}
	var pr *procRunner
	tail := &tailBuffer{max: 2048}
	client := plugin.NewClient(&plugin.ClientConfig{
		HandshakeConfig:  sdk.Handshake,
		VersionedPlugins: sdk.VersionedPlugins(sdk.Plugins{}),
		// go-plugin hands RunnerFunc a command holding only the
		// environment it adds (magic cookie, protocol versions, mTLS
		// certificate, socket directory); the binary, arguments and the
		// filtered host environment are ours.
		RunnerFunc: func(_ hclog.Logger, c *exec.Cmd, _ string) (runner.Runner, error) {
			cmd := exec.Command(spec.Path, spec.Args...)
			cmd.Env = append(append([]string(nil), m.h.o.Env...), c.Env...)
			r, err := newProcRunner(spec.Name, cmd)
			if r != nil {
				r.forwarded = tail
			}
			pr = r
			return r, err
		},
		SkipHostEnv:      true,
		AllowedProtocols: []plugin.Protocol{plugin.ProtocolGRPC},
		AutoMTLS:         true,
		GRPCDialOptions:  dialOptions,
		StartTimeout:     m.h.o.StartTimeout,
		// go-plugin logs the process's standard error under
		// "plugin.NAME" (the runner's Name) and its own lines under
		// "plugin" with plugin=NAME: all within the plugin's log budget,
		// like what it prints after go-plugin redirected its output.
		Logger:     m.pluginLog,
		SyncStdout: &lineLogger{log: m.plog.Info},
		SyncStderr: &lineLogger{log: m.plog.Info, tail: tail},
	})

	proto, err := client.Client()
	if err != nil {
		client.Kill()
		return nil, nil, "", m.classifyStartError(err, pr)
	}
	proc := &process{client: client, runner: pr, version: client.NegotiatedVersion(), startedAt: m.h.o.Clock.Now()}
	fail := func(err error) (*process, []sdk.Descriptor, string, error) {
		m.closeProcess(proc, "refused")
		return nil, nil, "", err
	}
	raw, err := proto.Dispense(sdk.PluginName)
	if err != nil {
		return fail(fmt.Errorf("%w: %v", ErrStartFailed, err))
	}
	remote, ok := raw.(*sdk.Remote)
	if !ok {
		return fail(fmt.Errorf("%w: dispensed %T", ErrStartFailed, raw))
	}
	proc.remote = remote

	var resp *pb.DescribeResponse
	err = m.withDeadline(context.Background(), func(ctx context.Context) error {
		var err error
		resp, err = remote.Plugin.Describe(ctx, &pb.DescribeRequest{})
		return err
	})
	if err != nil {
		return fail(fmt.Errorf("%w: describe: %v", ErrStartFailed, err))
	}
	desc, err := checkDescriptors(resp)
	if err != nil {
		return fail(err)
	}
	if err := checkUses(spec, desc); err != nil {
		return fail(err)
	}
	if err := m.configure(proc, spec, true); err != nil {
		return fail(fmt.Errorf("%w: configure: %v", ErrStartFailed, err))
	}
	return proc, desc, resp.GetSdkVersion(), nil
}

// classifyStartError turns go-plugin's start error into ours, with the exit
// status and last output of a process that died.
func (m *managed) classifyStartError(err error, pr *procRunner) error {
	msg := err.Error()
	first, _, _ := strings.Cut(msg, "\n")
	switch {
	case strings.Contains(strings.ToLower(msg), "incompatible api version"):
		return fmt.Errorf("%w: %s", ErrProtocolVersion, msg)
	case strings.HasPrefix(first, "Unrecognized remote plugin message: ") && strings.TrimSpace(strings.TrimPrefix(first, "Unrecognized remote plugin message: ")) != "":
		return fmt.Errorf("%w: it did not shake hands (%s): is it a lifeline plugin?", ErrStartFailed, first)
	}
	if pr != nil {
		select {
		case <-pr.exited:
			return fmt.Errorf("%w: it exited before the handshake: %s", ErrStartFailed, pr.exitReason())
		case <-time.After(100 * time.Millisecond):
		}
	}
	return fmt.Errorf("%w: %s", ErrStartFailed, msg)
}

// checkDescriptors validates what a plugin said it serves.
func checkDescriptors(resp *pb.DescribeResponse) ([]sdk.Descriptor, error) {
	if len(resp.GetPlugins()) == 0 {
		return nil, fmt.Errorf("%w: it serves nothing", ErrBadResponse)
	}
	var out []sdk.Descriptor
	seen := map[string]bool{}
	for _, p := range resp.GetPlugins() {
		d, err := sdk.DescriptorFromProto(p)
		if err != nil {
			return nil, fmt.Errorf("%w: %v", ErrBadResponse, err)
		}
		key := string(d.Kind) + "/" + d.Name
		if seen[key] {
			return nil, fmt.Errorf("%w: two %s plugins named %q", ErrBadResponse, d.Kind, d.Name)
		}
		seen[key] = true
		out = append(out, d)
	}
	return out, nil
}

// checkUses checks that the plugin serves what the spec uses and that the
// policy's config fits the schemas.
func checkUses(spec Spec, desc []sdk.Descriptor) error {
	var problems []string
	var union []sdk.ConfigField
	names := map[string]bool{}
	for _, d := range desc {
		for _, f := range d.Config {
			if !names[f.Name] {
				names[f.Name] = true
				union = append(union, sdk.ConfigField{Name: f.Name, Type: f.Type})
			}
		}
	}
	if err := sdk.ValidateConfig(union, spec.Config); err != nil {
		problems = append(problems, "plugin block config: "+strings.TrimPrefix(err.Error(), sdk.ErrConfig.Error()+": "))
	}
	for _, c := range spec.Checks {
		d, err := resolveCheck(c.Name, desc)
		if err != nil {
			problems = append(problems, err.Error())
			continue
		}
		// The check sees the plugin block's config with its own over it:
		// required keys may come from either, and the check's schema
		// types both, but only the check block's own keys must be the
		// check's (the plugin block's may be for another plugin of the
		// binary).
		seen := sdk.Config{}
		for k, v := range sdk.Config(spec.Config).Merge(c.Config) {
			if _, own := c.Config[k]; own || declares(d, k) {
				seen[k] = v
			}
		}
		if err := sdk.ValidateConfig(d.Config, seen); err != nil {
			problems = append(problems, fmt.Sprintf("check %q config: %s", c.Name, strings.TrimPrefix(err.Error(), sdk.ErrConfig.Error()+": ")))
		}
	}
	for _, a := range spec.Actions {
		if _, ok := find(desc, sdk.KindDegradationAction, a); !ok {
			problems = append(problems, fmt.Sprintf("no degradation action %q (serves: %s)", a, names2(desc, sdk.KindDegradationAction)))
		}
	}
	for _, s := range spec.Strategies {
		if _, ok := find(desc, sdk.KindRecoveryStrategy, s); !ok {
			problems = append(problems, fmt.Sprintf("no recovery strategy %q (serves: %s)", s, names2(desc, sdk.KindRecoveryStrategy)))
		}
	}
	if len(problems) > 0 {
		return fmt.Errorf("%w: %s", ErrRefused, strings.Join(problems, "; "))
	}
	return nil
}

func declares(d sdk.Descriptor, key string) bool {
	for _, f := range d.Config {
		if f.Name == key {
			return true
		}
	}
	return false
}

// resolveCheck picks the health check a check block named block runs: the
// one named like the block, or the plugin's only health check.
func resolveCheck(block string, desc []sdk.Descriptor) (sdk.Descriptor, error) {
	if d, ok := find(desc, sdk.KindHealthCheck, block); ok {
		return d, nil
	}
	var checks []sdk.Descriptor
	for _, d := range desc {
		if d.Kind == sdk.KindHealthCheck {
			checks = append(checks, d)
		}
	}
	if len(checks) == 1 {
		return checks[0], nil
	}
	if len(checks) == 0 {
		return sdk.Descriptor{}, fmt.Errorf("check %q: %w: the plugin serves no health check", block, ErrNotServed)
	}
	return sdk.Descriptor{}, fmt.Errorf("check %q: %w: the plugin serves several health checks (%s); name the check block after one of them",
		block, ErrNotServed, names2(desc, sdk.KindHealthCheck))
}

func find(desc []sdk.Descriptor, k sdk.Kind, name string) (sdk.Descriptor, bool) {
	for _, d := range desc {
		if d.Kind == k && d.Name == name {
			return d, true
		}
	}
	return sdk.Descriptor{}, false
}

func names2(desc []sdk.Descriptor, k sdk.Kind) string {
	var n []string
	for _, d := range desc {
		if d.Kind == k {
			n = append(n, d.Name)
		}
	}
	if len(n) == 0 {
		return "none"
	}
	sort.Strings(n)
	return strings.Join(n, ", ")
}

func describe(desc []sdk.Descriptor) string {
	var parts []string
	for _, d := range desc {
		parts = append(parts, fmt.Sprintf("%s %s@%s", d.Kind, d.Name, d.Version))
	}
	return strings.Join(parts, ", ")
}

// configure sends the plugin block's config and, on the first call for a
// process, the broker id of the host services.
func (m *managed) configure(proc *process, spec Spec, first bool) error {
	cfg, err := json.Marshal(spec.Config)
	if err != nil {
		return fmt.Errorf("plugin config is not JSON-shaped: %w", err)
	}
	req := &pb.ConfigureRequest{Name: spec.Name, ConfigJson: cfg}
	if first {
		req.HostBrokerId = proc.remote.ServeHost(&services{h: m.h, name: spec.Name, log: m.plog})
		proc.hostID.Store(req.HostBrokerId)
	} else {
		req.HostBrokerId = proc.hostID.Load()
	}
	return m.withDeadline(context.Background(), func(ctx context.Context) error {
		_, err := proc.remote.Plugin.Configure(ctx, req)
		return err
	})
}

// reconfigure applies a changed spec (config, uses) to the running
// process without restarting it. A FAILED plugin (refused, or out of
// restarts) is started again at once, its pending retry cancelled: the
// change may be its fix.
func (m *managed) reconfigure() error {
	m.mu.Lock()
	proc, spec, desc, state := m.proc, m.spec, m.desc, m.state
	if proc == nil && state == Failed && !m.stopping {
		m.cancelTimerLocked() // a pending retry: the change may be the fix, start now
		m.restarts = 0
		m.setState(Starting) // claimed: a concurrent reconfigure or retry leaves it alone
		m.h.wg.Add(1)
		m.mu.Unlock()
		defer m.h.wg.Done()
		return m.start()
	}
	m.mu.Unlock()
	if proc == nil {
		return nil // a start or restart in flight uses the new spec
	}
	if err := checkUses(spec, desc); err != nil {
		m.refuse(proc, spec, err)
		return fmt.Errorf("pluginhost: plugin %q: %w", spec.Name, err)
	}
	if err := m.configure(proc, spec, false); err != nil {
		return fmt.Errorf("pluginhost: plugin %q: reconfigure: %w", spec.Name, err)
	}
	m.log.Info("plugin reconfigured")
	return nil
}

// refuse stops a running process that can no longer serve the policy and
// marks the plugin failed, without a restart.
func (m *managed) refuse(proc *process, spec Spec, err error) {
	m.mu.Lock()
	if m.proc == proc {
		m.proc = nil // its watcher then leaves the exit alone
	}
	m.lastErr = err.Error()
	m.setState(Failed)
	m.mu.Unlock()
	m.log.Error("plugin refused", "error", err)
	m.closeProcess(proc, "refused: "+err.Error())
	m.h.publish(events.Error{Source: "plugin/" + spec.Name, Kind: "plugin", Message: err.Error(), Fatal: true})
	m.h.publish(events.Plugin{Exited: true, Name: spec.Name, Path: spec.Path, PID: proc.runner.PID(), Reason: "refused: " + err.Error()})
}

// startFailed records a failed start and schedules a restart when one can
// help.
func (m *managed) startFailed(spec Spec, err error) {
	permanent := errors.Is(err, ErrChecksumMismatch) || errors.Is(err, ErrProtocolVersion) || errors.Is(err, ErrRefused)
	m.log.Error("plugin failed to start", "path", spec.Path, "error", err)
	m.mu.Lock()
	m.lastErr = err.Error()
	m.mu.Unlock()
	m.h.publish(events.Error{Source: "plugin/" + spec.Name, Kind: "plugin", Message: err.Error(), Fatal: permanent})
	if permanent {
		m.mu.Lock()
		m.setState(Failed)
		m.mu.Unlock()
		m.h.publish(events.Plugin{Exited: true, Name: spec.Name, Path: spec.Path, Reason: "not started: " + err.Error()})
		return
	}
	m.scheduleRestart(spec, "start failed: "+err.Error(), 0)
}

// watch waits for the process to exit and handles it.
func (m *managed) watch(proc *process) {
	defer m.h.wg.Done()
	<-proc.runner.exited
	reason := proc.runner.exitReason()
	if k := proc.killedFor.Load(); k != nil {
		reason = *k + "; " + reason
	}
	// Release go-plugin's side of the dead process (connections, broker).
	proc.release()

	m.mu.Lock()
	if m.proc != proc {
		m.mu.Unlock()
		return
	}
	m.proc = nil
	stopping := m.stopping
	spec := m.spec
	m.mu.Unlock()
	if stopping {
		return // stop logs and publishes
	}
	m.log.Warn("plugin exited", "pid", proc.runner.PID(), "reason", reason)
	m.scheduleRestart(spec, reason, m.h.o.Clock.Since(proc.startedAt))
}

// scheduleRestart publishes PLUGIN_EXITED and, within the restart limit,
// arms the restart timer; ran is how long the last process lived.
func (m *managed) scheduleRestart(spec Spec, reason string, ran time.Duration) {
	rp := m.h.o.Restart
	m.mu.Lock()
	if m.stopping {
		m.mu.Unlock()
		return
	}
	m.lastExit = reason
	if ran >= rp.ResetAfter {
		m.restarts = 0
	}
	m.restarts++
	n := m.restarts
	if rp.Limit < 0 || n > rp.Limit {
		m.setState(Failed)
		why := reason
		var retry time.Time
		if rp.Limit >= 0 {
			why = fmt.Sprintf("%s; giving up after %d restarts", reason, rp.Limit)
			if rp.RetryFailed > 0 {
				retry = m.since.Add(rp.RetryFailed)
				m.retryAt = retry
				m.armLocked(rp.RetryFailed)
				why += fmt.Sprintf("; retrying in %v (at %s)", rp.RetryFailed, retry.UTC().Format(time.RFC3339))
			}
		}
		m.mu.Unlock()
		m.h.publish(events.Plugin{Exited: true, Name: spec.Name, Path: spec.Path, Reason: why})
		if retry.IsZero() {
			m.log.Error("plugin failed: not restarted again", "reason", why)
		} else {
			m.log.Error("plugin failed: out of restarts, retrying later", "reason", reason, "restarts", rp.Limit,
				"retry_in", rp.RetryFailed, "retry_at", retry.UTC().Format(time.RFC3339))
		}
		return
	}
	delay := rp.backoff(n)
	m.setState(Restarting)
	m.armLocked(delay)
	m.mu.Unlock()
	m.h.publish(events.Plugin{Exited: true, Name: spec.Name, Path: spec.Path, Reason: reason, Restart: true})
	m.log.Info("plugin restart scheduled", "in", delay, "attempt", n)
}

// armLocked arms the timer to start the plugin again after d, unless it
// is cancelled or re-armed first (cancelTimerLocked, stop). m.mu must be
// held. A retry (retryAt set) starts with a fresh restart count.
func (m *managed) armLocked(d time.Duration) {
	m.timerSeq++
	seq := m.timerSeq
	m.h.wg.Add(1)
	m.timer = m.h.o.Clock.AfterFunc(d, func() {
		defer m.h.wg.Done()
		m.mu.Lock()
		if m.timerSeq != seq || m.stopping {
			m.mu.Unlock() // cancelled after it fired
			return
		}
		m.timer = nil
		retry := !m.retryAt.IsZero()
		if retry {
			m.retryAt = time.Time{}
			m.restarts = 0
			// Claimed under the lock: a reconfigure from now on sees a
			// start in flight, not a FAILED plugin to start itself.
			m.setState(Starting)
		}
		m.mu.Unlock()
		if retry {
			m.log.Info("retrying a plugin that ran out of restarts", "after", d)
		}
		_ = m.start()
	})
}

// cancelTimerLocked cancels a pending restart or retry. m.mu must be held.
func (m *managed) cancelTimerLocked() {
	m.timerSeq++
	if m.timer != nil {
		if m.timer.Stop() {
			m.h.wg.Done() // its callback will not run
		}
		m.timer = nil
	}
	m.retryAt = time.Time{}
}

// reportDroppedLogs says that n lines of the plugin's were dropped over its
// log budget: a WARN line of the host's (not limited) and a
// PLUGIN_LOGS_DROPPED event, which lifeline_plugin_log_lines_dropped_total
// counts.
func (m *managed) reportDroppedLogs(n int) {
	name := m.currentSpec().Name
	m.log.Warn(fmt.Sprintf("dropped %d log lines from plugin %s", n, name),
		"limit", fmt.Sprintf("%g lines/s, bursts of %d", m.h.o.LogRate, m.h.o.LogBurst))
	m.h.publish(events.PluginLogs{Name: name, Dropped: n})
}

// kill kills the running process (if any) for reason; its exit is then
// handled as a crash and restarted.
func (m *managed) kill(reason string) {
	m.mu.Lock()
	proc := m.proc
	m.mu.Unlock()
	if proc == nil {
		return
	}
	proc.killedFor.CompareAndSwap(nil, &reason)
	m.log.Warn("killing plugin", "pid", proc.runner.PID(), "reason", reason)
	_ = proc.runner.Kill(context.Background())
}

// closeProcess ends a process gracefully, or kills its group after
// KillTimeout (real time).
func (m *managed) closeProcess(proc *process, why string) {
	proc.killedFor.CompareAndSwap(nil, &why)
	done := make(chan struct{})
	go func() {
		proc.release()
		close(done)
	}()
	t := time.NewTimer(m.h.o.KillTimeout)
	defer t.Stop()
	select {
	case <-done:
		return
	case <-t.C:
	}
	if proc.runner != nil {
		_ = proc.runner.Kill(context.Background())
	}
	<-done
}

// stop ends the plugin for good: no restart, the process closed, the
// watcher finished.
func (m *managed) stop(why string) {
	m.mu.Lock()
	if m.stopping {
		m.mu.Unlock()
		<-m.stoppedCh
		return
	}
	m.stopping = true
	m.cancelTimerLocked()
	proc := m.proc
	spec := m.spec
	m.mu.Unlock()
	if proc != nil {
		m.closeProcess(proc, why)
		<-proc.runner.exited
		m.h.publish(events.Plugin{Exited: true, Name: spec.Name, Path: spec.Path, PID: proc.runner.PID(), Reason: why})
		m.log.Info("plugin stopped", "reason", why)
	}
	m.lim.close()
	m.mu.Lock()
	m.setState(Stopped)
	m.mu.Unlock()
	close(m.stoppedCh)
}

func (m *managed) status() Status {
	m.mu.Lock()
	defer m.mu.Unlock()
	s := Status{Name: m.spec.Name, Path: m.spec.Path, State: m.state, Restarts: m.restarts, LastExit: m.lastExit,
		LastError: m.lastErr, Retry: m.retryAt, Since: m.since, Breaker: m.brk.State().String()}
	if m.proc != nil {
		s.PID = m.proc.runner.PID()
		s.Protocol = m.proc.version
		s.Serves = append([]sdk.Descriptor(nil), m.desc...)
		s.SDKVersion = m.sdkVer
	}
	return s
}

// unavailable explains why the plugin cannot take a call now.
func (m *managed) unavailableLocked() error {
	why := m.state.String()
	if !m.retryAt.IsZero() {
		why += ", retrying at " + m.retryAt.UTC().Format(time.RFC3339)
	}
	switch {
	case m.state == Restarting && m.lastExit != "":
		why = "restarting after: " + m.lastExit
	case m.lastErr != "":
		why += ": " + m.lastErr
	case m.lastExit != "":
		why += " (last exit: " + m.lastExit + ")"
	}
	return fmt.Errorf("plugin %q %w: %s", m.spec.Name, ErrNotRunning, why)
}

// withDeadline runs fn with a context that ends after the call timeout in
// force (Host.CallTimeout) on the host's clock (or when ctx ends). A call
// cut off by the timeout returns an error wrapping ErrCallTimeout.
func (m *managed) withDeadline(ctx context.Context, fn func(ctx context.Context) error) error {
	cctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var timedOut atomic.Bool
	timeout := m.h.CallTimeout()
	t := m.h.o.Clock.AfterFunc(timeout, func() {
		timedOut.Store(true)
		cancel()
	})
	defer t.Stop()
	err := fn(cctx)
	switch {
	case err == nil:
		return nil
	case timedOut.Load():
		return fmt.Errorf("%w after %v", ErrCallTimeout, timeout)
	case ctx.Err() != nil:
		return ctx.Err()
	}
	return err
}

// call runs one call on the running process behind the plugin's breaker
// and deadline. fn returns a protocol or transport error (which counts
// against the breaker); the plugin's own verdicts travel in fn's closure.
func (m *managed) call(ctx context.Context, what string, fn func(ctx context.Context, r *sdk.Remote) error) error {
	m.mu.Lock()
	proc := m.proc
	if proc == nil {
		err := m.unavailableLocked()
		m.mu.Unlock()
		return err
	}
	name := m.spec.Name
	m.mu.Unlock()
	err := m.brk.Execute(ctx, func(ctx context.Context) error {
		return m.withDeadline(ctx, func(ctx context.Context) error { return fn(ctx, proc.remote) })
	})
	if m.h.o.OnCall != nil {
		m.h.o.OnCall(name, callKind(what), err)
	}
	switch {
	case err == nil:
		return nil
	case errors.Is(err, breaker.ErrOpen), errors.Is(err, breaker.ErrTooManyProbes):
		return fmt.Errorf("plugin %q %s: %w: %v", name, what, ErrNotRunning, err)
	case errors.Is(err, context.Canceled):
		return fmt.Errorf("plugin %q %s: %w", name, what, err)
	}
	if why := proc.exitDuringCall(ctx, err); why != "" {
		return fmt.Errorf("plugin %q %s: the plugin exited during the call: %s: %w", name, what, why, err)
	}
	return fmt.Errorf("plugin %q %s: %w", name, what, err)
}

// callKind is the kind of plugin a call went to, from its description
// ("check NAME", "apply NAME", "recover NAME", ...).
func callKind(what string) string {
	verb, _, _ := strings.Cut(what, " ")
	switch verb {
	case "check":
		return "check"
	case "apply", "rollback":
		return "action"
	case "applies", "recover":
		return "strategy"
	}
	return verb
}
