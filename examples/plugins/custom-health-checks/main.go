// Command worker-heartbeat is a lifeline health-check plugin: it passes while
// a background worker keeps touching its heartbeat file. See README.md.
package main

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/lifeline-bot/lifeline/sdk"
)

func main() {
	sdk.Serve(sdk.Plugins{HealthChecks: []sdk.HealthCheck{sdk.NewHealthCheck(sdk.Info{
		Name: "worker", Version: "1.0.0", Description: "the worker touched its heartbeat file recently",
		Config: []sdk.ConfigField{
			{Name: "path", Type: sdk.String, Required: true, Description: "the worker's heartbeat file"},
			{Name: "max_age", Type: sdk.Duration, Default: "1m", Description: "oldest passing heartbeat"},
		},
	}, func(_ context.Context, req sdk.CheckRequest) (sdk.Result, error) {
		path, _ := req.Config.String("path", "")
		maxAge, err := req.Config.Duration("max_age", time.Minute)
		if err != nil {
			return sdk.Result{}, err
		}
		info, err := os.Stat(path)
		if err != nil {
			return sdk.Result{}, fmt.Errorf("no heartbeat: %w", err)
		}
		age := time.Since(info.ModTime())
		return sdk.Result{Passed: age <= maxAge, Value: age.Seconds(), Threshold: maxAge.Seconds(), Unit: "s",
			Message: fmt.Sprintf("last heartbeat %v ago", age.Round(time.Second))}, nil
	})}})
}
