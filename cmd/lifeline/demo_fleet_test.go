package main

import (
	"context"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// `lifeline demo --fleet 3` runs three lifeline processes, an embedded NATS
// server and the fake Discord, kills one mid-story, shows its shards
// moving and resuming, and exits 0 with the ledger's verdict.
func TestDemoFleet(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, lifelineBin, "demo", "--fleet", "3")
	cmd.Env = append(cmd.Environ(), "GORACE=halt_on_error=1")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("lifeline demo --fleet 3: %v\n%s", err, out)
	}
	text := string(out)
	for _, want := range []string{
		"started lifeline process p3",
		"12 IDENTIFYs for 12 shards",
		"kill -9 p2",
		"RESUMEd",
		"4 RESUMEs, 0 IDENTIFYs",
		"p2 took 4 shards back by handover",
		"OK: 12 IDENTIFYs in all for 12 shards",
		"0 broken limits, 0 shards ever run twice, 0 sessions with lost dispatches",
	} {
		if !strings.Contains(text, want) {
			t.Fatalf("the story lacks %q:\n%s", want, text)
		}
	}
}

func TestDemoFleetUsage(t *testing.T) {
	for _, args := range [][]string{{"--fleet", "1"}, {"--fleet", "9"}} {
		env, _, errb := testEnv(nil)
		if code := runDemo(context.Background(), env, args); code != 2 {
			t.Fatalf("demo %v = %d, want 2 (usage)", args, code)
		}
		if !strings.Contains(errb.String(), "--fleet") {
			t.Fatalf("demo %v: the usage error does not name --fleet: %s", args, errb.String())
		}
	}
}
