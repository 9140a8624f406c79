package policy

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/hcl/v2"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/")

// testEnv is the environment every golden decode sees.
var testEnv = map[string]string{"BOT_TOKEN": "must-never-appear", "DB_DSN": "postgres://db.internal/bot"}

func testOptions() Options {
	return Options{LookupEnv: func(k string) (string, bool) { v, ok := testEnv[k]; return v, ok }}
}

// normalize turns a decoded value into JSON-friendly data: durations as
// strings, ranges as "line:col-line:col", levels by name. With structural
// set it drops where things came from (ranges, generated flags), for
// comparing policies written differently.
func normalize(v reflect.Value, structural bool) any {
	if !v.IsValid() {
		return nil
	}
	switch x := v.Interface().(type) {
	case time.Duration:
		return x.String()
	case hcl.Range:
		if x.Empty() && x.Start.Line == 0 {
			return nil
		}
		return fmt.Sprintf("%d:%d-%d:%d", x.Start.Line, x.Start.Column, x.End.Line, x.End.Column)
	case Level:
		return x.String()
	case Ranges:
		if structural {
			return nil
		}
		attrs := map[string]any{}
		for _, n := range x.Names() {
			attrs[n] = normalize(reflect.ValueOf(x.Attrs[n]), false)
		}
		return map[string]any{"block": normalize(reflect.ValueOf(x.Block), false), "attrs": attrs}
	}
	switch v.Kind() {
	case reflect.Pointer, reflect.Interface:
		if v.IsNil() {
			return nil
		}
		return normalize(v.Elem(), structural)
	case reflect.Struct:
		out := map[string]any{}
		t := v.Type()
		for i := 0; i < t.NumField(); i++ {
			f := t.Field(i)
			if !f.IsExported() {
				continue
			}
			if structural && (f.Name == "Generated" || f.Name == "Range" || f.Name == "Ranges" || f.Name == "Filename" || f.Name == "Thresholds") {
				continue
			}
			out[f.Name] = normalize(v.Field(i), structural)
		}
		return out
	case reflect.Slice:
		if v.IsNil() {
			return nil
		}
		out := make([]any, v.Len())
		for i := range out {
			out[i] = normalize(v.Index(i), structural)
		}
		return out
	case reflect.Map:
		if v.IsNil() {
			return nil
		}
		out := map[string]any{}
		for _, k := range v.MapKeys() {
			out[fmt.Sprint(k.Interface())] = normalize(v.MapIndex(k), structural)
		}
		return out
	}
	return v.Interface()
}

func policyJSON(t *testing.T, p *Policy, structural bool) []byte {
	t.Helper()
	b, err := json.MarshalIndent(normalize(reflect.ValueOf(p), structural), "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	return append(b, '\n')
}

func checkGolden(t *testing.T, path string, got []byte) {
	t.Helper()
	if *update {
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
		t.Errorf("%s differs from the output (go test -update rewrites it):\n--- got\n%s\n--- want\n%s", path, got, want)
	}
}

func TestGoldenValid(t *testing.T) {
	files, _ := filepath.Glob("testdata/valid/*.hcl")
	if len(files) == 0 {
		t.Fatal("no testdata/valid/*.hcl")
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			src, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			name := filepath.Base(f)
			p, diags := Decode(name, src, testOptions())
			if diags.HasErrors() {
				var b bytes.Buffer
				_ = WriteDiagnostics(&b, diags, map[string][]byte{name: src}, false)
				t.Fatalf("valid policy has errors:\n%s", b.String())
			}
			got := policyJSON(t, p, false)
			if len(diags) > 0 {
				got = append(got, []byte("// warnings:\n// "+strings.Join(DiagnosticLines(diags), "\n// ")+"\n")...)
			}
			if bytes.Contains(got, []byte(testEnv["BOT_TOKEN"])) {
				t.Fatal("the decoded policy holds the token's value")
			}
			checkGolden(t, strings.TrimSuffix(f, ".hcl")+".json", got)
		})
	}
}

func TestGoldenInvalid(t *testing.T) {
	files, _ := filepath.Glob("testdata/invalid/*.hcl")
	if len(files) == 0 {
		t.Fatal("no testdata/invalid/*.hcl")
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			src, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			name := filepath.Base(f)
			p, diags := Decode(name, src, testOptions())
			if !diags.HasErrors() || p != nil {
				t.Fatalf("invalid policy decoded without errors (policy %v, diags %v)", p, diags)
			}
			var b bytes.Buffer
			for _, l := range DiagnosticLines(diags) {
				b.WriteString(l + "\n")
			}
			b.WriteString("\n======== as printed ========\n\n")
			if err := WriteDiagnostics(&b, diags, map[string][]byte{name: src}, false); err != nil {
				t.Fatal(err)
			}
			if bytes.Contains(b.Bytes(), []byte("secret-token-value")) {
				t.Fatal("diagnostics echo the literal token")
			}
			checkGolden(t, strings.TrimSuffix(f, ".hcl")+".txt", b.Bytes())
		})
	}
}

// TestDefaultFileMatchesBuiltin keeps policies/default.hcl and Default()
// the same policy.
func TestDefaultFileMatchesBuiltin(t *testing.T) {
	p, err := Load("../../policies/default.hcl", testOptions())
	if err != nil {
		t.Fatal(err)
	}
	got, want := policyJSON(t, p, true), policyJSON(t, Default(), true)
	if !bytes.Equal(got, want) {
		t.Errorf("policies/default.hcl and Default() differ:\n--- file\n%s\n--- Default()\n%s", got, want)
	}
	empty, diags := Decode("empty.hcl", nil, testOptions())
	if diags.HasErrors() {
		t.Fatal(diags)
	}
	if e := policyJSON(t, empty, true); !bytes.Equal(e, want) {
		t.Errorf("an empty file is not the default policy:\n%s", e)
	}
}

// TestPresetsValid checks every file under policies/ decodes without
// errors or warnings.
func TestPresetsValid(t *testing.T) {
	files, _ := filepath.Glob("../../policies/*.hcl")
	if len(files) < 4 {
		t.Fatalf("want default, small, medium and large presets; found %v", files)
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			src, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			_, diags := Decode(filepath.Base(f), src, testOptions())
			if len(diags) > 0 {
				var b bytes.Buffer
				_ = WriteDiagnostics(&b, diags, map[string][]byte{filepath.Base(f): src}, false)
				t.Fatalf("%s:\n%s", f, b.String())
			}
		})
	}
}
