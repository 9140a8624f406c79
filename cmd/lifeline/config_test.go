package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/lifeline-bot/lifeline/core/config"
)

// configToken is shaped like a Discord token; no output may contain it.
const configToken = "MTA5OTk5OTk5OTk5OTk5OTk5OQ.GsEnTi.nel_CLI_TOKEN_never_printed_0123456789"

func runConfig(t *testing.T, vars map[string]string, args ...string) (int, string, string) {
	t.Helper()
	env, out, errb := testEnv(vars)
	code := run(context.Background(), env, args)
	if strings.Contains(out.String()+errb.String(), configToken) {
		t.Errorf("lifeline %s printed the token", strings.Join(args, " "))
	}
	return code, out.String(), errb.String()
}

func TestConfigExport(t *testing.T) {
	dir := t.TempDir()
	policyFile := filepath.Join(dir, "bot.hcl")
	if err := os.WriteFile(policyFile, []byte("health {\n  interval = \"20s\"\n}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	vars := map[string]string{"DISCORD_TOKEN": configToken, "DISCORD_MAX_RECONNECT_ATTEMPTS": "4", "DISCORD_SHARDS": ""}
	code, out, errOut := runConfig(t, vars, "config", "export", "--preset", "large", "--policy", policyFile)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	for _, want := range []string{
		`token                  = env("DISCORD_TOKEN")`,
		"max_reconnect_attempts = 4 ",
		"# env DISCORD_MAX_RECONNECT_ATTEMPTS",
		`interval = "20s" # ` + policyFile + ":2:3",
		"# preset large (policies/large.hcl:",
		"# Token: read from DISCORD_TOKEN (set by env DISCORD_TOKEN; never exported).",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("export lacks %q:\n%s", want, out)
		}
	}
	// Both formats load back to the same configuration.
	want, err := config.Load(config.WithPreset("large"), config.WithPolicyFile(policyFile), config.WithEnv(func(k string) (string, bool) {
		v, ok := vars[k]
		return v, ok && v != ""
	}))
	if err != nil {
		t.Fatal(err)
	}
	wantJSON, _ := config.Export(want, config.FormatJSON)
	for _, f := range []string{"hcl", "json"} {
		code, out, errOut := runConfig(t, vars, "config", "export", "--preset=large", "--policy="+policyFile, "--format", f)
		if code != 0 {
			t.Fatalf("%s: exit %d: %s", f, code, errOut)
		}
		path := filepath.Join(dir, "exported."+f)
		if err := os.WriteFile(path, []byte(out), 0o600); err != nil {
			t.Fatal(err)
		}
		code, back, errOut := runConfig(t, nil, "config", "export", "--policy", path, "--format", "json")
		if code != 0 {
			t.Fatalf("reload %s: exit %d: %s", f, code, errOut)
		}
		if back != string(wantJSON) {
			t.Errorf("%s export does not load back to the same configuration:\n%s\n---\n%s", f, back, wantJSON)
		}
	}
}

func TestConfigExportProblems(t *testing.T) {
	dir := t.TempDir()
	policyFile := filepath.Join(dir, "bad.hcl")
	src := "connection {\n  token = \"" + configToken + "\"\n}\nhealth {\n  retries = 11\n}\n"
	if err := os.WriteFile(policyFile, []byte(src), 0o600); err != nil {
		t.Fatal(err)
	}
	vars := map[string]string{"DISCORD_TOKEN": configToken, "DISCORD_MAX_RECONNECT_ATTEMPTS": "ten", "DISCORD_INTENTS": configToken}
	code, out, errOut := runConfig(t, vars, "config", "export", "--policy", policyFile)
	if code != 1 || out != "" {
		t.Fatalf("exit %d, stdout %q", code, out)
	}
	for _, want := range []string{
		`env DISCORD_MAX_RECONNECT_ATTEMPTS="ten": error: Invalid value: want a whole number from 0 to 1000000 (0 = no limit)`,
		`env DISCORD_INTENTS="[REDACTED]": error: Invalid value: unknown intent "[REDACTED]"`,
		"Error: Token must come from the environment",
		"on " + policyFile + " line 5, in health:",
		"   5:   retries = 11",
		"the configuration is invalid (4 problems)",
	} {
		if !strings.Contains(errOut, want) {
			t.Errorf("stderr lacks %q:\n%s", want, errOut)
		}
	}
}

func TestConfigUsageErrors(t *testing.T) {
	tests := []struct {
		args []string
		err  string
	}{
		{[]string{"config", "export", "--format", "yaml"}, "--format must be hcl or json"},
		{[]string{"config", "export", "--preset", "huge"}, `unknown preset "huge"`},
		{[]string{"config", "export", "extra"}, `unexpected argument "extra"`},
		{[]string{"config", "export", "--nope"}, "flag provided but not defined"},
		{[]string{"config", "recommend"}, "--guilds is required"},
		{[]string{"config", "recommend", "--guilds", "-4"}, "--guilds must be a whole number"},
		{[]string{"config", "recommend", "--guilds", "10", "--env", "qa"}, "--env must be development, staging or production"},
		{[]string{"config", "presets", "tiny"}, `unknown preset "tiny"`},
		{[]string{"config", "presets", "small", "large"}, "at most one preset name"},
	}
	for _, tt := range tests {
		code, _, errOut := runConfig(t, nil, tt.args...)
		if code != 2 || !strings.Contains(errOut, tt.err) {
			t.Errorf("%v: exit %d, stderr %q; want 2 and %q", tt.args, code, errOut, tt.err)
		}
	}
	code, _, errOut := runConfig(t, nil, "config", "recommend", "--guilds", "70000000")
	if code != 1 || !strings.Contains(errOut, "65535") {
		t.Errorf("too many guilds: exit %d, %q", code, errOut)
	}
}

func TestConfigPresets(t *testing.T) {
	code, out, _ := runConfig(t, nil, "config", "presets")
	if code != 0 {
		t.Fatalf("exit %d", code)
	}
	for _, p := range config.Presets() {
		if !strings.Contains(out, p.Name) || !strings.Contains(out, p.Summary) {
			t.Errorf("list lacks %s: %s", p.Name, out)
		}
	}
	code, out, _ = runConfig(t, nil, "config", "presets", "medium")
	p, _ := config.LookupPreset("medium")
	if code != 0 || out != string(p.Source) {
		t.Errorf("presets medium: exit %d", code)
	}
}

func TestConfigRecommend(t *testing.T) {
	code, out, errOut := runConfig(t, nil, "config", "recommend", "--env", "production", "--guilds", "12000")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	for _, want := range []string{"recommended for production, 12,000 guilds", "shards                 = 12", "ceil(12,000 / 1,000) = 12", "Base: preset large"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	if _, err := config.Load(config.WithEnv(nil), config.WithPolicySource("recommended.hcl", []byte(out))); err != nil {
		t.Errorf("recommended policy does not load: %v", err)
	}
	code, out, _ = runConfig(t, nil, "config", "recommend", "--env", "dev", "--guilds", "1,500")
	if code != 0 || !strings.Contains(out, "development, 1,500 guilds") {
		t.Errorf("dev 1,500: exit %d\n%s", code, out)
	}
}

func TestConfigHelp(t *testing.T) {
	for _, name := range []string{"config export", "config presets", "config recommend"} {
		code, out, _ := runConfig(t, nil, append([]string{"help"}, strings.Fields(name)...)...)
		if code != 0 || !strings.Contains(out, "usage: lifeline "+name) {
			t.Errorf("help %s: exit %d\n%s", name, code, out)
		}
	}
}
