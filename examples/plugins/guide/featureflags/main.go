// Command featureflags is a lifeline plugin binary serving two kinds at
// once: a degradation action that turns the bot's optional features off
// while degraded, and a recovery strategy that re-identifies after repeated
// invalid sessions.
package main

import (
	"context"

	"github.com/lifeline-bot/lifeline/sdk"
)

// features turns the configured feature flags off on Apply and back on on
// Rollback, through the host.
var features = sdk.NewDegradationAction(
	sdk.Info{Name: "shed", Version: "1.0.0", Config: []sdk.ConfigField{
		{Name: "features", Type: sdk.List, Required: true, Description: "flags to turn off while degraded"},
	}},
	func(ctx context.Context, req sdk.ActionRequest) error { return set(ctx, req, false) },
	func(ctx context.Context, req sdk.ActionRequest) error { return set(ctx, req, true) },
)

func set(ctx context.Context, req sdk.ActionRequest, on bool) error {
	names, err := req.Config.Strings("features", nil)
	if err != nil {
		return err
	}
	for _, n := range names {
		if err := req.Host.SetFeature(ctx, n, on); err != nil {
			return err
		}
	}
	return req.Host.Log(ctx, sdk.LogInfo, "features switched", "on", on, "level", req.Level, "count", len(names))
}

// reidentify applies to invalid sessions that Discord says cannot resume.
var reidentify = sdk.NewRecoveryStrategy(
	sdk.Info{Name: "reidentify", Version: "1.0.0"},
	func(_ context.Context, req sdk.RecoveryRequest) (bool, error) {
		return req.Error.Kind == "invalid_session" && req.Snapshot.Errors.Consecutive >= 2, nil
	},
	func(ctx context.Context, req sdk.RecoveryRequest) error {
		return req.Host.RequestRecovery(ctx, sdk.Reidentify, "invalid session twice in a row")
	},
)

func main() {
	sdk.Serve(sdk.Plugins{
		DegradationActions: []sdk.DegradationAction{features},
		RecoveryStrategies: []sdk.RecoveryStrategy{reidentify},
	})
}
