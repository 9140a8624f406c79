// Command dnscheck is a lifeline health-check plugin: it resolves a host
// name and passes when the answer comes quickly.
package main

import (
	"context"
	"fmt"
	"net"
	"time"

	"github.com/lifeline-bot/lifeline/sdk"
)

// check is the health check. A type (rather than sdk.NewHealthCheck) lets
// it hold state, here the resolver.
type check struct {
	resolver *net.Resolver
}

func (c *check) Info() sdk.Info {
	return sdk.Info{
		Name:        "dns",
		Version:     "1.0.0",
		Description: "resolves a host name within a time limit",
		Config: []sdk.ConfigField{
			{Name: "host", Type: sdk.String, Required: true, Description: "the name to resolve"},
			{Name: "max", Type: sdk.Duration, Default: "500ms", Description: "slowest passing answer"},
		},
	}
}

func (c *check) Check(ctx context.Context, req sdk.CheckRequest) (sdk.Result, error) {
	host, err := req.Config.String("host", "")
	if err != nil {
		return sdk.Result{}, err
	}
	limit, err := req.Config.Duration("max", 500*time.Millisecond)
	if err != nil {
		return sdk.Result{}, err
	}
	start := time.Now()
	addrs, err := c.resolver.LookupHost(ctx, host)
	took := time.Since(start)
	res := sdk.Result{Value: float64(took.Milliseconds()), Threshold: float64(limit.Milliseconds()), Unit: "ms"}
	if err != nil {
		res.Message = fmt.Sprintf("%s: %v", host, err)
		return res, nil // a failed lookup is a failing check, not a plugin error
	}
	res.Passed = took <= limit
	res.Message = fmt.Sprintf("%s: %d addresses in %v", host, len(addrs), took.Round(time.Millisecond))
	return res, nil
}

func main() {
	sdk.Serve(sdk.Plugins{HealthChecks: []sdk.HealthCheck{&check{resolver: net.DefaultResolver}}})
}
