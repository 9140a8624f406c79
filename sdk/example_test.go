package sdk_test

import (
	"context"
	"fmt"
	"time"

	"github.com/lifeline-bot/lifeline/sdk"
)

// A health check is one function and a description. In a plugin's main,
// pass it to sdk.Serve; here it is called directly.
func ExampleNewHealthCheck() {
	heartbeat := sdk.NewHealthCheck(sdk.Info{
		Name:    "heartbeat",
		Version: "1.0.0",
		Config:  []sdk.ConfigField{{Name: "max", Type: sdk.Duration, Default: "500ms"}},
	}, func(_ context.Context, req sdk.CheckRequest) (sdk.Result, error) {
		max, err := req.Config.Duration("max", 500*time.Millisecond)
		if err != nil {
			return sdk.Result{}, err
		}
		rtt := req.Snapshot.Latency.Heartbeat
		return sdk.Result{
			Passed:    rtt <= max,
			Value:     float64(rtt.Milliseconds()),
			Threshold: float64(max.Milliseconds()),
			Unit:      "ms",
			Message:   fmt.Sprintf("heartbeat round trip %v", rtt),
		}, nil
	})

	snap := sdk.Snapshot{Latency: sdk.Latency{Heartbeat: 730 * time.Millisecond}}
	res, _ := heartbeat.Check(context.Background(), sdk.CheckRequest{Snapshot: snap, Config: sdk.Config{"max": "1s"}})
	fmt.Println(res.Passed, res.Value, res.Threshold, res.Unit, res.Message)
	// Output: true 730 1000 ms heartbeat round trip 730ms
}

// ValidateConfig is what the host runs on a policy's config before the
// plugin's first call.
func ExampleValidateConfig() {
	fields := []sdk.ConfigField{
		{Name: "url", Type: sdk.String, Required: true},
		{Name: "timeout", Type: sdk.Duration},
	}
	fmt.Println(sdk.ValidateConfig(fields, sdk.Config{"url": "http://127.0.0.1:8080/health", "timeout": "2s"}))
	fmt.Println(sdk.ValidateConfig(fields, sdk.Config{"timout": "2s"}))
	// Output:
	// <nil>
	// invalid plugin configuration: "url" is required (string); "timout" is not a setting of this plugin (known: timeout, url)
}
