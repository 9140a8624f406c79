package main

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/lifeline-bot/lifeline/core/policy"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/ from the current output")

// policyEnv is the environment `policy check` sees in these tests.
var policyEnv = map[string]string{"LIFELINE_TEST_DSN": "postgres://localhost/bot"}

// runPolicy runs a policy subcommand in-process.
func runPolicy(args ...string) (code int, stdout, stderr string) {
	env, out, errb := testEnv(policyEnv)
	code = run(context.Background(), env, args)
	return code, out.String(), errb.String()
}

// transcript is the golden form of one run: the command, its exit code and
// both streams.
func transcript(args []string, code int, stdout, stderr string) string {
	return fmt.Sprintf("$ lifeline %s\nexit %d\n-- stdout --\n%s-- stderr --\n%s",
		strings.Join(args, " "), code, stdout, stderr)
}

// golden compares got with the golden file, or rewrites it with -update.
func golden(t *testing.T, file, got string) {
	t.Helper()
	if *update {
		if err := os.WriteFile(file, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(file)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if got != string(want) {
		t.Errorf("output differs from %s (go test -update rewrites it)\n--- got ---\n%s\n--- want ---\n%s", file, got, want)
	}
}

// TestPolicyCheckShippedPolicies: every policy under policies/ passes.
func TestPolicyCheckShippedPolicies(t *testing.T) {
	files, err := filepath.Glob("../../policies/*.hcl")
	if err != nil || len(files) == 0 {
		t.Fatalf("no policies found: %v", err)
	}
	code, stdout, stderr := runPolicy(append([]string{"policy", "check"}, files...)...)
	if code != 0 {
		t.Errorf("policy check of policies/*.hcl: exit %d\n%s", code, stderr)
	}
	for _, f := range files {
		if !strings.Contains(stdout, f+": ok") {
			t.Errorf("%s not reported ok:\n%s", f, stdout)
		}
	}
	if strings.Contains(stderr, "error:") {
		t.Errorf("errors reported for shipped policies:\n%s", stderr)
	}
}

// TestPolicyCheckGolden checks every file under testdata/policy/check
// against its golden transcript (exit code, stdout, stderr).
func TestPolicyCheckGolden(t *testing.T) {
	files, err := filepath.Glob("testdata/policy/check/*.hcl")
	if err != nil || len(files) == 0 {
		t.Fatalf("no testdata: %v", err)
	}
	for _, file := range files {
		t.Run(filepath.Base(file), func(t *testing.T) {
			args := []string{"policy", "check", file}
			code, stdout, stderr := runPolicy(args...)
			golden(t, strings.TrimSuffix(file, ".hcl")+".golden", transcript(args, code, stdout, stderr))

			// Independently of the golden: the exit code agrees with the
			// decoder, and every error is printed with file:line:col.
			src, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			_, diags := policy.Decode(file, src, policy.Options{LookupEnv: func(n string) (string, bool) {
				v, ok := policyEnv[n]
				return v, ok
			}})
			if want := map[bool]int{true: 1, false: 0}[diags.HasErrors()]; code != want {
				t.Errorf("exit %d, want %d", code, want)
			}
			for _, d := range diags {
				loc := fmt.Sprintf("%s:%d:%d: ", d.Subject.Filename, d.Subject.Start.Line, d.Subject.Start.Column)
				if !strings.Contains(stderr, loc) {
					t.Errorf("stderr lacks %q (%s)", loc, d.Summary)
				}
			}
		})
	}
}

// TestPolicyCheckNeverPrintsToken: a literal token in a file is reported
// without its value.
func TestPolicyCheckNeverPrintsToken(t *testing.T) {
	_, stdout, stderr := runPolicy("policy", "check", "testdata/policy/check/token.hcl")
	for _, secret := range []string{"cli-golden-secret", "MTIzNDU2Nzg5MDEy"} {
		if strings.Contains(stdout+stderr, secret) {
			t.Errorf("output shows the token:\n%s%s", stdout, stderr)
		}
	}
}

func TestPolicyCheckSeveralFiles(t *testing.T) {
	tests := []struct {
		files []string
		code  int
	}{
		{[]string{"../../policies/default.hcl", "testdata/policy/check/warnings.hcl"}, 0},
		{[]string{"../../policies/default.hcl", "testdata/policy/check/syntax.hcl", "../../policies/small.hcl"}, 1},
		{[]string{"testdata/policy/check/no-such-file.hcl"}, 1},
	}
	for _, tt := range tests {
		code, stdout, stderr := runPolicy(append([]string{"policy", "check"}, tt.files...)...)
		if code != tt.code {
			t.Errorf("%v: exit %d, want %d\n%s", tt.files, code, tt.code, stderr)
		}
		// Every file gets its line, even after a failing one.
		for _, f := range tt.files {
			if !strings.Contains(stdout, f+": ") {
				t.Errorf("%v: no result line for %s:\n%s", tt.files, f, stdout)
			}
		}
	}
}

func TestPolicyUsageErrors(t *testing.T) {
	tests := []struct {
		args []string
		err  string
	}{
		{[]string{"policy", "check"}, "no policy file given"},
		{[]string{"policy", "check", "-x", "a.hcl"}, "flag provided but not defined: -x"},
		{[]string{"policy", "fmt"}, "no policy file given"},
		{[]string{"policy", "fmt", "-w", "-check", "a.hcl"}, "-w and -check exclude each other"},
		{[]string{"policy"}, "missing subcommand"},
		{[]string{"policy", "lint", "a.hcl"}, `unknown subcommand "lint"`},
	}
	for _, tt := range tests {
		code, _, stderr := runPolicy(tt.args...)
		if code != 2 || !strings.Contains(stderr, tt.err) {
			t.Errorf("%v: exit %d, stderr %q; want 2 and %q", tt.args, code, stderr, tt.err)
		}
	}
}

// TestPolicyFmt: stdout mode prints the canonical layout (golden), -check
// lists files that would change and exits 1, -w rewrites them (keeping the
// permission bits) after which -check passes, and a file that does not parse
// is reported and left alone.
func TestPolicyFmt(t *testing.T) {
	const in = "testdata/policy/fmt/unformatted.hcl"
	code, stdout, stderr := runPolicy("policy", "fmt", in)
	if code != 0 {
		t.Fatalf("fmt: exit %d\n%s", code, stderr)
	}
	golden(t, "testdata/policy/fmt/unformatted.golden", stdout)

	// The canonical form is a fixed point.
	if out, _ := formatPolicy("x.hcl", []byte(stdout)); string(out) != stdout {
		t.Errorf("formatting the formatted output changes it:\n%s", out)
	}

	dir := t.TempDir()
	src, err := os.ReadFile(in)
	if err != nil {
		t.Fatal(err)
	}
	messy := filepath.Join(dir, "messy.hcl")
	tidy := filepath.Join(dir, "tidy.hcl")
	broken := filepath.Join(dir, "broken.hcl")
	brokenSrc, err := os.ReadFile("testdata/policy/fmt/broken.hcl")
	if err != nil {
		t.Fatal(err)
	}
	for f, data := range map[string][]byte{messy: src, tidy: []byte(stdout), broken: brokenSrc} {
		if err := os.WriteFile(f, data, 0o640); err != nil {
			t.Fatal(err)
		}
	}

	code, out, _ := runPolicy("policy", "fmt", "-check", messy, tidy)
	if code != 1 || out != messy+"\n" {
		t.Errorf("-check: exit %d, listed %q; want 1 and only %s", code, out, messy)
	}
	if got, _ := os.ReadFile(messy); !bytes.Equal(got, src) {
		t.Error("-check changed the file")
	}

	code, out, stderr = runPolicy("policy", "fmt", "-w", messy, tidy)
	if code != 0 || out != messy+"\n" {
		t.Errorf("-w: exit %d, listed %q; want 0 and only %s\n%s", code, out, messy, stderr)
	}
	if got, _ := os.ReadFile(messy); string(got) != stdout {
		t.Errorf("-w wrote\n%s\nwant\n%s", got, stdout)
	}
	if info, err := os.Stat(messy); err != nil || info.Mode().Perm() != 0o640 {
		t.Errorf("-w: mode %v, %v; want 0640 kept", info.Mode().Perm(), err)
	}
	if leftovers, _ := filepath.Glob(filepath.Join(dir, ".*")); len(leftovers) > 0 {
		t.Errorf("-w left temporary files: %v", leftovers)
	}
	if code, out, _ := runPolicy("policy", "fmt", "-check", messy, tidy); code != 0 || out != "" {
		t.Errorf("-check after -w: exit %d, listed %q; want 0 and nothing", code, out)
	}

	code, out, stderr = runPolicy("policy", "fmt", "-w", broken, messy)
	if code != 1 {
		t.Errorf("-w with a broken file: exit %d, want 1", code)
	}
	if !strings.Contains(stderr, broken+":3:1: error: Missing item separator") || !strings.Contains(stderr, "left unchanged") {
		t.Errorf("broken file not reported with its location:\n%s", stderr)
	}
	if got, _ := os.ReadFile(broken); !bytes.Equal(got, brokenSrc) {
		t.Error("-w changed a file that does not parse")
	}
	if out != "" {
		t.Errorf("-w listed %q though nothing changed", out)
	}
}

// TestShippedPoliciesFormatted reports whether policies/*.hcl are in the
// canonical layout `lifeline policy fmt` produces.
func TestShippedPoliciesFormatted(t *testing.T) {
	files, err := filepath.Glob("../../policies/*.hcl")
	if err != nil || len(files) == 0 {
		t.Fatalf("no policies found: %v", err)
	}
	if code, out, stderr := runPolicy(append([]string{"policy", "fmt", "-check"}, files...)...); code != 0 {
		t.Errorf("policy fmt -check: exit %d; not formatted:\n%s%s", code, out, stderr)
	}
}
