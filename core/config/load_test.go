package config

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/hcl/v2"

	"github.com/lifeline-bot/lifeline/core/metrics"
	"github.com/lifeline-bot/lifeline/core/policy"
)

func TestDefaultsEqualPolicyDefault(t *testing.T) {
	cfg := mustLoad(t, WithEnv(nil))
	if got, want := structure(t, cfg.Policy), structure(t, policy.Default()); got != want {
		t.Errorf("no layers should give policy.Default():\n%s\n---\n%s", got, want)
	}
	for k, s := range cfg.Sources() {
		if s.Kind != SourceDefault {
			t.Errorf("%s from %v", k, s)
		}
	}
	if cfg.Token.IsSet() || !errors.Is(cfg.RequireToken(), ErrNoToken) {
		t.Error("a token appeared from nowhere")
	}
	if err := cfg.RequireToken(); !strings.Contains(err.Error(), "DISCORD_TOKEN") {
		t.Errorf("RequireToken does not name the variable: %v", err)
	}
}

// TestLayerOrder checks each layer overrides the ones before it, for one
// setting.
func TestLayerOrder(t *testing.T) {
	file := []byte("connection {\n  max_reconnect_attempts = 7\n}\n")
	env := map[string]string{"DISCORD_MAX_RECONNECT_ATTEMPTS": "8"}
	tests := []struct {
		name string
		opts []Option
		want int
		src  string
	}{
		{"default", nil, 10, "default"},
		{"preset", []Option{WithPreset("medium")}, 15, "preset medium (policies/medium.hcl:"},
		{"file over preset", []Option{WithPreset("medium"), WithPolicySource("bot.hcl", file)}, 7, "bot.hcl:2:3"},
		{"env over file", []Option{WithPreset("medium"), WithPolicySource("bot.hcl", file), WithEnv(envOf(env))}, 8, "env DISCORD_MAX_RECONNECT_ATTEMPTS"},
		{"option over env", []Option{WithPreset("medium"), WithPolicySource("bot.hcl", file), WithEnv(envOf(env)), WithMaxReconnectAttempts(9)}, 9, "option WithMaxReconnectAttempts"},
		{"last option wins", []Option{WithMaxReconnectAttempts(9), Set("connection.max_reconnect_attempts", 11)}, 11, `option Set("connection.max_reconnect_attempts")`},
		{"option order does not change layers", []Option{WithMaxReconnectAttempts(9), WithEnv(envOf(env)), WithPolicySource("bot.hcl", file), WithPreset("medium")}, 9, "option WithMaxReconnectAttempts"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			opts := append([]Option{WithEnv(nil)}, tt.opts...)
			cfg := mustLoad(t, opts...)
			if got := cfg.Policy.Connection.MaxReconnectAttempts; got != tt.want {
				t.Errorf("max_reconnect_attempts = %d; want %d", got, tt.want)
			}
			if src, _ := cfg.Source("connection.max_reconnect_attempts"); !strings.HasPrefix(src.String(), tt.src) {
				t.Errorf("source %q; want %q...", src, tt.src)
			}
		})
	}
}

// TestSources is a golden test of Sources for every layer at once.
func TestSources(t *testing.T) {
	env := testEnv()
	env["LIFELINE_BREAKER_FAILURE_THRESHOLD"] = "12"
	env["DISCORD_INTENTS"] = "Guilds,GuildMessages,DirectMessages"
	cfg := mustLoad(t, WithPreset("medium"), WithPolicyFile("testdata/layered.hcl"), WithEnv(envOf(env)),
		Set("health.timeout", "5s"))
	golden(t, "sources.golden", []byte(sourcesText(cfg)))

	// Spot checks that do not depend on the golden file.
	want := map[string]string{
		"connection.intents":                "env DISCORD_INTENTS",
		"connection.token":                  "env DISCORD_TOKEN",
		"health.interval":                   "testdata/layered.hcl:7:3",
		"health.checks":                     "testdata/layered.hcl:9:3",
		"health.timeout":                    `option Set("health.timeout")`,
		"circuit_breaker.failure_threshold": "env LIFELINE_BREAKER_FAILURE_THRESHOLD",
		"health.enabled":                    "default",
		"plugins":                           "testdata/layered.hcl:24:1",
		"recovery":                          "default",
	}
	for k, w := range want {
		if got, _ := cfg.Source(k); got.String() != w {
			t.Errorf("%s: source %q; want %q", k, got, w)
		}
	}
	for _, k := range []string{"degradation.levels", "circuit_breaker.open_timeout"} {
		if got, _ := cfg.Source(k); got.Kind != SourcePreset || got.Name != "medium" || got.Range.Start.Line == 0 {
			t.Errorf("%s: source %v; want the medium preset with a line", k, got)
		}
	}
	// medium declares its levels: the shorthand is not used, so the
	// threshold settings have no source.
	if _, ok := cfg.Source("degradation.thresholds.latency"); ok {
		t.Error("threshold setting has a source though the ladder has no thresholds")
	}
	// The file's checks replaced the preset's.
	if n := len(cfg.Policy.Health.Checks); n != 2 || cfg.Policy.Health.Checks[0].Name != "database" {
		t.Errorf("checks: %+v", cfg.Policy.Health.Checks)
	}
	if cfg.Policy.Health.Checks[0].Config["dsn"] != env["DB_DSN"] {
		t.Errorf("env() in the file did not read the environment: %v", cfg.Policy.Health.Checks[0].Config)
	}
}

// TestSeveralProblemsOnePass: mistakes in the file, the environment and
// the options are all reported by one Load, each at its place.
func TestSeveralProblemsOnePass(t *testing.T) {
	env := map[string]string{
		"DISCORD_MAX_RECONNECT_ATTEMPTS": "ten",
		"LIFELINE_HEALTH_INTERVAL":       "2s",
		"LIFELINE_HEALTH_TIMEOUT":        "3s",
		"DISCORD_SHARDS":                 "70000",
		"DISCORD_TOKEN":                  sentinelToken,
	}
	e := loadErr(t, WithPreset("small"), WithPolicyFile("testdata/problems.hcl"), WithEnv(envOf(env)),
		Set("circuit_breaker.backoff_multiplier", 20), Set("health.intervall", "1s"))
	want := []string{
		`env DISCORD_MAX_RECONNECT_ATTEMPTS="ten": error: Invalid value: want a whole number from 0 to 1000000 (0 = no limit)`,
		`option Set("health.intervall"): error: Unknown setting: "health.intervall" is not a setting (did you mean "health.interval"?)`,
		`testdata/problems.hcl:3:32: error: Unknown intent: "GuildMesages" is not a gateway intent. Did you mean "GuildMessages"?`,
		`testdata/problems.hcl:4:21: error: Invalid duration: "soon" is not a duration`,
		`env DISCORD_SHARDS="70000": error: Value out of range: shards must be between 1 and 65535; got 70000.`,
		`testdata/problems.hcl:8:13: error: Value out of range: retries must be between 0 and 10; got 42.`,
		`env LIFELINE_HEALTH_TIMEOUT="3s": error: Inconsistent health timing: timeout (3s) must be shorter than interval (2s)`,
		`option Set("circuit_breaker.backoff_multiplier")="20": error: Value out of range: backoff_multiplier must be between 1 and 10; got 20.`,
		`testdata/problems.hcl:13:45: error: Unknown name in condition: latency has no variable "heartbeet". Did you mean "heartbeat"?`,
		`testdata/problems.hcl:14:16: error: Unknown action: "disable_analytic" is not a built-in action. Did you mean "disable_analytics"?`,
		`testdata/problems.hcl:14:36: error: Undeclared plugin: action "metrics.pause" uses plugin "metrics", which no plugin block declares.`,
		`testdata/problems.hcl:16:9: error: Levels out of order: level "minimal" comes after level "moderate" (at testdata/problems.hcl:12:9)`,
	}
	lines := e.Diagnostics.Errors().Lines()
	got := strings.Join(lines, "\n")
	for _, w := range want {
		if !strings.Contains(got, w) {
			t.Errorf("missing diagnostic\n  %s\nin\n  %s", w, strings.ReplaceAll(got, "\n", "\n  "))
		}
	}
	if len(lines) != len(want) {
		t.Errorf("%d errors; want %d", len(lines), len(want))
	}
	// The privileged intent of the file is a warning, not an error.
	if w := e.Diagnostics.Warnings(); len(w) != 1 || !strings.Contains(w[0].String(), "testdata/problems.hcl:3:48: warning: Privileged intent: MessageContent") {
		t.Errorf("warnings: %q", w.Lines())
	}
	var b bytes.Buffer
	if err := e.Write(&b, false); err != nil {
		t.Fatal(err)
	}
	golden(t, "problems.golden", []byte(e.Error()+"\n\n"+b.String()))
	for _, d := range []string{e.Error(), b.String()} {
		if strings.Contains(d, sentinelToken) {
			t.Error("the token appears in the diagnostics")
		}
	}
	// Each error diagnostic is reachable with errors.As.
	var d *Diagnostic
	if !errors.As(error(e), &d) || d.Severity != SeverityError {
		t.Errorf("errors.As(*Diagnostic) = %v", d)
	}
}

// TestPositionsExact: the file's diagnostics point at the same line and
// column whether or not other layers add lines to the assembled text, for
// one-line blocks too.
func TestPositionsExact(t *testing.T) {
	src := []byte(`locals { lat = "latency.heartbat > 5" }
connection { zombie_after = 2 }
health { interval = "1m" }
degradation {
  level "minimal" {
    when    = local.lat
    actions = ["disable_analytics"]
  }
  recover { when = "errors.rate < 0.0.1" }
}
recovery "resume" { when = "error.kind == 'zombie' && errorz.rate > 1" }
`)
	_, alone := policy.Decode("p.hcl", src, policy.Options{})
	want := policy.DiagnosticLines(alone)
	if len(want) < 3 {
		t.Fatalf("fixture should have several errors: %q", want)
	}
	env := map[string]string{"DISCORD_RECONNECT_DELAY": "1s", "LIFELINE_HEALTH_TIMEOUT": "1s", "LIFELINE_BREAKER_OPEN_TIMEOUT": "5s"}
	for _, opts := range [][]Option{
		{WithEnv(nil)},
		{WithEnv(envOf(env)), WithPreset("large")},
		{WithEnv(envOf(env)), WithPreset("small"), Set("degradation.recovery_delay", time.Second)},
	} {
		e := loadErr(t, append(opts, WithPolicySource("p.hcl", src))...)
		got := e.Diagnostics.Errors().Lines()
		if strings.Join(got, "\n") != strings.Join(want, "\n") {
			t.Errorf("layered diagnostics differ from the file's own:\n%s\n---\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
		}
	}
}

// TestReasonsNameFileLines: the compiled policy is relocated, so Decision
// reasons name the line the operator wrote, not a line of the assembled
// text.
func TestReasonsNameFileLines(t *testing.T) {
	src := []byte("health { interval = \"1m\" }\n\ndegradation {\n  level \"minimal\" {\n    when    = \"errors.rate > 0.5\"\n    actions = [\"disable_analytics\"]\n  }\n  recover { when = \"errors.rate < 0.1\" }\n}\n")
	cfg := mustLoad(t, WithEnv(envOf(map[string]string{"LIFELINE_HEALTH_TIMEOUT": "2s", "DISCORD_SHARDS": "3"})),
		WithPreset("large"), WithPolicySource("bot.hcl", src))
	var s metrics.Snapshot
	s.Errors.Rate = 0.9
	d := cfg.Policy.Evaluate(&s)
	if d.Level != policy.Minimal || !strings.Contains(d.Reason, "(bot.hcl:5)") {
		t.Errorf("decision %+v; want MINIMAL with reason at bot.hcl:5", d)
	}
	if r := cfg.Policy.Degradation.Levels[0].When.Range; r.Filename != "bot.hcl" || r.Start.Line != 5 || r.Start.Column != 15 {
		t.Errorf("condition range %v", r)
	}
	if r := cfg.Policy.Health.Ranges.Attrs["timeout"]; r.Filename != "env LIFELINE_HEALTH_TIMEOUT" {
		t.Errorf("env value range %v", r)
	}
	if r := cfg.Policy.CircuitBreaker.Ranges.Attrs["open_timeout"]; r.Filename != "policies/large.hcl" || r.Start.Line == 0 {
		t.Errorf("preset value range %v", r)
	}
	if cfg.Policy.Filename != "bot.hcl" {
		t.Errorf("Filename %q", cfg.Policy.Filename)
	}
}

// TestCrossLayerConsistency: a value is checked against the values it
// meets in the end, not against the defaults.
func TestCrossLayerConsistency(t *testing.T) {
	file := []byte("connection {\n  reconnect_delay = \"7m\"\n}\n")
	// small's max_reconnect_delay is 10m: 7m is fine there (the default
	// 5m cap alone would refuse it).
	cfg := mustLoad(t, WithEnv(nil), WithPreset("small"), WithPolicySource("bot.hcl", file))
	if cfg.Policy.Connection.ReconnectDelay != 7*time.Minute || cfg.Policy.Connection.MaxReconnectDelay != 10*time.Minute {
		t.Errorf("delays %v / %v", cfg.Policy.Connection.ReconnectDelay, cfg.Policy.Connection.MaxReconnectDelay)
	}
	_, err := policy.LoadSource("bot.hcl", file, policy.Options{})
	if err == nil {
		t.Error("the file alone should be refused (7m over the default 5m cap)")
	}
	e := loadErr(t, WithEnv(envOf(map[string]string{"DISCORD_MAX_RECONNECT_DELAY": "1m"})), WithPreset("small"), WithPolicySource("bot.hcl", file))
	if got := e.Error(); !strings.Contains(got, `env DISCORD_MAX_RECONNECT_DELAY="1m": error: Inconsistent reconnect delays: max_reconnect_delay (1m0s) must not be less than reconnect_delay (7m0s).`) {
		t.Errorf("error %q", got)
	}
}

func TestTokenRules(t *testing.T) {
	t.Run("literal token in a file", func(t *testing.T) {
		src := []byte("connection {\n  token = \"" + sentinelToken + "\"\n}\n")
		e := loadErr(t, WithEnv(nil), WithPolicySource("bot.hcl", src))
		var b bytes.Buffer
		_ = e.Write(&b, false)
		got := e.Error() + b.String()
		if !strings.Contains(got, "bot.hcl:2:3: error: Token must come from the environment") {
			t.Errorf("error %q", got)
		}
		if strings.Contains(got, sentinelToken) {
			t.Errorf("the token appears in %q", got)
		}
	})
	t.Run("literal token in a JSON file", func(t *testing.T) {
		src := []byte(`{"connection": {"token": "` + sentinelToken + `"}}`)
		e := loadErr(t, WithEnv(nil), WithPolicySource("bot.json", src))
		var b bytes.Buffer
		_ = e.Write(&b, false)
		got := e.Error() + b.String()
		if !strings.Contains(got, "bot.json:1:26: error: Token must come from the environment") || strings.Contains(got, sentinelToken) {
			t.Errorf("error %q", got)
		}
	})
	t.Run("policy names the variable", func(t *testing.T) {
		src := []byte("connection {\n  token = env(\"MY_BOT_TOKEN\")\n}\n")
		cfg := mustLoad(t, WithEnv(envOf(map[string]string{"MY_BOT_TOKEN": " " + sentinelToken + "\n", "DISCORD_TOKEN": "other"})), WithPolicySource("bot.hcl", src))
		if cfg.Token.Reveal() != sentinelToken {
			t.Error("token not read from MY_BOT_TOKEN (trimmed)")
		}
		if s, _ := cfg.Source("connection.token"); s.String() != "env MY_BOT_TOKEN" {
			t.Errorf("token source %v", s)
		}
		cfg = mustLoad(t, WithEnv(envOf(map[string]string{"DISCORD_TOKEN": sentinelToken})), WithPolicySource("bot.hcl", src))
		if cfg.Token.IsSet() || len(cfg.Warnings) != 1 || !strings.Contains(cfg.Warnings[0].String(), "MY_BOT_TOKEN") {
			t.Errorf("token %v, warnings %q", cfg.Token, cfg.Warnings.Lines())
		}
	})
	t.Run("option wins", func(t *testing.T) {
		cfg := mustLoad(t, WithEnv(envOf(map[string]string{"DISCORD_TOKEN": "from-env"})), WithToken(sentinelToken))
		if cfg.Token.Reveal() != sentinelToken || cfg.RequireToken() != nil {
			t.Error("WithToken did not win")
		}
		if s, _ := cfg.Source("connection.token"); s.String() != "option WithToken" {
			t.Errorf("source %v", s)
		}
	})
}

func TestFileErrors(t *testing.T) {
	_, err := Load(WithEnv(nil), WithPolicyFile(filepath.Join(t.TempDir(), "missing.hcl")))
	if !errors.Is(err, fs.ErrNotExist) || !errors.Is(err, ErrInvalid) {
		t.Errorf("missing file: %v", err)
	}
	e := loadErr(t, WithEnv(envOf(map[string]string{"DISCORD_SHARDS": "x"})), WithPolicySource("bot.hcl", []byte("connection {\n  shards = \n}\n")))
	got := strings.Join(e.Diagnostics.Lines(), "\n")
	// A syntax error stops the file, but the environment is still checked.
	if !strings.Contains(got, "bot.hcl:2:12: error: Invalid expression") || !strings.Contains(got, `env DISCORD_SHARDS="x"`) {
		t.Errorf("diagnostics %q", got)
	}
}

func TestJSONFileDiagnostics(t *testing.T) {
	src := []byte(`{
  "connection": {
    "intents": ["Guilds", "GuildMesages"],
    "shards": "auto"
  },
  "health": {"retries": 11, "checks": [{"type": "latency"}]},
  "degradation": {
    "levels": [{"name": "minimal", "when": "errors.rat > 1", "actions": []}],
    "recover": {"when": "errors.rate < 0.1"}
  },
  "unknown": 1
}`)
	e := loadErr(t, WithEnv(nil), WithPolicySource("bot.json", src))
	got := strings.Join(e.Diagnostics.Lines(), "\n")
	for _, w := range []string{
		`bot.json:6:40: error: Missing name: each entry of "checks" is an object with a non-empty string "name"`,
	} {
		if !strings.Contains(got, w) {
			t.Errorf("missing\n  %s\nin\n  %s", w, strings.ReplaceAll(got, "\n", "\n  "))
		}
	}
	// Structural errors are reported before core/policy sees the file;
	// with them fixed, the rest is located too, at the member's value.
	src = bytes.Replace(src, []byte(`{"type": "latency"}`), []byte(`{"name": "lat", "type": "latency"}`), 1)
	e = loadErr(t, WithEnv(nil), WithPolicySource("bot.json", src))
	got = strings.Join(e.Diagnostics.Lines(), "\n")
	for _, w := range []string{
		`bot.json:3:16: error: Unknown intent`,
		`bot.json:6:25: error: Value out of range: retries must be between 0 and 10; got 11.`,
		`bot.json:8:44: error: Unknown name in condition: errors has no variable "rat"`,
		`bot.json:11:14: error: Unsupported argument`,
	} {
		if !strings.Contains(got, w) {
			t.Errorf("missing\n  %s\nin\n  %s", w, strings.ReplaceAll(got, "\n", "\n  "))
		}
	}
	e = loadErr(t, WithEnv(nil), WithPolicySource("bot.json", []byte("{\n  \"health\": {\"interval\": \"1s\",}\n}")))
	if got := e.Error(); !strings.Contains(got, "bot.json:2:") || !strings.Contains(got, "Invalid JSON") {
		t.Errorf("syntax error: %q", got)
	}
}

func TestSourceString(t *testing.T) {
	r := hcl.Range{Filename: "policies/small.hcl", Start: hcl.Pos{Line: 15, Column: 3}}
	for _, tt := range []struct {
		s    Source
		want string
	}{
		{Source{}, "default"},
		{Source{Kind: SourcePreset, Name: "small", Range: r}, "preset small (policies/small.hcl:15:3)"},
		{Source{Kind: SourcePreset, Name: "small"}, "preset small"},
		{Source{Kind: SourceFile, Range: hcl.Range{Filename: "bot.hcl", Start: hcl.Pos{Line: 2, Column: 5}}}, "bot.hcl:2:5"},
		{Source{Kind: SourceEnv, Name: "DISCORD_SHARDS"}, "env DISCORD_SHARDS"},
		{Source{Kind: SourceOption, Name: "WithToken"}, "option WithToken"},
	} {
		if got := tt.s.String(); got != tt.want {
			t.Errorf("%#v: %q; want %q", tt.s, got, tt.want)
		}
	}
}

func TestPolicyFileFromDisk(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "bot.hcl")
	if err := os.WriteFile(path, []byte("health {\n  retries = 1\n}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := mustLoad(t, WithEnv(nil), WithPolicyFile(path))
	if cfg.File != path || cfg.Policy.Health.Retries != 1 {
		t.Errorf("file %q retries %d", cfg.File, cfg.Policy.Health.Retries)
	}
	if s, _ := cfg.Source("health.retries"); s.String() != fmt.Sprintf("%s:2:3", path) {
		t.Errorf("source %v", s)
	}
}
