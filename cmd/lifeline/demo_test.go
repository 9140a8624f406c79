package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/lifeline-bot/lifeline/internal/demo"
)

// The lifeline binary is the demo's plugin when started with the hidden
// argument: `lifeline plugin check` starts it as lifeline does and its
// check answers; by hand it only says it is a plugin; help never lists it.
func TestBinaryServesTheDemoPluginUnderTheHiddenArgument(t *testing.T) {
	cue := filepath.Join(t.TempDir(), "crash")
	out, err := exec.Command(lifelineBin, "plugin", "check", "-config", `{"crash_file": "`+cue+`"}`,
		lifelineBin, demo.PluginArg).CombinedOutput()
	if err != nil {
		t.Fatalf("plugin check of `lifeline %s`: %v\n%s", demo.PluginArg, err, out)
	}
	for _, want := range []string{"protocol 1", "health_check       sidecar 1.0.0", "ok   check sidecar", "passed=true"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("plugin check output lacks %q:\n%s", want, out)
		}
	}

	// The cue makes the next call crash, and the crash is what plugin
	// check reports.
	if err := os.WriteFile(cue, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	out, err = exec.Command(lifelineBin, "plugin", "check", "-config", `{"crash_file": "`+cue+`"}`,
		lifelineBin, demo.PluginArg).CombinedOutput()
	if err == nil || !strings.Contains(string(out), "exit status 3") {
		t.Fatalf("plugin check with the crash cue: err %v, output:\n%s", err, out)
	}
	if _, err := os.Stat(cue); !os.IsNotExist(err) {
		t.Fatalf("the plugin left its crash cue behind: %v", err)
	}

	out, err = exec.Command(lifelineBin, demo.PluginArg).CombinedOutput()
	if err == nil || !strings.Contains(string(out), "This binary is a plugin") {
		t.Fatalf("run by hand: err %v, output:\n%s", err, out)
	}
	out, _ = exec.Command(lifelineBin, "help").CombinedOutput()
	if strings.Contains(string(out), demo.PluginArg) {
		t.Fatalf("help lists the hidden argument:\n%s", out)
	}
}
