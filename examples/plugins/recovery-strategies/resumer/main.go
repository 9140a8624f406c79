// Command resumer is a lifeline recovery-strategy plugin: for the kinds of
// failure it is configured for, it asks lifeline, through the host API, to
// RESUME the gateway session. See ../README.md.
package main

import (
	"context"
	"fmt"
	"slices"

	"github.com/lifeline-bot/lifeline/sdk"
)

func main() {
	sdk.Serve(sdk.Plugins{RecoveryStrategies: []sdk.RecoveryStrategy{sdk.NewRecoveryStrategy(
		sdk.Info{Name: "resume", Version: "1.0.0", Description: "asks the host to resume after the failures it knows",
			Config: []sdk.ConfigField{{Name: "kinds", Type: sdk.List, Default: []string{"close", "zombie"},
				Description: "the error kinds it applies to"}}},
		func(_ context.Context, req sdk.RecoveryRequest) (bool, error) {
			kinds, err := req.Config.Strings("kinds", []string{"close", "zombie"})
			return err == nil && !req.Error.Fatal && slices.Contains(kinds, req.Error.Kind), err
		},
		func(ctx context.Context, req sdk.RecoveryRequest) error {
			_ = req.Host.Log(ctx, sdk.LogInfo, "asking for a resume", "error", req.Error.Message, "attempt", req.Attempt)
			return req.Host.RequestRecovery(ctx, sdk.Resume, fmt.Sprintf("%s (attempt %d)", req.Error.Message, req.Attempt))
		})}})
}
