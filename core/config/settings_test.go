package config

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/bwmarrin/discordgo"
	"github.com/zclconf/go-cty/cty"

	"github.com/lifeline-bot/lifeline/core/policy"
)

func TestSettingsTable(t *testing.T) {
	envName := regexp.MustCompile(`^(DISCORD|LIFELINE)_[A-Z][A-Z_]*[A-Z]$`)
	keys, envs := map[string]bool{}, map[string]bool{}
	for _, s := range Settings() {
		if keys[s.Key] || envs[s.Env] {
			t.Errorf("%s / %s listed twice", s.Key, s.Env)
		}
		keys[s.Key], envs[s.Env] = true, true
		if !envName.MatchString(s.Env) {
			t.Errorf("%s: variable %q does not look like the others", s.Key, s.Env)
		}
		if strings.HasPrefix(s.Key, "connection.") != strings.HasPrefix(s.Env, "DISCORD_") {
			t.Errorf("%s: connection settings use DISCORD_, others LIFELINE_ (%s)", s.Key, s.Env)
		}
		if s.Doc == "" || s.Want() == "" {
			t.Errorf("%s: no doc or want", s.Key)
		}
		if s.Kind != KindToken && (s.get == nil || s.Default() == "") {
			t.Errorf("%s: no getter or default", s.Key)
		}
		if got, ok := LookupSetting(s.Env); !ok || got.Key != s.Key {
			t.Errorf("LookupSetting(%q) = %v, %v", s.Env, got.Key, ok)
		}
	}
	for _, want := range []string{"DISCORD_TOKEN", "DISCORD_INTENTS", "DISCORD_AUTO_RECONNECT", "DISCORD_MAX_RECONNECT_ATTEMPTS"} {
		if !envs[want] {
			t.Errorf("%s missing from the table", want)
		}
	}
	// Every scalar attribute core/policy decodes has a row: probe each
	// block's attributes by decoding them with the default value.
	def := policy.Default()
	for _, s := range Settings() {
		if s.Kind == KindToken {
			continue
		}
		v, _ := s.get(def)
		src := snippet(s, exprText(v))
		if _, diags := policy.Decode("probe.hcl", []byte(src), policy.Options{}); diags.HasErrors() {
			t.Errorf("%s: policy does not accept its own default:\n%s\n%v", s.Key, src, diags)
		}
	}
}

// snippet writes a policy setting the setting's attribute to expr.
func snippet(s Setting, expr string) string {
	path, attr := s.path()
	var b strings.Builder
	for _, p := range path {
		b.WriteString(p + " {\n")
	}
	fmt.Fprintf(&b, "%s = %s\n", attr, expr)
	for range path {
		b.WriteString("}\n")
	}
	return b.String()
}

// TestSettingBoundsMatchPolicy keeps Min and Max (shown in messages and
// docs) equal to what core/policy enforces.
func TestSettingBoundsMatchPolicy(t *testing.T) {
	outOfRange := func(s Setting, expr string) bool {
		_, diags := policy.Decode("probe.hcl", []byte(snippet(s, expr)), policy.Options{})
		for _, d := range diags {
			if d.Summary == "Value out of range" {
				return true
			}
		}
		return false
	}
	for _, s := range Settings() {
		if s.Min == "" && s.Max == "" {
			continue
		}
		t.Run(s.Key, func(t *testing.T) {
			for _, b := range []struct {
				bound string
				dir   int
			}{{s.Min, -1}, {s.Max, +1}} {
				if b.bound == "" {
					continue
				}
				at, beyond := boundExprs(t, s.Kind, b.bound, b.dir)
				if outOfRange(s, at) {
					t.Errorf("policy refuses the bound %s", at)
				}
				if !outOfRange(s, beyond) {
					t.Errorf("policy accepts %s, beyond the bound %s", beyond, b.bound)
				}
			}
		})
	}
}

// boundExprs returns the bound and a value just beyond it, as HCL.
func boundExprs(t *testing.T, k Kind, bound string, dir int) (string, string) {
	t.Helper()
	switch k {
	case KindInt, KindShards:
		n, err := strconv.Atoi(bound)
		if err != nil {
			t.Fatal(err)
		}
		return bound, strconv.Itoa(n + dir)
	case KindNumber:
		f, err := strconv.ParseFloat(bound, 64)
		if err != nil {
			t.Fatal(err)
		}
		return bound, strconv.FormatFloat(f+float64(dir)*f/1000+float64(dir)*1e-9, 'g', -1, 64)
	case KindDuration:
		d, err := time.ParseDuration(bound)
		if err != nil {
			t.Fatal(err)
		}
		return strconv.Quote(bound), strconv.Quote((d + time.Duration(dir)*time.Millisecond).String())
	}
	t.Fatalf("kind %s has bounds", k)
	return "", ""
}

// envCases has, for every variable of the table, a valid value different
// from the default and the value the policy must then hold. A test fails
// when a variable has no case.
var envCases = map[string]struct{ value, want string }{
	"DISCORD_INTENTS":                         {"guilds, GUILD_MESSAGE_REACTIONS,IntentDirectMessages", `["Guilds", "GuildMessageReactions", "DirectMessages"]`},
	"DISCORD_AUTO_RECONNECT":                  {"off", "false"},
	"DISCORD_MAX_RECONNECT_ATTEMPTS":          {"0", "0"},
	"DISCORD_RECONNECT_DELAY":                 {"1500ms", `"1.5s"`},
	"DISCORD_BACKOFF_MULTIPLIER":              {"1.75", "1.75"},
	"DISCORD_MAX_RECONNECT_DELAY":             {"90m", `"1h30m"`},
	"DISCORD_ZOMBIE_AFTER":                    {"2", "2"},
	"DISCORD_SHARDS":                          {" 16 ", "16"},
	"LIFELINE_HEALTH_ENABLED":                 {"FALSE", "false"},
	"LIFELINE_HEALTH_INTERVAL":                {"1m", `"1m"`},
	"LIFELINE_HEALTH_TIMEOUT":                 {"250ms", `"250ms"`},
	"LIFELINE_HEALTH_RETRIES":                 {"10", "10"},
	"LIFELINE_BREAKER_FAILURE_THRESHOLD":      {"100000", "100000"},
	"LIFELINE_BREAKER_RECOVERY_THRESHOLD":     {"1", "1"},
	"LIFELINE_BREAKER_OPEN_TIMEOUT":           {"2m", `"2m"`},
	"LIFELINE_BREAKER_MONITORING_PERIOD":      {"1h", `"1h"`},
	"LIFELINE_BREAKER_HALF_OPEN_MAX_CALLS":    {"7", "7"},
	"LIFELINE_BREAKER_RESET_TIMEOUT":          {"45s", `"45s"`},
	"LIFELINE_BREAKER_BACKOFF_MULTIPLIER":     {"3", "3"},
	"LIFELINE_BREAKER_MAX_OPEN_TIMEOUT":       {"168h", `"168h"`},
	"LIFELINE_DEGRADATION_ENABLED":            {"no", "false"},
	"LIFELINE_DEGRADATION_RECOVERY_DELAY":     {"0s", `"0s"`},
	"LIFELINE_DEGRADATION_RECOVERY_THRESHOLD": {"0.25", "0.25"},
	"LIFELINE_DEGRADATION_LATENCY":            {"2s", `"2s"`},
	"LIFELINE_DEGRADATION_ERROR_RATE":         {"0.3", "0.3"},
	"LIFELINE_DEGRADATION_CONSECUTIVE_ERRORS": {"12", "12"},
}

func TestEnvEveryVariable(t *testing.T) {
	for _, s := range Settings() {
		if s.Kind == KindToken {
			continue
		}
		c, ok := envCases[s.Env]
		if !ok {
			t.Errorf("%s has no test case", s.Env)
			continue
		}
		t.Run(s.Env, func(t *testing.T) {
			def := mustLoad(t, WithEnv(nil))
			cfg := mustLoad(t, WithEnv(envOf(map[string]string{s.Env: c.value})))
			v, ok := s.get(cfg.Policy)
			if !ok {
				t.Fatal("no value")
			}
			if got := exprText(v); got != c.want {
				t.Errorf("%s=%q gives %s; want %s", s.Env, c.value, got, c.want)
			}
			if dv, _ := s.get(def.Policy); exprText(dv) == c.want {
				t.Errorf("test value equals the default %s: the test proves nothing", c.want)
			}
			if src, _ := cfg.Source(s.Key); src.Kind != SourceEnv || src.Name != s.Env || src.String() != "env "+s.Env {
				t.Errorf("source %v; want env %s", src, s.Env)
			}
			// An option wins over the variable.
			opt := mustLoad(t, WithEnv(envOf(map[string]string{s.Env: c.value})), Set(s.Key, defaultText(s)))
			if src, _ := opt.Source(s.Key); src.Kind != SourceOption {
				t.Errorf("with an option, source is %v", src)
			}
			// Empty means unset.
			empty := mustLoad(t, WithEnv(envOf(map[string]string{s.Env: "  "})))
			if src, _ := empty.Source(s.Key); src.Kind != SourceDefault {
				t.Errorf("empty variable: source %v; want default", src)
			}
		})
	}
}

// malformed has a malformed value for each kind.
var malformed = map[Kind][]string{
	KindBool:     {"sometimes", "2"},
	KindInt:      {"ten", "1.5", "10_000"},
	KindNumber:   {"fast", "NaN", "Inf"},
	KindDuration: {"30", "5 minutes", "-"},
	KindIntents:  {"Guilds,GuildMesages", ",", "Everything"},
	KindShards:   {"many", "2.5"},
}

func TestEnvMalformed(t *testing.T) {
	for _, s := range Settings() {
		if s.Kind == KindToken {
			continue
		}
		for _, bad := range malformed[s.Kind] {
			t.Run(s.Env+"="+bad, func(t *testing.T) {
				e := loadErr(t, WithEnv(envOf(map[string]string{s.Env: bad})))
				if len(e.Diagnostics) != 1 {
					t.Fatalf("want one diagnostic, got %q", e.Diagnostics.Lines())
				}
				d := e.Diagnostics[0]
				line := d.String()
				if d.Source.Kind != SourceEnv || d.Source.Name != s.Env || d.Setting != s.Key {
					t.Errorf("diagnostic located at %v (%s)", d.Source, d.Setting)
				}
				if want := fmt.Sprintf("env %s=%q: error:", s.Env, bad); !strings.HasPrefix(line, want) {
					t.Errorf("%q does not start with %q", line, want)
				}
				if s.Kind == KindIntents && bad != "," {
					if !strings.Contains(line, "valid intents: Guilds, GuildMembers") {
						t.Errorf("%q does not list the valid intents", line)
					}
					return
				}
				if !strings.Contains(line, "want "+s.Want()) {
					t.Errorf("%q does not say %q", line, "want "+s.Want())
				}
			})
		}
	}
}

func TestEnvMessages(t *testing.T) {
	tests := []struct {
		env  map[string]string
		want []string
	}{
		{map[string]string{"DISCORD_MAX_RECONNECT_ATTEMPTS": "ten"},
			[]string{`env DISCORD_MAX_RECONNECT_ATTEMPTS="ten": error: Invalid value: want a whole number from 0 to 1000000 (0 = no limit)`}},
		{map[string]string{"DISCORD_MAX_RECONNECT_ATTEMPTS": "-1"},
			[]string{`env DISCORD_MAX_RECONNECT_ATTEMPTS="-1": error: Value out of range: max_reconnect_attempts must be between 0 and 1000000; got -1.`}},
		{map[string]string{"DISCORD_INTENTS": "Guilds,GuildMesages"},
			[]string{`env DISCORD_INTENTS="Guilds,GuildMesages": error: Invalid value: unknown intent "GuildMesages" (did you mean "GuildMessages"?); valid intents: Guilds, GuildMembers,`}},
		{map[string]string{"DISCORD_RECONNECT_DELAY": "10m"},
			[]string{`env DISCORD_RECONNECT_DELAY="10m": error: Inconsistent reconnect delays: max_reconnect_delay (5m0s) must not be less than reconnect_delay (10m0s).`}},
		{map[string]string{"LIFELINE_HEALTH_INTERVAL": "5s", "LIFELINE_HEALTH_TIMEOUT": "5s"},
			[]string{`env LIFELINE_HEALTH_TIMEOUT="5s": error: Inconsistent health timing: timeout (5s) must be shorter than interval (5s), or checks would overlap.`}},
		{map[string]string{"DISCORD_SHARDS": "0"},
			[]string{`env DISCORD_SHARDS="0": error: Value out of range: shards must be between 1 and 65535; got 0.`}},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprint(tt.env), func(t *testing.T) {
			e := loadErr(t, WithEnv(envOf(tt.env)))
			got := strings.Join(e.Diagnostics.Lines(), "\n")
			for _, w := range tt.want {
				if !strings.Contains(got, w) {
					t.Errorf("diagnostics\n%s\ndo not contain\n%s", got, w)
				}
			}
		})
	}
}

func TestEnvIntents(t *testing.T) {
	tests := []struct {
		value   string
		want    discordgo.Intent
		warning string // a privileged intent to be flagged
	}{
		{"Guilds", discordgo.IntentGuilds, ""},
		{"GUILD_MESSAGES, guild-members", discordgo.IntentGuildMessages | discordgo.IntentGuildMembers, "GuildMembers is privileged"},
		{"AllWithoutPrivileged", discordgo.IntentGuilds | discordgo.IntentGuildModeration | discordgo.IntentGuildEmojis |
			discordgo.IntentGuildIntegrations | discordgo.IntentGuildWebhooks | discordgo.IntentGuildInvites | discordgo.IntentGuildVoiceStates |
			discordgo.IntentGuildMessages | discordgo.IntentGuildMessageReactions | discordgo.IntentGuildMessageTyping | discordgo.IntentDirectMessages |
			discordgo.IntentDirectMessageReactions | discordgo.IntentDirectMessageTyping | discordgo.IntentGuildScheduledEvents |
			discordgo.IntentAutoModerationConfiguration | discordgo.IntentAutoModerationExecution | discordgo.IntentGuildMessagePolls | discordgo.IntentDirectMessagePolls, ""},
		{"Guilds,MessageContent,Guilds", discordgo.IntentGuilds | discordgo.IntentMessageContent, "MessageContent is privileged"},
		{"GuildBans,GuildExpressions", discordgo.IntentGuildModeration | discordgo.IntentGuildEmojis, ""},
	}
	for _, tt := range tests {
		t.Run(tt.value, func(t *testing.T) {
			cfg := mustLoad(t, WithEnv(envOf(map[string]string{"DISCORD_INTENTS": tt.value})))
			if got := cfg.Intents(); got != tt.want {
				t.Errorf("intents %b; want %b", got, tt.want)
			}
			var warned bool
			for _, w := range cfg.Warnings {
				if strings.Contains(w.Detail, "privileged") {
					warned = true
					if w.Source.String() != "env DISCORD_INTENTS" || !strings.Contains(w.Detail, tt.warning) || tt.warning == "" {
						t.Errorf("warning %q at %v", w.Detail, w.Source)
					}
				}
			}
			if warned != (tt.warning != "") {
				t.Errorf("privileged warning: %v; want %v (%q)", warned, tt.warning != "", cfg.Warnings.Lines())
			}
		})
	}
}

func TestEnvBoolSpellings(t *testing.T) {
	for v, want := range map[string]bool{"1": true, "t": true, "TRUE": true, "Yes": true, "y": true, "on": true,
		"0": false, "f": false, "False": false, "NO": false, "n": false, "off": false} {
		cfg := mustLoad(t, WithEnv(envOf(map[string]string{"DISCORD_AUTO_RECONNECT": v, "LIFELINE_HEALTH_ENABLED": v})))
		if cfg.Policy.Connection.AutoReconnect != want || cfg.Policy.Health.Enabled != want {
			t.Errorf("%q read as %v/%v; want %v", v, cfg.Policy.Connection.AutoReconnect, cfg.Policy.Health.Enabled, want)
		}
	}
}

func TestSetOptionValues(t *testing.T) {
	tests := []struct {
		key   string
		value any
		want  string
	}{
		{"connection.intents", []string{"guilds", "DIRECT_MESSAGES"}, `["Guilds", "DirectMessages"]`},
		{"connection.intents", discordgo.IntentGuilds | discordgo.IntentGuildVoiceStates, `["Guilds", "GuildVoiceStates"]`},
		{"connection.shards", 0, `"auto"`},
		{"connection.shards", uint16(8), "8"},
		{"connection.shards", "auto", `"auto"`},
		{"connection.backoff_multiplier", 3, "3"},
		{"connection.backoff_multiplier", float32(1.5), "1.5"},
		{"health.interval", 45 * time.Second, `"45s"`},
		{"health.interval", "2m", `"2m"`},
		{"health.retries", int64(1), "1"},
		{"degradation.enabled", false, "false"},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%s=%v", tt.key, tt.value), func(t *testing.T) {
			cfg := mustLoad(t, WithEnv(nil), Set(tt.key, tt.value))
			s, _ := LookupSetting(tt.key)
			v, _ := s.get(cfg.Policy)
			if got := exprText(v); got != tt.want {
				t.Errorf("got %s; want %s", got, tt.want)
			}
			if src, _ := cfg.Source(tt.key); src.String() != fmt.Sprintf("option Set(%q)", tt.key) {
				t.Errorf("source %s", src)
			}
		})
	}
	bad := []struct {
		opt  Option
		want string
	}{
		{Set("health.interval", 30), `option Set("health.interval")="30": error: Invalid value: want a duration from 1s to 1h, e.g. "500ms", "30s" or "5m"; got int`},
		{Set("health.intervall", "30s"), `option Set("health.intervall"): error: Unknown setting: "health.intervall" is not a setting (did you mean "health.interval"?)`},
		{Set("connection.token", "x"), `error: Unknown setting: the token is set with WithToken`},
		{WithMaxReconnectAttempts(-3), `option WithMaxReconnectAttempts="-3": error: Value out of range: max_reconnect_attempts must be between 0 and 1000000; got -3.`},
		{WithIntents("Guilds", "Nope"), `option WithIntents="[Guilds Nope]": error: Invalid value: unknown intent "Nope"`},
		{Set("connection.intents", discordgo.Intent(1<<30)), `intent bits 1<<30 are not gateway intents`},
		{WithPreset("tiny"), `option WithPreset="tiny": error: Unknown preset: unknown preset "tiny" (small, medium, large)`},
		{WithPreset("smal"), `(did you mean "small"?)`},
	}
	for _, b := range bad {
		e := loadErr(t, WithEnv(nil), b.opt)
		if got := strings.Join(e.Diagnostics.Lines(), "\n"); !strings.Contains(got, b.want) {
			t.Errorf("diagnostics\n%s\ndo not contain\n%s", got, b.want)
		}
	}
}

func TestFormatDuration(t *testing.T) {
	for d, want := range map[time.Duration]string{0: "0s", 5 * time.Minute: "5m", time.Hour: "1h", 90 * time.Minute: "1h30m",
		1500 * time.Millisecond: "1.5s", 250 * time.Millisecond: "250ms", 2*time.Hour + 30*time.Second: "2h0m30s", 168 * time.Hour: "168h"} {
		if got := FormatDuration(d); got != want {
			t.Errorf("FormatDuration(%v) = %q; want %q", d, got, want)
		}
		if back, err := time.ParseDuration(want); err != nil || back != d {
			t.Errorf("%q does not read back as %v", want, d)
		}
	}
}

// defaultText is the built-in default as an environment variable would
// write it.
func defaultText(s Setting) string {
	v, _ := s.get(policy.Default())
	switch {
	case v.Type() == cty.String:
		return v.AsString()
	case v.Type().IsListType():
		var names []string
		for _, e := range v.AsValueSlice() {
			names = append(names, e.AsString())
		}
		return strings.Join(names, ",")
	}
	return exprText(v)
}
