package pluginhost_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/lifeline-bot/lifeline/core/pluginhost"
	"github.com/lifeline-bot/lifeline/sdk"
)

func TestInspect(t *testing.T) {
	leakCheck(t)
	rep, err := pluginhost.Inspect(context.Background(), testPlugin, pluginhost.InspectOptions{Actions: true})
	if err != nil {
		t.Fatal(err)
	}
	if rep.PID == 0 || rep.Protocol != sdk.ProtocolVersion || rep.SDKVersion != sdk.Version || len(rep.SHA256) != 64 || len(rep.Plugins) != 4 {
		t.Fatalf("report = %+v", rep)
	}
	var calls []string
	for _, c := range rep.Calls {
		calls = append(calls, c.Name+"."+c.Call)
	}
	if got := strings.Join(calls, " "); got != "probe.check other.check kick.applies flag.apply flag.rollback" {
		t.Fatalf("calls = %s", got)
	}
	if !rep.OK() {
		t.Fatalf("not OK: %+v", rep.Calls)
	}
	if rep.Calls[0].Result != `passed=true value=42 threshold=0 unit="ms" message="label="` {
		t.Fatalf("probe result = %s", rep.Calls[0].Result)
	}
	if strings.Join(rep.HostRequests, ";") != "feature feature-MINIMAL=false;feature feature-MINIMAL=true" {
		t.Fatalf("host requests = %q", rep.HostRequests)
	}
	if !processGone(rep.PID) {
		t.Fatal("Inspect left the plugin running")
	}

	_, err = pluginhost.Inspect(context.Background(), testPlugin, pluginhost.InspectOptions{Args: []string{"-version=99"}})
	if !errors.Is(err, pluginhost.ErrProtocolVersion) {
		t.Fatalf("Inspect of a version 99 plugin = %v", err)
	}
}
