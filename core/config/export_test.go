package config

import (
	"bytes"
	"encoding/json"
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hashicorp/go-hclog"
)

// roundTripCases are the configurations every export must reproduce:
// the presets, this package's fixtures and core/policy's valid fixtures,
// alone and layered.
func roundTripCases(t *testing.T) map[string][]Option {
	t.Helper()
	env := testEnv()
	env["DISCORD_SHARDS"] = "6"
	env["LIFELINE_DEGRADATION_LATENCY"] = "1200ms"
	cases := map[string][]Option{
		"defaults": {WithEnv(envOf(testEnv()))},
		"layered":  {WithEnv(envOf(env)), WithPreset("medium"), WithPolicyFile("testdata/layered.hcl"), Set("health.retries", 1)},
	}
	for _, p := range Presets() {
		cases["preset-"+p.Name] = []Option{WithEnv(envOf(testEnv())), WithPreset(p.Name)}
	}
	files, _ := filepath.Glob("testdata/roundtrip/*.hcl")
	more, _ := filepath.Glob("../policy/testdata/valid/*.hcl")
	files = append(files, more...)
	files = append(files, "../../policies/default.hcl")
	if len(files) < 7 {
		t.Fatalf("round-trip fixtures missing: %v", files)
	}
	for _, f := range files {
		name := strings.TrimSuffix(filepath.Base(f), ".hcl")
		if strings.Contains(f, "/policy/") {
			name = "policy-" + name
		}
		cases[name] = []Option{WithEnv(envOf(testEnv())), WithPolicyFile(f)}
	}
	return cases
}

func TestExportRoundTrip(t *testing.T) {
	for name, opts := range roundTripCases(t) {
		t.Run(name, func(t *testing.T) {
			cfg := mustLoad(t, opts...)
			want := structure(t, cfg.Policy)
			for _, f := range []Format{FormatHCL, FormatJSON} {
				out, err := Export(cfg, f)
				if err != nil {
					t.Fatal(err)
				}
				back := mustLoad(t, WithEnv(envOf(testEnv())), WithPolicySource("exported."+string(f), out))
				if got := structure(t, back.Policy); got != want {
					t.Errorf("%s export does not load back to the same configuration:\n%s\n--- got\n%s\n--- want\n%s", f, out, got, want)
				}
				again, err := Export(back, FormatJSON)
				if err != nil {
					t.Fatal(err)
				}
				first, _ := Export(cfg, FormatJSON)
				if !bytes.Equal(again, first) {
					t.Errorf("%s: JSON export of the reloaded configuration differs", f)
				}
				if len(back.Warnings) > len(cfg.Warnings) {
					t.Errorf("%s: reload adds warnings %q", f, back.Warnings.Lines())
				}
			}
		})
	}
}

func TestExportGolden(t *testing.T) {
	env := testEnv()
	env["DISCORD_SHARDS"] = "6"
	env["LIFELINE_DEGRADATION_LATENCY"] = "1200ms"
	cases := map[string][]Option{
		"small":   {WithEnv(envOf(testEnv())), WithPreset("small")},
		"medium":  {WithEnv(envOf(testEnv())), WithPreset("medium")},
		"large":   {WithEnv(envOf(testEnv())), WithPreset("large")},
		"layered": {WithEnv(envOf(env)), WithPreset("medium"), WithPolicyFile("testdata/layered.hcl"), Set("health.retries", 1)},
	}
	for name, opts := range cases {
		t.Run(name, func(t *testing.T) {
			cfg := mustLoad(t, opts...)
			for _, f := range []Format{FormatHCL, FormatJSON} {
				out, err := Export(cfg, f)
				if err != nil {
					t.Fatal(err)
				}
				golden(t, filepath.Join("export", name+"."+string(f)), out)
			}
		})
	}
}

// TestTokenNeverAppears puts the token everywhere a careless program
// might print it from and checks none of those outputs contain it.
func TestTokenNeverAppears(t *testing.T) {
	env := testEnv()
	cfg := mustLoad(t, WithEnv(envOf(env)), WithPreset("large"))
	if cfg.Token.Reveal() != sentinelToken {
		t.Fatal("token not loaded")
	}
	var outs []string
	for _, f := range []Format{FormatHCL, FormatJSON} {
		b, err := Export(cfg, f)
		if err != nil {
			t.Fatal(err)
		}
		outs = append(outs, string(b))
	}
	for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%q", "%x", "%X", "%d", "%10.4s"} {
		outs = append(outs, fmt.Sprintf(verb, cfg.Token), fmt.Sprintf(verb, cfg), fmt.Sprintf(verb, *cfg))
	}
	if j, err := json.Marshal(cfg); err == nil {
		outs = append(outs, string(j))
	} else {
		t.Errorf("json.Marshal(cfg): %v", err)
	}
	var logged bytes.Buffer
	log := hclog.New(&hclog.LoggerOptions{Output: &logged, Level: hclog.Trace})
	log.Info("loaded", "token", cfg.Token, "config", cfg)
	hclog.New(&hclog.LoggerOptions{Output: &logged, JSONFormat: true}).Info("loaded", "token", cfg.Token)
	outs = append(outs, logged.String())

	// The token in the wrong places: another variable, a file, options.
	env["DISCORD_INTENTS"] = sentinelToken
	env["LIFELINE_HEALTH_INTERVAL"] = "x" + sentinelToken
	file := []byte("connection {\n  token = \"" + sentinelToken + "\"\n}\nplugin \"p\" { path = \"" + sentinelToken + "\" }\n")
	_, err := Load(WithEnv(envOf(env)), WithPolicySource("bot.hcl", file), Set("connection.shards", sentinelToken), WithIntents(sentinelToken))
	if err == nil {
		t.Fatal("Load should fail")
	}
	outs = append(outs, err.Error(), fmt.Sprintf("%+v", err))
	var b bytes.Buffer
	_ = err.(*Error).Write(&b, false)
	outs = append(outs, b.String())
	// A token of any shape, passed by option, is not repeated either.
	_, err = Load(WithEnv(nil), WithToken("short-secret"), Set("connection.shards", "short-secret"))
	outs = append(outs, err.Error())

	for i, o := range outs {
		if strings.Contains(o, sentinelToken) || strings.Contains(o, "short-secret") {
			t.Errorf("output %d contains the token:\n%s", i, o)
		}
	}
	if s := fmt.Sprint(cfg.Token); s != "[REDACTED]" {
		t.Errorf("token prints as %q", s)
	}
	if s := fmt.Sprint(NewToken("")); s != "" {
		t.Errorf("empty token prints as %q", s)
	}
}

func TestParseFormat(t *testing.T) {
	for in, want := range map[string]Format{"hcl": FormatHCL, " JSON ": FormatJSON} {
		if got, err := ParseFormat(in); err != nil || got != want {
			t.Errorf("ParseFormat(%q) = %q, %v", in, got, err)
		}
	}
	if _, err := ParseFormat("yaml"); err == nil {
		t.Error("yaml accepted")
	}
	if _, err := Export(mustLoad(t, WithEnv(nil)), "yaml"); err == nil {
		t.Error("Export accepted yaml")
	}
}
