package config

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/hcl/v2"

	"github.com/lifeline-bot/lifeline/core/policy"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/")

// sentinelToken is shaped like a Discord token; no output may contain it.
const sentinelToken = "MTA5OTk5OTk5OTk5OTk5OTk5OQ.GsEnTi.nel_TOKEN_must_never_appear_0123456789"

// envOf returns a lookup over m.
func envOf(m map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) {
		v, ok := m[k]
		return v, ok
	}
}

// testEnv is the environment of the golden tests.
func testEnv() map[string]string {
	return map[string]string{"DISCORD_TOKEN": sentinelToken, "BOT_TOKEN": sentinelToken, "DB_DSN": "postgres://db.internal/bot"}
}

func mustLoad(t *testing.T, opts ...Option) *Config {
	t.Helper()
	cfg, err := Load(opts...)
	if err != nil {
		var e *Error
		if errors.As(err, &e) {
			var b bytes.Buffer
			_ = e.Write(&b, false)
			t.Fatalf("Load: %v\n%s", err, b.String())
		}
		t.Fatalf("Load: %v", err)
	}
	return cfg
}

func loadErr(t *testing.T, opts ...Option) *Error {
	t.Helper()
	_, err := Load(opts...)
	if err == nil {
		t.Fatal("Load succeeded; want an error")
	}
	var e *Error
	if !errors.As(err, &e) {
		t.Fatalf("error is %T, not *Error: %v", err, err)
	}
	if !errors.Is(err, ErrInvalid) {
		t.Errorf("error does not match ErrInvalid: %v", err)
	}
	return e
}

// golden compares got with testdata/name, rewriting it with -update.
func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs (go test -update rewrites it):\n--- got\n%s\n--- want\n%s", path, got, want)
	}
}

// structure renders the values of a policy, without where they came from
// (ranges, file names, generated flags), for comparing configurations.
func structure(t *testing.T, p *policy.Policy) string {
	t.Helper()
	b, err := json.MarshalIndent(normalize(reflect.ValueOf(p)), "", " ")
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func normalize(v reflect.Value) any {
	if !v.IsValid() {
		return nil
	}
	if v.CanInterface() {
		switch x := v.Interface().(type) {
		case time.Duration:
			return x.String()
		case hcl.Range, policy.Ranges:
			return nil
		case policy.Level:
			return x.String()
		}
	}
	switch v.Kind() {
	case reflect.Pointer, reflect.Interface:
		if v.IsNil() {
			return nil
		}
		return normalize(v.Elem())
	case reflect.Struct:
		out := map[string]any{}
		t := v.Type()
		for i := 0; i < t.NumField(); i++ {
			f := t.Field(i)
			if !f.IsExported() || f.Name == "Generated" || f.Name == "Filename" {
				continue
			}
			out[f.Name] = normalize(v.Field(i))
		}
		return out
	case reflect.Slice:
		if v.IsNil() {
			return "nil"
		}
		out := make([]any, v.Len())
		for i := range out {
			out[i] = normalize(v.Index(i))
		}
		return out
	case reflect.Map:
		if v.IsNil() {
			return "nil"
		}
		out := map[string]any{}
		for _, k := range v.MapKeys() {
			out[fmt.Sprint(k.Interface())] = normalize(v.MapIndex(k))
		}
		return out
	}
	return v.Interface()
}

// sourcesText renders Sources sorted by key.
func sourcesText(cfg *Config) string {
	src := cfg.Sources()
	keys := make([]string, 0, len(src))
	for k := range src {
		keys = append(keys, k)
	}
	sortStrings(keys)
	var b strings.Builder
	for _, k := range keys {
		fmt.Fprintf(&b, "%-42s %s\n", k, src[k])
	}
	return b.String()
}

func sortStrings(s []string) {
	for i := 1; i < len(s); i++ {
		for j := i; j > 0 && s[j] < s[j-1]; j-- {
			s[j], s[j-1] = s[j-1], s[j]
		}
	}
}
