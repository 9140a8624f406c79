package pluginhost_test

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/lifeline-bot/lifeline/core/pluginhost"
	"github.com/lifeline-bot/lifeline/core/policy"
	"github.com/lifeline-bot/lifeline/sdk"
)

func TestDiscover(t *testing.T) {
	dir := t.TempDir()
	files := map[string]os.FileMode{
		"lifeline-plugin-pgping":     0o755,
		"lifeline-plugin-webhook":    0o700,
		"lifeline-plugin-notexec":    0o644, // not executable
		"lifeline-plugin-bad.name":   0o755, // not a valid plugin name
		"other-binary":               0o755,
		"lifeline-plugin-":           0o755,
		"lifeline-plugin-Upper_ok-1": 0o755,
	}
	for name, mode := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte("#!/bin/sh\n"), mode); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Mkdir(filepath.Join(dir, "lifeline-plugin-dir"), 0o755); err != nil {
		t.Fatal(err)
	}
	got, err := pluginhost.Discover(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, s := range got {
		names = append(names, s.Name)
		if s.Path != filepath.Join(dir, pluginhost.BinaryPrefix+s.Name) {
			t.Errorf("%s: path %s", s.Name, s.Path)
		}
	}
	if want := []string{"Upper_ok-1", "pgping", "webhook"}; !reflect.DeepEqual(names, want) {
		t.Fatalf("Discover = %v, want %v", names, want)
	}
	if _, err := pluginhost.Discover(filepath.Join(dir, "missing")); err == nil {
		t.Fatal("Discover of a missing directory succeeded")
	}
}

func TestSpecsFromPolicyCarriesChecksThresholdsAndUses(t *testing.T) {
	p, err := policy.LoadSource("p.hcl", []byte(`
health {
  check "api" {
    plugin    = "probe"
    threshold = "250ms"
    config    = { url = "http://127.0.0.1/" }
  }
  check "depth" {
    plugin    = "probe"
    threshold = 100
  }
  check "latency" { type = "latency" }
}
degradation {
  level "minimal" {
    when    = "health.score < 90"
    actions = ["probe.quiet"]
  }
  level "moderate" {
    when    = "health.score < 70"
    actions = ["probe.quiet", "probe.louder"]
  }
  recover { when = "health.score >= 95" }
}
recovery "a" { use = "probe.kick" }
recovery "b" { use = "probe.kick" }
plugin "probe" {
  path   = "bin/probe"
  sha256 = "ABABABABABABABABABABABABABABABABABABABABABABABABABABABABABABABAB"
  args   = ["-v"]
}
`), policy.Options{})
	if err != nil {
		t.Fatal(err)
	}
	specs := pluginhost.SpecsFromPolicy(p)
	want := []pluginhost.Spec{{
		Name: "probe", Path: "bin/probe", SHA256: strings.Repeat("ab", 32), Args: []string{"-v"},
		Checks: []pluginhost.CheckUse{
			{Name: "api", Config: map[string]any{"url": "http://127.0.0.1/"},
				Threshold: sdk.Threshold{Set: true, IsDuration: true, Duration: 250 * time.Millisecond, Value: 0.25}},
			{Name: "depth", Threshold: sdk.Threshold{Set: true, Value: 100}},
		},
		Actions:    []string{"quiet", "louder"},
		Strategies: []string{"kick"},
	}}
	// Config maps compare by content; a nil and an empty map are the same here.
	for i := range specs {
		if len(specs[i].Config) == 0 {
			specs[i].Config = nil
		}
		for j := range specs[i].Checks {
			if len(specs[i].Checks[j].Config) == 0 {
				specs[i].Checks[j].Config = nil
			}
		}
	}
	if !reflect.DeepEqual(specs, want) {
		t.Fatalf("SpecsFromPolicy =\n%+v\nwant\n%+v", specs, want)
	}
	if pluginhost.SpecsFromPolicy(nil) != nil {
		t.Fatal("nil policy gave specs")
	}
}

func TestStateStrings(t *testing.T) {
	for s, want := range map[pluginhost.State]string{pluginhost.Starting: "STARTING", pluginhost.Running: "RUNNING",
		pluginhost.Restarting: "RESTARTING", pluginhost.Failed: "FAILED", pluginhost.Stopped: "STOPPED", 9: "State(9)"} {
		if s.String() != want {
			t.Errorf("%d: %q", int(s), s.String())
		}
	}
}
