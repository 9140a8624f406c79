// Command floodplugin is a plugin that floods its log: from the moment it
// is served, one goroutine writes hclog lines to its standard error as fast
// as it can, another prints a line that never ends, and its health check
// "probe" still answers. The host must stay responsive and bounded.
package main

import (
	"context"
	"fmt"
	"os"
	"strings"

	"github.com/lifeline-bot/lifeline/sdk"
)

func main() {
	go func() {
		log := sdk.Logger("flood")
		for i := 0; ; i++ {
			log.Info("flooding the host's log", "n", i, "padding", strings.Repeat("x", 200))
		}
	}()
	go func() {
		chunk := strings.Repeat("y", 4096)
		for {
			fmt.Fprint(os.Stderr, chunk) // no newline, ever
		}
	}()
	sdk.Serve(sdk.Plugins{HealthChecks: []sdk.HealthCheck{
		sdk.NewHealthCheck(sdk.Info{Name: "probe", Version: "1.0.0"},
			func(context.Context, sdk.CheckRequest) (sdk.Result, error) {
				return sdk.Result{Passed: true, Message: "still answering"}, nil
			}),
	}})
}
