package config

import (
	"errors"
	"strings"
	"testing"
)

// envSettings are the settings an environment variable sets (the token
// aside: it is read, never parsed).
func envSettings() []Setting {
	var out []Setting
	for _, s := range Settings() {
		if s.Env != "" && s.Kind != KindToken {
			out = append(out, s)
		}
	}
	return out
}

// FuzzEnvSettings sets one setting's environment variable (chosen by the
// first input) to arbitrary text, beside the token, and loads. A value is
// either accepted, recorded as coming from that variable, and exported and
// reloaded to the same configuration; or refused with an ErrInvalid error
// that names the variable. Neither ever shows the token, even when the
// value is the token or contains it.
func FuzzEnvSettings(f *testing.F) {
	settings := envSettings()
	odd := []string{"", " ", "garbage", "-1", "0", "1e309", "NaN", "-Inf", "9223372036854775808", "0x10",
		"1h1h", "5s ", " 5s", "-5s", "auto", "AUTO", "Guilds,MessageContent", "Guilds,,", ",", "yes", "∞", "\x00",
		sentinelToken, "Guilds," + sentinelToken, "1" + sentinelToken, "\"" + sentinelToken + "\""}
	for i, s := range settings {
		f.Add(uint8(i), s.Default())
		for _, v := range odd {
			f.Add(uint8(i), v)
		}
	}
	f.Fuzz(func(t *testing.T, i uint8, value string) {
		s := settings[int(i)%len(settings)]
		env := testEnv()
		env[s.Env] = value
		cfg, err := Load(WithEnv(envOf(env)))
		fuzzRoundTrip(t, cfg, err)
		if err != nil {
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("%s=%q: %v is not ErrInvalid", s.Env, value, err)
			}
			if !strings.Contains(err.Error(), s.Env) {
				t.Fatalf("%s=%q: the error does not name the variable: %v", s.Env, value, err)
			}
			return
		}
		if strings.TrimSpace(value) == "" {
			return // an empty variable is not set
		}
		if src, ok := cfg.Source(s.Key); !ok || src.Kind != SourceEnv || src.Name != s.Env {
			t.Fatalf("%s=%q accepted, but %s comes from %v", s.Env, value, s.Key, src)
		}
	})
}
