package pluginhost

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"time"

	hclog "github.com/hashicorp/go-hclog"

	"github.com/lifeline-bot/lifeline/core/metrics"
	"github.com/lifeline-bot/lifeline/core/policy"
	"github.com/lifeline-bot/lifeline/sdk"
)

// InspectOptions configures Inspect. The zero value is valid.
type InspectOptions struct {
	// Args are the plugin's command-line arguments. Default: none.
	Args []string
	// Config is the plugin block's config. Default: none.
	Config map[string]any
	// SHA256 pins the binary's checksum. Default: not pinned.
	SHA256 string
	// CallTimeout bounds each call. Default: DefaultCallTimeout.
	CallTimeout time.Duration
	// Actions makes Inspect also Apply (at MINIMAL) and Rollback each
	// degradation action. Off by default: an action acts on the world (it
	// may post to a webhook). Default: false.
	Actions bool
	// Logger receives the plugin's output. Default: none.
	Logger hclog.Logger
}

// Report is what Inspect found out about a plugin binary.
type Report struct {
	Path       string           `json:"path"`
	SHA256     string           `json:"sha256"`
	PID        int              `json:"pid"`
	Protocol   int              `json:"protocol"`
	SDKVersion string           `json:"sdk_version"`
	Plugins    []sdk.Descriptor `json:"plugins"`
	Calls      []CallReport     `json:"calls"`
	// HostRequests lists what the plugin asked of the host during the
	// calls (recoveries, feature flags); Inspect's host only records them.
	HostRequests []string `json:"host_requests,omitempty"`
}

// CallReport is one call Inspect made.
type CallReport struct {
	Kind sdk.Kind `json:"kind"`
	Name string   `json:"name"`
	// Call is "check", "applies", "apply" or "rollback".
	Call string `json:"call"`
	// OK is false when the call could not be made or failed; Result says
	// what came back.
	OK       bool          `json:"ok"`
	Result   string        `json:"result"`
	Duration time.Duration `json:"duration"`
}

// OK reports whether the plugin started and every call was made and
// answered (a health check that ran and reported failure is answered).
func (r *Report) OK() bool {
	for _, c := range r.Calls {
		if !c.OK {
			return false
		}
	}
	return r.PID != 0
}

// Inspect starts the plugin binary at path as the host would, shakes hands,
// lists what it serves, runs one call of each of its health checks (Check,
// on an empty Snapshot) and recovery strategies (Applies, for a sample
// close 4000) — and with InspectOptions.Actions, Apply and Rollback of each
// action — and stops it: `lifeline plugin check`. The error is set when the
// plugin could not be started; failed calls are in the Report.
func Inspect(ctx context.Context, path string, o InspectOptions) (*Report, error) {
	rec := &recordingServices{}
	h := New(Options{Logger: o.Logger, CallTimeout: o.CallTimeout, Services: rec, Restart: RestartPolicy{Limit: -1}})
	defer h.Stop()
	name := strings.TrimPrefix(filepath.Base(path), BinaryPrefix)
	if !sdk.ValidName(name) {
		name = "plugin"
	}
	spec := Spec{Name: name, Path: path, Args: o.Args, Config: o.Config, SHA256: o.SHA256}
	rep := &Report{Path: h.resolve(spec).Path}
	if sum, err := FileSHA256(rep.Path); err == nil {
		rep.SHA256 = sum
	}
	if err := h.Reconcile(ctx, []Spec{spec}); err != nil {
		return rep, err
	}
	st := h.Status()[0]
	rep.PID, rep.Protocol, rep.SDKVersion, rep.Plugins = st.PID, st.Protocol, st.SDKVersion, st.Serves

	timed := func(d sdk.Descriptor, call string, fn func() (bool, string)) {
		start := time.Now()
		ok, res := fn()
		rep.Calls = append(rep.Calls, CallReport{Kind: d.Kind, Name: d.Name, Call: call, OK: ok, Result: res, Duration: time.Since(start)})
	}
	sample := policy.ErrorInfo{Message: "gateway closed with 4000 (unknown error)", CloseCode: 4000, Kind: "close", Source: "conn"}
	for _, d := range st.Serves {
		switch d.Kind {
		case sdk.KindHealthCheck:
			timed(d, "check", func() (bool, string) {
				res, err := h.Checker(name, CheckUse{Name: d.Name}).run(ctx, metrics.Snapshot{})
				if err != nil {
					return false, err.Error()
				}
				return true, fmt.Sprintf("passed=%v value=%g threshold=%g unit=%q message=%q", res.Passed, res.Value, res.Threshold, res.Unit, res.Message)
			})
		case sdk.KindRecoveryStrategy:
			timed(d, "applies", func() (bool, string) {
				ok, err := h.Strategy(name, d.Name).Applies(ctx, sample, nil)
				if err != nil {
					return false, err.Error()
				}
				return true, fmt.Sprintf("applies to a close 4000: %v", ok)
			})
		case sdk.KindDegradationAction:
			if !o.Actions {
				continue
			}
			a := h.Action(name, d.Name)
			timed(d, "apply", func() (bool, string) {
				if err := a.Apply(ctx, policy.Minimal); err != nil {
					return false, err.Error()
				}
				return true, "applied at MINIMAL"
			})
			timed(d, "rollback", func() (bool, string) {
				if err := a.Rollback(ctx); err != nil {
					return false, err.Error()
				}
				return true, "rolled back"
			})
		}
	}
	rep.HostRequests = rec.list()
	return rep, nil
}

// recordingServices is Inspect's host: it accepts and records every request.
type recordingServices struct {
	mu  sync.Mutex
	req []string
}

func (r *recordingServices) add(s string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.req = append(r.req, s)
}

func (r *recordingServices) list() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.req...)
}

func (r *recordingServices) Snapshot() metrics.Snapshot { return metrics.Snapshot{} }

func (r *recordingServices) RequestRecovery(_ context.Context, mode, reason string) error {
	r.add(fmt.Sprintf("recovery %s (%s)", mode, reason))
	return nil
}

func (r *recordingServices) SetFeature(name string, on bool) error {
	r.add(fmt.Sprintf("feature %s=%v", name, on))
	return nil
}
