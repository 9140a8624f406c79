package main

import (
	"context"
	"net"
	"strings"
	"testing"

	"github.com/lifeline-bot/lifeline/sdk"
	"github.com/lifeline-bot/lifeline/sdk/sdktest"
)

func TestDNSCheck(t *testing.T) {
	// Start serves the plugin in this process, over the real protocol.
	p := sdktest.Start(t, sdk.Plugins{HealthChecks: []sdk.HealthCheck{&check{resolver: net.DefaultResolver}}},
		sdktest.Options{Config: sdk.Config{"max": "5s"}})

	res, err := p.Check(context.Background(), "dns", sdk.CheckRequest{Config: sdk.Config{"host": "localhost"}})
	if err != nil || !res.Passed || !strings.HasPrefix(res.Message, "localhost: ") {
		t.Fatalf("Check(localhost) = %+v, %v", res, err)
	}
	res, err = p.Check(context.Background(), "dns", sdk.CheckRequest{Config: sdk.Config{"host": "no-such-host.invalid"}})
	if err != nil || res.Passed {
		t.Fatalf("Check(.invalid) = %+v, %v", res, err)
	}
}
