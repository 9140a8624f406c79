package pluginhost

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"sync"

	"github.com/lifeline-bot/lifeline/core/events"
	"github.com/lifeline-bot/lifeline/core/health"
	"github.com/lifeline-bot/lifeline/core/metrics"
	"github.com/lifeline-bot/lifeline/core/policy"
	"github.com/lifeline-bot/lifeline/core/recovery"
	"github.com/lifeline-bot/lifeline/sdk"
	pb "github.com/lifeline-bot/lifeline/sdk/proto"
)

// maxMessage bounds the text a plugin result carries into lifeline.
const maxMessage = 1024

func clipMessage(s string) string {
	if len(s) > maxMessage {
		return s[:maxMessage] + "..."
	}
	return s
}

// Checker is a plugin's health check as the health monitor runs it: it
// satisfies health.Checker. It looks the plugin up at every call, so it
// keeps working across restarts and policy reloads. When the plugin is not
// running, its breaker is open, the call times out or the plugin answers
// garbage, the check fails with the reason as its message; it never blocks
// past Options.CallTimeout (or the monitor's own timeout, whichever is
// first).
type Checker struct {
	h      *Host
	plugin string
	use    CheckUse
	cfg    []byte
}

var _ health.WorkerChecker = (*Checker)(nil)

// Checker returns the health check of plugin that the check block use
// runs (see Spec.Checks): the plugin's health check named like the block,
// or its only one.
func (h *Host) Checker(plugin string, use CheckUse) *Checker {
	cfg, err := json.Marshal(use.Config)
	if err != nil {
		cfg = nil
	}
	return &Checker{h: h, plugin: plugin, use: use, cfg: cfg}
}

// KeepWorker reports true: the health monitor keeps a goroutine for the
// check's calls (see health.WorkerChecker), since a call through gRPC grows
// a new goroutine's stack several times over.
func (c *Checker) KeepWorker() bool { return true }

// Check runs the plugin's check on s.
func (c *Checker) Check(ctx context.Context, s metrics.Snapshot) health.Result {
	res, _ := c.run(ctx, s)
	return res
}

// run is Check that also returns the error when the call could not be made
// or broke the protocol (the Result then says so in its message).
func (c *Checker) run(ctx context.Context, s metrics.Snapshot) (health.Result, error) {
	m := c.h.plugin(c.plugin)
	if m == nil {
		err := fmt.Errorf("plugin %q %w: not loaded", c.plugin, ErrNotRunning)
		return health.Result{Message: err.Error()}, err
	}
	m.mu.Lock()
	desc := m.desc
	m.mu.Unlock()
	d, err := resolveCheck(c.use.Name, desc)
	if err != nil && desc != nil {
		err = fmt.Errorf("plugin %q: %w", c.plugin, err)
		return health.Result{Message: err.Error()}, err
	}
	req := &pb.CheckRequest{Name: d.Name, Snapshot: sdk.SnapshotToProto(SnapshotToSDK(s)), ConfigJson: c.cfg,
		Threshold: sdk.ThresholdToProto(c.use.Threshold)}
	var resp *pb.CheckResponse
	err = m.call(ctx, "check "+d.Name, func(ctx context.Context, r *sdk.Remote) error {
		var err error
		resp, err = r.HealthCheck.Check(ctx, req)
		if err != nil {
			return err
		}
		for _, v := range []float64{resp.GetValue(), resp.GetThreshold()} {
			if math.IsNaN(v) || math.IsInf(v, 0) {
				return fmt.Errorf("%w: check result value %v", ErrBadResponse, v)
			}
		}
		return nil
	})
	if err != nil {
		return health.Result{Message: clipMessage(err.Error()), TimedOut: errors.Is(err, ErrCallTimeout)}, err
	}
	res := health.Result{Passed: resp.GetPassed(), Value: resp.GetValue(), Threshold: resp.GetThreshold(),
		Unit: clipMessage(resp.GetUnit()), Message: clipMessage(resp.GetMessage())}
	if e := resp.GetError(); e != "" {
		res.Passed = false
		res.Message = clipMessage(e)
	}
	return res, nil
}

// Action is a plugin's degradation action as the degradation engine runs
// it: Name, Apply(ctx, level) and Rollback(ctx), the shape of
// core/degrade's Action. Rollback undoes the level last applied. A call the
// plugin cannot take (not running, breaker open, timeout) returns an error
// wrapping ErrNotRunning or ErrCallTimeout and publishes ERROR_OCCURRED, so
// the skipped action is visible; the engine retries it later.
type Action struct {
	h              *Host
	plugin, action string

	mu    sync.Mutex
	level policy.Level
}

// Action returns the action "plugin.action".
func (h *Host) Action(plugin, action string) *Action {
	return &Action{h: h, plugin: plugin, action: action}
}

// Name returns "plugin.action", the name policies use.
func (a *Action) Name() string { return a.plugin + "." + a.action }

// Apply applies the action for level.
func (a *Action) Apply(ctx context.Context, level policy.Level) error {
	err := a.run(ctx, false, level)
	if err == nil {
		a.mu.Lock()
		a.level = level
		a.mu.Unlock()
	}
	return err
}

// Rollback undoes the action (for the level Apply last succeeded with).
func (a *Action) Rollback(ctx context.Context) error {
	a.mu.Lock()
	level := a.level
	a.mu.Unlock()
	return a.run(ctx, true, level)
}

func (a *Action) run(ctx context.Context, rollback bool, level policy.Level) error {
	op := "apply"
	if rollback {
		op = "rollback"
	}
	m := a.h.plugin(a.plugin)
	if m == nil {
		err := fmt.Errorf("pluginhost: action %s %s: plugin %q %w: not loaded", a.Name(), op, a.plugin, ErrNotRunning)
		a.h.skipped(a.plugin, err)
		return err
	}
	req := &pb.ActionRequest{Name: a.action, Level: level.String(), Snapshot: sdk.SnapshotToProto(SnapshotToSDK(a.h.snapshot()))}
	var resp *pb.ActionResponse
	err := m.call(ctx, op+" "+a.action, func(ctx context.Context, r *sdk.Remote) error {
		var err error
		if rollback {
			resp, err = r.DegradationAction.Rollback(ctx, req)
		} else {
			resp, err = r.DegradationAction.Apply(ctx, req)
		}
		return err
	})
	if err != nil {
		err = fmt.Errorf("pluginhost: action %s %s: %w", a.Name(), op, err)
		a.h.skipped(a.plugin, err)
		return err
	}
	if e := resp.GetError(); e != "" {
		return fmt.Errorf("pluginhost: action %s %s: %s", a.Name(), op, clipMessage(e))
	}
	return nil
}

// Strategy is a plugin's recovery strategy as the recovery engine runs it:
// it satisfies core/recovery's Recoverer and Availability. Available asks
// the plugin whether it Applies (a "no", or a plugin that cannot be called,
// makes the strategy unavailable, so the engine skips it without counting
// an attempt, and ERROR_OCCURRED says why); Recover runs it.
type Strategy struct {
	h                *Host
	plugin, strategy string
}

var (
	_ recovery.Recoverer    = (*Strategy)(nil)
	_ recovery.Availability = (*Strategy)(nil)
)

// Strategy returns the strategy "plugin.strategy".
func (h *Host) Strategy(plugin, strategy string) *Strategy {
	return &Strategy{h: h, plugin: plugin, strategy: strategy}
}

// Name returns "plugin.strategy", the name policies use.
func (s *Strategy) Name() string { return s.plugin + "." + s.strategy }

func (s *Strategy) request(e policy.ErrorInfo, snap *metrics.Snapshot, attempt int) *pb.RecoveryRequest {
	var ms metrics.Snapshot
	if snap != nil {
		ms = *snap
	} else {
		ms = s.h.snapshot()
	}
	return &pb.RecoveryRequest{Name: s.strategy, Snapshot: sdk.SnapshotToProto(SnapshotToSDK(ms)), Attempt: int32(attempt),
		Error: &pb.ErrorInfo{Message: e.Message, CloseCode: int32(e.CloseCode), Kind: e.Kind, Source: e.Source, Fatal: e.Fatal, Resumable: e.Resumable}}
}

// Applies asks the plugin whether it wants to handle the failure e.
func (s *Strategy) Applies(ctx context.Context, e policy.ErrorInfo, snap *metrics.Snapshot) (bool, error) {
	m := s.h.plugin(s.plugin)
	if m == nil {
		return false, fmt.Errorf("pluginhost: strategy %s: plugin %q %w: not loaded", s.Name(), s.plugin, ErrNotRunning)
	}
	req := s.request(e, snap, 0)
	var resp *pb.AppliesResponse
	err := m.call(ctx, "applies "+s.strategy, func(ctx context.Context, r *sdk.Remote) error {
		var err error
		resp, err = r.RecoveryStrategy.Applies(ctx, req)
		return err
	})
	if err != nil {
		return false, fmt.Errorf("pluginhost: strategy %s: %w", s.Name(), err)
	}
	if e := resp.GetError(); e != "" {
		return false, fmt.Errorf("pluginhost: strategy %s: %s", s.Name(), clipMessage(e))
	}
	return resp.GetApplies(), nil
}

// Run runs the strategy for the failure e; attempt counts from 1.
func (s *Strategy) Run(ctx context.Context, e policy.ErrorInfo, snap *metrics.Snapshot, attempt int) error {
	m := s.h.plugin(s.plugin)
	if m == nil {
		err := fmt.Errorf("pluginhost: strategy %s: plugin %q %w: not loaded", s.Name(), s.plugin, ErrNotRunning)
		s.h.skipped(s.plugin, err)
		return err
	}
	req := s.request(e, snap, attempt)
	var resp *pb.RecoverResponse
	err := m.call(ctx, "recover "+s.strategy, func(ctx context.Context, r *sdk.Remote) error {
		var err error
		resp, err = r.RecoveryStrategy.Recover(ctx, req)
		return err
	})
	if err != nil {
		err = fmt.Errorf("pluginhost: strategy %s: %w", s.Name(), err)
		s.h.skipped(s.plugin, err)
		return err
	}
	if e := resp.GetError(); e != "" {
		return fmt.Errorf("pluginhost: strategy %s: %s", s.Name(), clipMessage(e))
	}
	return nil
}

// Available implements recovery.Availability: the plugin must be running
// and say that it applies to f. It calls the plugin, bounded by
// Options.CallTimeout.
func (s *Strategy) Available(f recovery.Failure) error {
	ok, err := s.Applies(context.Background(), f.Error, f.Snapshot)
	if err != nil {
		s.h.skipped(s.plugin, err)
		return fmt.Errorf("%w: %v", recovery.ErrUnavailable, err)
	}
	if !ok {
		return fmt.Errorf("pluginhost: strategy %s does not apply to %s: %w", s.Name(), f, recovery.ErrUnavailable)
	}
	return nil
}

// Recover implements recovery.Recoverer.
func (s *Strategy) Recover(ctx context.Context, a recovery.Attempt) error {
	return s.Run(ctx, a.Failure.Error, a.Failure.Snapshot, a.Number)
}

// skipped publishes ERROR_OCCURRED for a plugin call that could not be made
// or did not complete.
func (h *Host) skipped(plugin string, err error) {
	h.publish(events.Error{Source: "plugin/" + plugin, Kind: "plugin", Message: clipMessage(err.Error())})
}
