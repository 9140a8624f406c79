package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/debug"
	"strings"
	"testing"
)

// lifelineBin is the lifeline binary TestMain builds for the tests that run
// it as a process.
var lifelineBin string

func TestMain(m *testing.M) {
	os.Exit(testMain(m))
}

func testMain(m *testing.M) int {
	dir, err := os.MkdirTemp("", "lifeline-cli-test")
	if err != nil {
		fmt.Fprintln(os.Stderr, "TestMain:", err)
		return 1
	}
	defer os.RemoveAll(dir)
	lifelineBin = filepath.Join(dir, "lifeline")
	args := []string{"build", "-o", lifelineBin}
	if raceEnabled {
		args = append(args, "-race")
	}
	build := exec.Command("go", append(args, ".")...)
	if out, err := build.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "TestMain: go build: %v\n%s", err, out)
		return 1
	}
	return m.Run()
}

// testEnv returns a cliEnv writing to buffers, with an empty environment
// unless vars are given.
func testEnv(vars map[string]string) (*cliEnv, *bytes.Buffer, *bytes.Buffer) {
	var out, errb bytes.Buffer
	return &cliEnv{Stdout: &out, Stderr: &errb, Getenv: func(k string) string { return vars[k] }}, &out, &errb
}

// testRegistry builds a registry of commands that record the arguments they
// got.
func testRegistry(t *testing.T, names ...string) (*registry, *[]string) {
	t.Helper()
	var got []string
	r := &registry{}
	for _, n := range names {
		n := n
		err := r.add(command{Name: n, Summary: "the " + n + " command", Run: func(_ context.Context, _ *cliEnv, args []string) int {
			got = append(got, n+"|"+strings.Join(args, ","))
			return 7
		}})
		if err != nil {
			t.Fatal(err)
		}
	}
	return r, &got
}

func TestDispatchLongestPrefix(t *testing.T) {
	tests := []struct {
		args []string
		want string // "" when no command runs
		code int
		err  string // substring of stderr
	}{
		{args: []string{"policy", "check", "a.hcl"}, want: "policy check|a.hcl", code: 7},
		{args: []string{"policy", "check", "deep", "x"}, want: "policy check deep|x", code: 7},
		{args: []string{"policy", "fmt", "-w"}, want: "policy fmt|-w", code: 7},
		{args: []string{"policy"}, code: 2, err: "missing subcommand"},
		{args: []string{"policy", "lint"}, code: 2, err: `unknown subcommand "lint"`},
		{args: []string{"demo"}, want: "demo|", code: 7},
		{args: []string{"demox"}, code: 2, err: `unknown command "demox"`},
		{args: nil, code: 2, err: "usage: lifeline COMMAND"},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, "_"), func(t *testing.T) {
			r, got := testRegistry(t, "policy check", "policy check deep", "policy fmt", "demo")
			env, _, errb := testEnv(nil)
			if code := r.dispatch(context.Background(), env, tt.args); code != tt.code {
				t.Errorf("exit code %d, want %d (stderr %q)", code, tt.code, errb)
			}
			ran := strings.Join(*got, ";")
			if ran != tt.want {
				t.Errorf("ran %q, want %q", ran, tt.want)
			}
			if !strings.Contains(errb.String(), tt.err) {
				t.Errorf("stderr %q does not contain %q", errb, tt.err)
			}
			// A usage error lists the commands to choose from: the group's
			// when the first word names one, all of them otherwise.
			if tt.code == 2 && !strings.Contains(errb.String(), "policy fmt") {
				t.Errorf("usage error does not list the commands: %q", errb)
			}
			if inGroup := len(tt.args) > 0 && tt.args[0] == "policy"; inGroup && strings.Contains(errb.String(), "demo") {
				t.Errorf("usage error for the policy group lists other commands: %q", errb)
			}
		})
	}
}

func TestRegisterRejects(t *testing.T) {
	run := func(context.Context, *cliEnv, []string) int { return 0 }
	tests := []struct {
		name string
		c    command
	}{
		{"empty", command{Name: "", Run: run}},
		{"double space", command{Name: "policy  check", Run: run}},
		{"leading space", command{Name: " demo", Run: run}},
		{"flag-like", command{Name: "-x", Run: run}},
		{"nil run", command{Name: "demo"}},
		{"duplicate", command{Name: "dup", Run: run}},
	}
	r := &registry{}
	if err := r.add(command{Name: "dup", Run: run}); err != nil {
		t.Fatal(err)
	}
	for _, tt := range tests {
		if err := r.add(tt.c); err == nil {
			t.Errorf("%s: add(%q) accepted", tt.name, tt.c.Name)
		}
	}
}

func TestHelpListsSortedCommands(t *testing.T) {
	env, out, _ := testEnv(nil)
	if code := run(context.Background(), env, []string{"help"}); code != 0 {
		t.Fatalf("help: exit %d", code)
	}
	names := commands.names()
	if len(names) < 2 {
		t.Fatalf("registry has %v", names)
	}
	last := -1
	for _, n := range names {
		// At a line's start: a summary may hold "  run " too.
		i := strings.Index(out.String(), "\n  "+n+" ")
		if i < 0 {
			t.Fatalf("help output lacks %q:\n%s", n, out)
		}
		if i < last {
			t.Errorf("%q listed out of order:\n%s", n, out)
		}
		last = i
		if !strings.Contains(out.String(), commands.byName[n].Summary) {
			t.Errorf("help output lacks the summary of %q", n)
		}
	}
}

func TestHelpName(t *testing.T) {
	tests := []struct {
		args []string
		code int
		out  string
		err  string
	}{
		{args: []string{"help", "version"}, out: "usage: lifeline version"},
		{args: []string{"help", "help"}, out: "usage: lifeline help [NAME...]"},
		{args: []string{"--help"}, out: "these are its commands"},
		{args: []string{"help", "nope"}, code: 2, err: `unknown command "nope"`},
		{args: []string{"version", "-h"}, err: "usage: lifeline version"},
		{args: []string{"version", "-bogus"}, code: 2, err: "flag provided but not defined: -bogus"},
		{args: []string{"version", "extra"}, code: 2, err: `unexpected argument "extra"`},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, "_"), func(t *testing.T) {
			env, out, errb := testEnv(nil)
			if code := run(context.Background(), env, tt.args); code != tt.code {
				t.Errorf("exit %d, want %d; stderr %q", code, tt.code, errb)
			}
			if !strings.Contains(out.String(), tt.out) {
				t.Errorf("stdout %q lacks %q", out, tt.out)
			}
			if !strings.Contains(errb.String(), tt.err) {
				t.Errorf("stderr %q lacks %q", errb, tt.err)
			}
		})
	}
}

func TestVersionText(t *testing.T) {
	tests := []struct {
		name string
		info *debug.BuildInfo
		ok   bool
		want []string
	}{
		{"no build info", nil, false, []string{"lifeline unknown\n", "go"}},
		{"module version", &debug.BuildInfo{GoVersion: "go1.26.0", Main: debug.Module{Version: "v1.2.3"}}, true,
			[]string{"lifeline v1.2.3\n", "go1.26.0 "}},
		{"vcs", &debug.BuildInfo{GoVersion: "go1.26.0", Main: debug.Module{Version: "(devel)"}, Settings: []debug.BuildSetting{
			{Key: "vcs.revision", Value: "0123456789abcdef0123"}, {Key: "vcs.time", Value: "2026-11-27T10:00:00Z"}, {Key: "vcs.modified", Value: "true"},
		}}, true, []string{"lifeline (devel) (revision 0123456789ab+dirty, 2026-11-27T10:00:00Z)\n"}},
	}
	for _, tt := range tests {
		got := versionText(tt.info, tt.ok)
		for _, w := range tt.want {
			if !strings.Contains(got, w) {
				t.Errorf("%s: %q lacks %q", tt.name, got, w)
			}
		}
	}
	env, out, _ := testEnv(nil)
	if code := run(context.Background(), env, []string{"version"}); code != 0 || !strings.HasPrefix(out.String(), "lifeline ") {
		t.Errorf("version: exit %d, output %q", code, out)
	}
}
