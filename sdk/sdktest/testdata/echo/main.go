// Command echo is a plugin for sdktest's own tests: a health check that
// passes while the gateway is connected, and a strategy that asks the host
// to resume.
package main

import (
	"context"

	"github.com/lifeline-bot/lifeline/sdk"
)

func main() {
	sdk.Serve(sdk.Plugins{
		HealthChecks: []sdk.HealthCheck{sdk.NewHealthCheck(sdk.Info{Name: "connected", Version: "1.0.0"},
			func(_ context.Context, req sdk.CheckRequest) (sdk.Result, error) {
				who, _ := req.Config.String("who", "nobody")
				return sdk.Result{Passed: req.Snapshot.Gateway.Connected, Message: "asked by " + who}, nil
			})},
		RecoveryStrategies: []sdk.RecoveryStrategy{sdk.NewRecoveryStrategy(sdk.Info{Name: "resume"}, nil,
			func(ctx context.Context, req sdk.RecoveryRequest) error {
				return req.Host.RequestRecovery(ctx, sdk.Resume, req.Error.Message)
			})},
	})
}
