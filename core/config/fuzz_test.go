package config

import (
	"bytes"
	"math/rand"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// fuzzRoundTrip checks what every successful Load promises: the token
// never shows, and the export loads back to the same configuration.
func fuzzRoundTrip(t *testing.T, cfg *Config, err error) {
	t.Helper()
	if err != nil {
		if strings.Contains(err.Error(), sentinelToken) {
			t.Fatal("the token appears in an error")
		}
		return
	}
	for _, f := range []Format{FormatHCL, FormatJSON} {
		out, err := Export(cfg, f)
		if err != nil {
			t.Fatalf("export %s: %v", f, err)
		}
		if bytes.Contains(out, []byte(sentinelToken)) {
			t.Fatal("the token appears in an export")
		}
		back, err := Load(WithEnv(envOf(testEnv())), WithPolicySource("exported."+string(f), out))
		if err != nil {
			t.Fatalf("%s export does not load back: %v\n%s", f, err, out)
		}
		if a, b := structure(t, cfg.Policy), structure(t, back.Policy); a != b {
			t.Fatalf("%s export loads back differently:\n%s\n---\n%s", f, a, b)
		}
	}
}

func seedFiles(f *testing.F, pattern string) {
	files, _ := filepath.Glob(pattern)
	for _, name := range files {
		if b, err := os.ReadFile(name); err == nil {
			f.Add(b)
		}
	}
}

// FuzzLoadLayered loads arbitrary policy files over a preset with
// environment values, which exercises the text assembly (insertions into
// one-line, empty and nested blocks) and the position mapping.
func FuzzLoadLayered(f *testing.F) {
	seedFiles(f, "testdata/*.hcl")
	seedFiles(f, "testdata/roundtrip/*.hcl")
	seedFiles(f, "../../policies/*.hcl")
	for _, s := range []string{"", "connection {}", "health { interval = \"1m\" }", "degradation {\n thresholds {}\n}",
		"connection { token = env(\"BOT_TOKEN\") }\nhealth {\n}", "degradation { recovery_threshold = 0.3 }"} {
		f.Add([]byte(s))
	}
	env := testEnv()
	env["DISCORD_RECONNECT_DELAY"] = "2s"
	env["LIFELINE_HEALTH_TIMEOUT"] = "4s"
	env["LIFELINE_DEGRADATION_ERROR_RATE"] = "0.2"
	f.Fuzz(func(t *testing.T, src []byte) {
		preset := []string{"small", "medium", "large"}[len(src)%3]
		cfg, err := Load(WithEnv(envOf(env)), WithPreset(preset), WithPolicySource("fuzz.hcl", src))
		fuzzRoundTrip(t, cfg, err)
	})
}

// TestMutatedPolicies runs the FuzzLoadLayered checks over a fixed set of
// mutated fixtures (byte changes, deletions, inserted braces, quotes and
// newlines), so that plain `go test` covers broken layouts too.
func TestMutatedPolicies(t *testing.T) {
	files, _ := filepath.Glob("testdata/roundtrip/*.hcl")
	files = append(files, "testdata/layered.hcl", "testdata/problems.hcl")
	var seeds [][]byte
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		seeds = append(seeds, b)
	}
	env := testEnv()
	env["DISCORD_RECONNECT_DELAY"] = "2s"
	env["LIFELINE_DEGRADATION_ERROR_RATE"] = "0.2"
	r := rand.New(rand.NewSource(5))
	loaded := 0
	for i := 0; i < 80; i++ {
		src := append([]byte(nil), seeds[r.Intn(len(seeds))]...)
		for k := 0; k < 1+r.Intn(3); k++ {
			p := r.Intn(len(src))
			switch r.Intn(3) {
			case 0:
				src[p] = "{}\n\"=# ax1"[r.Intn(10)]
			case 1:
				src = append(src[:p], src[p+1:]...)
			default:
				src = append(src[:p], append([]byte{"{}\n\"="[r.Intn(5)]}, src[p:]...)...)
			}
		}
		cfg, err := Load(WithEnv(envOf(env)), WithPreset([]string{"small", "medium", "large"}[i%3]), WithPolicySource("m.hcl", src))
		if err == nil {
			loaded++
		}
		fuzzRoundTrip(t, cfg, err)
	}
	if loaded == 0 {
		t.Error("no mutated policy loaded: the round trip was never checked")
	}
}

// FuzzLoadJSON loads arbitrary JSON policies.
func FuzzLoadJSON(f *testing.F) {
	seedFiles(f, "testdata/export/*.json")
	for _, s := range []string{"{}", "[]", `{"health": 1}`, `{"recovery": [{"name": "x"}]}`, `{"connection": {"token_env": 5}}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, src []byte) {
		cfg, err := Load(WithEnv(envOf(testEnv())), WithPolicySource("fuzz.json", src))
		fuzzRoundTrip(t, cfg, err)
	})
}
