package demo

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/lifeline-bot/lifeline/core/conn"
	"github.com/lifeline-bot/lifeline/core/events"
	"github.com/lifeline-bot/lifeline/core/health"
	"github.com/lifeline-bot/lifeline/sdk"
)

// PluginArg is the hidden first argument that makes a binary serve the
// demo's plugin instead of doing its own work. The story starts its own
// executable (os.Executable) with it as the plugin's binary, so the demo
// needs nothing prebuilt: the lifeline binary checks for it before its
// commands, and a test binary that plays the story checks for it in
// TestMain. It is not a command and no help lists it.
const PluginArg = "__demo-plugin"

// The demo policy's plugin block, the check block its health check runs
// under, its degradation action, and the bot feature that action holds.
const (
	pluginName     = "demo"
	checkName      = "sidecar"
	actionName     = "hold_welcomes"
	welcomeFeature = "welcome-dm"
)

// ServePlugin serves the demo's plugin in this process, as a plugin
// binary's main does with sdk.Serve. It serves two plugins:
//
//   - the health check "sidecar", which passes with its process id, its
//     uptime and the gateway state it is shown, and exits with status 3 in
//     the middle of a call when the file named by its crash_file setting
//     exists (removing the file first, so the restarted process passes
//     again);
//   - the degradation action "hold_welcomes", which switches the bot's
//     "welcome-dm" feature off through the host API while its level is
//     active, and back on when the level ends.
//
// Started by hand rather than by lifeline, it says it is a plugin and exits
// with status 1.
func ServePlugin() {
	started := time.Now()
	hold := func(on bool) func(ctx context.Context, req sdk.ActionRequest) error {
		return func(ctx context.Context, req sdk.ActionRequest) error {
			if err := req.Host.SetFeature(ctx, welcomeFeature, on); err != nil {
				return err
			}
			return req.Host.Log(ctx, sdk.LogInfo, "welcome DMs switched", "on", on, "level", req.Level)
		}
	}
	sdk.Serve(sdk.Plugins{DegradationActions: []sdk.DegradationAction{sdk.NewDegradationAction(sdk.Info{
		Name:        actionName,
		Version:     "1.0.0",
		Description: "holds the bot's welcome DMs (feature welcome-dm) while its level is active, through the host API",
	}, hold(false), hold(true))}, HealthChecks: []sdk.HealthCheck{sdk.NewHealthCheck(sdk.Info{
		Name:        checkName,
		Version:     "1.0.0",
		Description: "the demo's out-of-process health check: reports its own process and the gateway it is shown; crashes mid-call on the demo's cue",
		Config: []sdk.ConfigField{{Name: "crash_file", Type: sdk.String, Required: true,
			Description: "when this file exists, the next call removes it and exits with status 3"}},
	}, func(_ context.Context, req sdk.CheckRequest) (sdk.Result, error) {
		path, err := req.Config.String("crash_file", "")
		if err != nil {
			return sdk.Result{}, err
		}
		if path != "" && os.Remove(path) == nil {
			sdk.Logger("").Error("crashing on purpose: the demo's cue")
			os.Exit(3)
		}
		up := time.Since(started)
		g := req.Snapshot.Gateway
		return sdk.Result{Passed: true, Value: up.Seconds(), Unit: "s",
			Message: fmt.Sprintf("pid %d, up %s, sees the gateway %s at sequence %d",
				os.Getpid(), up.Round(100*time.Millisecond), g.State, g.Sequence)}, nil
	})}})
}

// hclString quotes s as an HCL string literal (a path may hold quotes,
// backslashes or HCL's template openers).
func hclString(s string) string {
	q := strconv.Quote(s)
	q = strings.ReplaceAll(q, "${", "$${")
	return strings.ReplaceAll(q, "%{", "%%{")
}

// PluginCrash is what the story's plugin chapter saw: the demo plugin's
// health check, its process made to crash in the middle of a call, and the
// host restarting it while the connection carried on.
type PluginCrash struct {
	// Plugin and Check name the policy's plugin block and check block.
	Plugin string `json:"plugin"`
	Check  string `json:"check"`
	// PIDBefore is the process that crashed; PIDAfter the one the host
	// restarted.
	PIDBefore int `json:"pid_before"`
	PIDAfter  int `json:"pid_after"`
	// Exit is PLUGIN_EXITED's reason: exit status and last output.
	Exit string `json:"exit,omitempty"`
	// Failures are the check's failing messages while the plugin was down,
	// in order, each once.
	Failures []string `json:"failures,omitempty"`
	// RestartedAfter is the time from PLUGIN_EXITED to the new process's
	// PLUGIN_STARTED: the host's restart backoff and the start.
	RestartedAfter time.Duration `json:"restarted_after"`
	// PassedAgain is the check's message from the restarted process.
	PassedAgain string `json:"passed_again,omitempty"`
	// StayedReady reports that the connection never left READY.
	StayedReady bool `json:"stayed_ready"`
}

// pluginEvent is a PLUGIN_STARTED or PLUGIN_EXITED as the story saw it.
type pluginEvent struct {
	at time.Time
	d  events.Plugin
}

// pluginCrash is the plugin chapter: the demo plugin's check passes, the
// demo drops the crash file, the plugin dies mid-call, its check fails with
// the reason while the connection stays READY, and the host restarts it
// after its backoff until the check passes again, all within budget.
func (s *story) pluginCrash(ctx context.Context, budget time.Duration) (Incident, PluginCrash) {
	const name = "plugin-crash"
	pc := PluginCrash{Plugin: pluginName, Check: checkName}
	deadline := time.NewTimer(budget)
	defer deadline.Stop()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	failed := func(detail string) (Incident, PluginCrash) {
		s.say(name, "%s", detail)
		return Incident{Name: name, Detail: detail}, pc
	}

	// The plugin has run since Start; wait for its check to pass.
	var before *health.Result
	for before == nil {
		select {
		case <-tick.C:
			if r := s.checkResult(checkName); r != nil && r.Passed {
				before = r
			}
		case <-deadline.C:
			return failed(fmt.Sprintf("the plugin's check %q did not pass within %s", checkName, budget))
		case <-ctx.Done():
			return failed(ctx.Err().Error())
		}
	}
	pc.PIDBefore = s.pluginPID()
	s.say(name, "the health check %q runs out of process: plugin %q, pid %d, started by lifeline over gRPC with mutual TLS and its sha256 pinned; it answers %q",
		checkName, pluginName, pc.PIDBefore, before.Message)
	s.say(name, "now the plugin crashes in the middle of a call: its next Check calls os.Exit(3)")
	if s.rec != nil {
		s.rec.Mark(name)
	}
	s.drainStates()
	for len(s.pluginEvents) > 0 {
		<-s.pluginEvents
	}
	began := time.Now()
	if err := os.WriteFile(s.crashFile, []byte("crash\n"), 0o600); err != nil {
		return failed("could not drop the crash file: " + err.Error())
	}

	leftReady := false
	var exitedAt, restartedAt time.Time
	for {
		select {
		case st := <-s.states:
			if st != conn.Ready.String() {
				leftReady = true
			}
		case e := <-s.pluginEvents:
			switch {
			case e.d.Name != pluginName:
			case e.d.Exited && exitedAt.IsZero():
				exitedAt, pc.Exit = e.at, e.d.Reason
			case !e.d.Exited && !exitedAt.IsZero() && restartedAt.IsZero():
				restartedAt, pc.PIDAfter = e.at, e.d.PID
				pc.RestartedAfter = restartedAt.Sub(exitedAt).Round(time.Millisecond)
				s.say(name, "the host restarted the plugin %s after it died (its restart backoff, then a fresh start and handshake): pid %d",
					pc.RestartedAfter, pc.PIDAfter)
			}
		case <-tick.C:
			r := s.checkResult(checkName)
			if r == nil || r.Time.Before(began) {
				continue
			}
			if !r.Passed && (len(pc.Failures) == 0 || pc.Failures[len(pc.Failures)-1] != r.Message) {
				pc.Failures = append(pc.Failures, r.Message)
				s.say(name, "the check fails, saying why: %s", r.Message)
				if len(pc.Failures) == 1 {
					s.say(name, "meanwhile the bot is still connected: %s", s.bot.Diagnostics().State)
				}
			}
			if !r.Passed || restartedAt.IsZero() || r.Time.Before(restartedAt) || len(pc.Failures) == 0 {
				continue
			}
			pc.PassedAgain = r.Message
			pc.StayedReady = !leftReady && s.bot.Diagnostics().State == conn.Ready.String()
			took := time.Since(began).Round(time.Millisecond)
			s.say(name, "the check passes again, from the new process: %q", r.Message)
			if !pc.StayedReady {
				return failed("the connection left READY during the plugin's crash")
			}
			s.say(name, "recovered after %s; the connection stayed READY throughout", took)
			return Incident{Name: name, Recovered: true, Took: took}, pc
		case <-deadline.C:
			return failed(fmt.Sprintf("not recovered within %s (exit %q, failures %d, restarted pid %d)",
				budget, pc.Exit, len(pc.Failures), pc.PIDAfter))
		case <-ctx.Done():
			return failed(ctx.Err().Error())
		}
	}
}

// checkResult is the named check's last result, nil before its first run.
func (s *story) checkResult(name string) *health.Result {
	for _, c := range s.bot.HealthMonitor().Diagnostics().Checks {
		if c.Name == name {
			return c.Last
		}
	}
	return nil
}

// pluginPID is the demo plugin's running process, 0 when none runs.
func (s *story) pluginPID() int {
	for _, st := range s.bot.Plugins().Status() {
		if st.Name == pluginName {
			return st.PID
		}
	}
	return 0
}
