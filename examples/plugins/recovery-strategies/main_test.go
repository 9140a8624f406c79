package main

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"testing"
	"time"

	hclog "github.com/hashicorp/go-hclog"
)

// TestPluginStrategyResumesThroughTheHostAPI runs the example end to end:
// the resumer plugin (a real process) asks the host to RESUME and the fake
// Discord's ledger records the RESUME; a dial failure, which the plugin
// declines, is recovered by the strategy written in Go.
func TestPluginStrategyResumesThroughTheHostAPI(t *testing.T) {
	dir := t.TempDir()
	if out, err := exec.Command("go", "build", "-o", filepath.Join(dir, "bin", "resumer"), "./resumer").CombinedOutput(); err != nil {
		t.Fatalf("building the plugin: %v\n%s", err, out)
	}
	src, err := os.ReadFile("policy.hcl")
	if err != nil {
		t.Fatal(err)
	}
	policyPath := filepath.Join(dir, "policy.hcl")
	if err := os.WriteFile(policyPath, src, 0o644); err != nil {
		t.Fatal(err)
	}
	var logs bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 45*time.Second)
	defer cancel()
	var out bytes.Buffer
	err = run(ctx, &out, policyPath, hclog.New(&hclog.LoggerOptions{Output: &logs, Level: hclog.Info}))
	if err != nil {
		t.Fatalf("run: %v\noutput:\n%s\nlog:\n%s", err, out.String(), logs.String())
	}
	for _, want := range []*regexp.Regexp{
		regexp.MustCompile(`close 4000: gateway closed 4000 \(simulated\)\n  plan \[plugin-resume\], skipped \[\]\n  recovered by plugin-resume; fake Discord ledger: 1 RESUME\(s\) of session \w+ \(\+1\)`),
		regexp.MustCompile(`dial: .*\n  plan \[plugin-resume reconnect-after-dial-errors\], skipped \[plugin-resume\]\n  recovered by reconnect-after-dial-errors;`),
		regexp.MustCompile(`IDENTIFYs in the ledger: 1\n`),
	} {
		if !want.Match(out.Bytes()) {
			t.Errorf("output lacks %s:\n%s\nlog:\n%s", want, out.String(), logs.String())
		}
	}
	// The plugin's own log line came through the host's logger.
	if !regexp.MustCompile(`plugin\.resumer: asking for a resume: .*attempt=1`).Match(logs.Bytes()) {
		t.Errorf("the plugin's Host.Log line is missing:\n%s", logs.String())
	}
}
