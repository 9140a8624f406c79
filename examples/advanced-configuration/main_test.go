package main

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/lifeline-bot/lifeline/internal/testutil"
)

// The layers show where each value came from — the preset, the file, an
// environment variable — and the bot runs with the result.
func TestLayersAndRun(t *testing.T) {
	env := map[string]string{"DISCORD_MAX_RECONNECT_ATTEMPTS": "7"}
	lookup := func(k string) (string, bool) { v, ok := env[k]; return v, ok }
	var out testutil.SyncBuffer
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	if err := run(ctx, "medium", "policy.hcl", lookup, &out); err != nil {
		t.Fatal(err)
	}
	got := strings.Join(strings.Fields(out.String()), " ")
	for _, want := range []string{
		"connection.max_reconnect_attempts from env DISCORD_MAX_RECONNECT_ATTEMPTS",
		"health.interval from policy.hcl:18:3",
		"-> READY", "breaker opens after 4 failures", "READY -> STOPPED",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("output lacks %q:\n%s", want, got)
		}
	}
}

// A broken environment variable is reported by name, and nothing runs.
func TestBadEnvironmentIsReported(t *testing.T) {
	lookup := func(k string) (string, bool) {
		if k == "DISCORD_MAX_RECONNECT_ATTEMPTS" {
			return "ten", true
		}
		return "", false
	}
	var out testutil.SyncBuffer
	err := run(context.Background(), "medium", "policy.hcl", lookup, &out)
	if err == nil || !strings.Contains(err.Error(), "DISCORD_MAX_RECONNECT_ATTEMPTS") {
		t.Fatalf("err = %v, want the variable named", err)
	}
	if strings.Contains(out.String(), "READY") {
		t.Fatal("the bot connected with a broken configuration")
	}
}
