package sdk_test

import (
	"context"
	"testing"

	"github.com/lifeline-bot/lifeline/sdk"
	"github.com/lifeline-bot/lifeline/sdk/sdktest"
)

// TestWireCallConfigIsTheCallsOwn checks that a plugin changing its
// request's Config changes no later call's, although the host sends the
// same config on every call and the plugin decodes it once.
func TestWireCallConfigIsTheCallsOwn(t *testing.T) {
	seen := make(chan sdk.Config, 4)
	meddler := sdk.NewHealthCheck(sdk.Info{Name: "meddler", Config: []sdk.ConfigField{{Name: "k", Type: sdk.String}}},
		func(_ context.Context, req sdk.CheckRequest) (sdk.Result, error) {
			seen <- req.Config.Merge(nil)
			req.Config["k"] = "changed by the plugin"
			req.Config["extra"] = true
			delete(req.Config, "p")
			return sdk.Result{Passed: true}, nil
		})
	p := sdktest.Start(t, sdk.Plugins{HealthChecks: []sdk.HealthCheck{meddler}}, sdktest.Options{Config: sdk.Config{"p": 1.0}})
	for i := range 3 {
		if _, err := p.Check(context.Background(), "meddler", sdk.CheckRequest{Config: sdk.Config{"k": "check"}}); err != nil {
			t.Fatal(err)
		}
		got := <-seen
		if len(got) != 2 || got["k"] != "check" || got["p"] != 1.0 {
			t.Fatalf("call %d saw config %v, want k=check p=1", i+1, got)
		}
	}
}
