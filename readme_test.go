package lifeline_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// readmeCommand is a shell command README.md shows: a line of a ```sh
// (bash, shell, console) block, or an inline code span that starts with
// make, lifeline or go followed by a subcommand.
type readmeCommand struct {
	line int
	text string
}

var inlineCommand = regexp.MustCompile("`((?:make|lifeline|go) [a-z][^`]*)`")

// readmeCommands extracts the commands of a Markdown file.
func readmeCommands(t *testing.T, path string) []readmeCommand {
	t.Helper()
	src, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var out []readmeCommand
	seen := map[string]bool{}
	add := func(line int, text string) {
		if text != "" && !seen[text] {
			seen[text] = true
			out = append(out, readmeCommand{line, text})
		}
	}
	fence, shell := "", false
	for i, line := range strings.Split(string(src), "\n") {
		trimmed := strings.TrimSpace(line)
		if strings.HasPrefix(trimmed, "```") {
			if fence == "" {
				fence = "```"
				info := strings.TrimPrefix(trimmed, "```")
				shell = info == "sh" || info == "bash" || info == "shell" || info == "console"
			} else {
				fence, shell = "", false
			}
			continue
		}
		if fence != "" {
			if shell {
				add(i+1, stripComment(strings.TrimPrefix(trimmed, "$ ")))
			}
			continue
		}
		for _, m := range inlineCommand.FindAllStringSubmatch(line, -1) {
			add(i+1, m[1])
		}
	}
	return out
}

// stripComment removes a trailing shell comment outside quotes.
func stripComment(s string) string {
	var quote rune
	for i, r := range s {
		switch {
		case quote != 0:
			if r == quote {
				quote = 0
			}
		case r == '"' || r == '\'':
			quote = r
		case r == '#' && (i == 0 || s[i-1] == ' ' || s[i-1] == '\t'):
			return strings.TrimSpace(s[:i])
		}
	}
	return strings.TrimSpace(s)
}

// shellWords splits a command line the way sh would for the simple
// commands a README shows: words separated by blanks, '...' and "..."
// quoting (no expansion).
func shellWords(s string) ([]string, error) {
	var words []string
	var cur strings.Builder
	inWord := false
	var quote rune
	for _, r := range s {
		switch {
		case quote != 0:
			if r == quote {
				quote = 0
			} else {
				cur.WriteRune(r)
			}
		case r == '"' || r == '\'':
			quote, inWord = r, true
		case r == ' ' || r == '\t':
			if inWord {
				words = append(words, cur.String())
				cur.Reset()
				inWord = false
			}
		default:
			cur.WriteRune(r)
			inWord = true
		}
	}
	if quote != 0 {
		return nil, fmt.Errorf("unterminated %c in %q", quote, s)
	}
	if inWord {
		words = append(words, cur.String())
	}
	return words, nil
}

// readmeEnv is what the runners share: the lifeline binary, built once.
type readmeEnv struct {
	bin string
}

// A runner runs the README commands it matches.
type runner struct {
	match func(text string) bool
	run   func(t *testing.T, env *readmeEnv, text string)
}

func exactly(s string) func(string) bool { return func(t string) bool { return t == s } }
func prefix(s string) func(string) bool {
	return func(t string) bool { return strings.HasPrefix(t, s) }
}

// runners cover every command README.md shows; a command none matches
// fails TestREADMECommands, so a new one comes with its runner.
var runners = []runner{
	{exactly("make test"), runMakeTest},
	{exactly("make help"), runMakeHelp},
	{exactly("make bench"), runMakeBench},
	{exactly("make alerts-check"), runMakeAlertsCheck},
	{prefix("make demo"), runMakeDemo},
	{exactly("lifeline run"), runLifelineRun},
	{prefix("lifeline policy test "), runPolicyTest},
	{exactly("lifeline fake-discord"), runFakeDiscord},
}

// TestREADMECommands runs every command README.md shows (issue #9), each
// as documented, with the lifeline binary built once. Long-running ones
// run to the point their description promises and are then stopped the
// way the README or their usage says; `make test` is CI's own command and
// is checked, not run (see runMakeTest).
func TestREADMECommands(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the lifeline binary and runs the README's commands")
	}
	if _, err := exec.LookPath("make"); err != nil {
		t.Fatalf("make is needed (README: You need Go 1.26 and make): %v", err)
	}
	cmds := readmeCommands(t, "README.md")
	if len(cmds) < 3 {
		t.Fatalf("README.md shows %d commands: the extraction is broken", len(cmds))
	}
	bin := filepath.Join(t.TempDir(), "lifeline")
	build := exec.Command("go", "build", "-o", bin, "./cmd/lifeline")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build ./cmd/lifeline: %v\n%s", err, out)
	}
	env := &readmeEnv{bin: bin}
	for _, c := range cmds {
		var r *runner
		for i := range runners {
			if runners[i].match(c.text) {
				r = &runners[i]
				break
			}
		}
		if r == nil {
			t.Errorf("README.md:%d: %q has no runner in readme_test.go: add one", c.line, c.text)
			continue
		}
		t.Run(c.text, func(t *testing.T) {
			t.Parallel()
			r.run(t, env, c.text)
		})
	}
}

func TestReadmeCommandExtraction(t *testing.T) {
	md := "Run `make demo` or `make demo X=\"a b\"`, not `lifeline.New` or `make`.\n" +
		"```sh\nmake test   # all of it\n$ lifeline run\n```\n```go\nmake(chan int)\n```\n```\nnot a command\n```\n"
	path := filepath.Join(t.TempDir(), "r.md")
	if err := os.WriteFile(path, []byte(md), 0o600); err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, c := range readmeCommands(t, path) {
		got = append(got, fmt.Sprintf("%d:%s", c.line, c.text))
	}
	want := []string{`1:make demo`, `1:make demo X="a b"`, `3:make test`, `4:lifeline run`}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Fatalf("got %q, want %q", got, want)
	}
	words, err := shellWords(`make demo DEMOFLAGS="--duration 20s --json" 'x y'`)
	if err != nil || strings.Join(words, "|") != "make|demo|DEMOFLAGS=--duration 20s --json|x y" {
		t.Fatalf("shellWords = %q, %v", words, err)
	}
	if _, err := shellWords(`make "x`); err == nil {
		t.Fatal("unterminated quote accepted")
	}
}

// makeRecipe returns the commands `make -n ARGS` prints (what make would
// run, without running it).
func makeRecipe(t *testing.T, args ...string) string {
	t.Helper()
	cmd := exec.Command("make", append([]string{"-n", "--no-print-directory"}, args...)...)
	cmd.Env = outsideMake(os.Environ())
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("make -n %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// outsideMake drops the variables a running make passes to its children
// (under `make test` this test is one): a nested make would print
// "Entering directory" lines and inherit the outer make's flags.
func outsideMake(env []string) []string {
	out := env[:0:0]
	for _, kv := range env {
		switch name, _, _ := strings.Cut(kv, "="); name {
		case "MAKEFLAGS", "MFLAGS", "MAKELEVEL", "MAKEOVERRIDES":
			continue
		}
		out = append(out, kv)
	}
	return out
}

// runMakeTest: `make test` is the command CI runs (.ci/run), and this test
// runs inside it, so running it here would recurse. Its steps are checked
// instead: each one the README promises is in its recipe.
func runMakeTest(t *testing.T, _ *readmeEnv, _ string) {
	ci, err := os.ReadFile(".ci/run")
	if err != nil {
		t.Fatal(err)
	}
	if !regexp.MustCompile(`(?m)^make test$`).Match(ci) {
		t.Fatalf(".ci/run does not run `make test`:\n%s", ci)
	}
	recipe := makeRecipe(t, "test")
	for _, step := range []string{"go vet ./...", "staticcheck", "gofmt -l", "-check", "-fuzz", "-bench . -benchtime 1x", "go test -race -count=1",
		"GOARCH=386", "GOOS=$"} {
		if !strings.Contains(recipe, step) {
			t.Errorf("make test does not run %q:\n%s", step, recipe)
		}
	}
	if !regexp.MustCompile(`go test -race -count=1 .*\./\.\.\.`).MatchString(recipe) {
		t.Errorf("make test does not run every package's tests under -race:\n%s", recipe)
	}
	t.Skip("make test is CI's command (.ci/run) and runs this test: its steps are checked above, running it would recurse")
}

// runMakeHelp runs `make help`: it lists every make target the README names.
func runMakeHelp(t *testing.T, _ *readmeEnv, _ string) {
	cmd := exec.Command("make", "--no-print-directory", "help")
	cmd.Env = outsideMake(os.Environ())
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("make help: %v\n%s", err, out)
	}
	listed := map[string]bool{}
	for _, line := range strings.Split(string(out), "\n") {
		if f := strings.Fields(line); len(f) > 1 {
			listed[f[0]] = true
		}
	}
	for _, c := range readmeCommands(t, "README.md") {
		words, err := shellWords(c.text)
		if err != nil {
			t.Fatal(err)
		}
		if words[0] == "make" && !listed[words[1]] {
			t.Errorf("README.md:%d names `make %s`, which make help does not list:\n%s", c.line, words[1], out)
		}
	}
}

// runMakeBench: `make bench` takes about ten minutes, so it is not run here;
// `make test` runs each of its benchmarks once (bench-smoke). The recipe
// writes the table the README links to.
func runMakeBench(t *testing.T, _ *readmeEnv, _ string) {
	recipe := makeRecipe(t, "bench")
	for _, want := range []string{"docs/benchmarks.txt", "-out docs/benchmarks.md"} {
		if !strings.Contains(recipe, want) {
			t.Errorf("make bench does not write %s:\n%s", want, recipe)
		}
	}
	if !strings.Contains(makeRecipe(t, "test"), "-benchtime 1x") {
		t.Error("make test no longer runs the benchmarks once")
	}
	t.Skip("make bench runs for about ten minutes; make test's bench-smoke runs each of its benchmarks once")
}

// runMakeAlertsCheck: CI runs `make alerts-check` after `make test`; its
// recipe runs promtool's rule check and unit tests on the shipped rules.
// The first build of promtool takes minutes, so it runs here only when the
// pinned binary is already built.
func runMakeAlertsCheck(t *testing.T, _ *readmeEnv, _ string) {
	ci, err := os.ReadFile(".ci/run")
	if err != nil {
		t.Fatal(err)
	}
	if !regexp.MustCompile(`(?m)^\s*make alerts-check$`).Match(ci) {
		t.Fatalf(".ci/run does not run `make alerts-check`:\n%s", ci)
	}
	recipe := makeRecipe(t, "alerts-check")
	for _, want := range []string{"check rules examples/prometheus/alerts.yml", "test rules examples/prometheus/alerts_test.yml"} {
		if !strings.Contains(recipe, want) {
			t.Errorf("make alerts-check does not run %q:\n%s", want, recipe)
		}
	}
	if strings.Contains(recipe, "go install") {
		t.Skip("promtool is not built yet (its first build takes minutes); CI builds and runs it in .ci/run")
	}
	cmd := exec.Command("make", "alerts-check")
	cmd.Env = outsideMake(os.Environ())
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("make alerts-check: %v\n%s", err, out)
	}
}

// lifelineArgs turns a make command whose recipe is `go run ./cmd/lifeline
// ARGS` into ARGS, so the test runs the binary built once.
func lifelineArgs(t *testing.T, text string) []string {
	t.Helper()
	words, err := shellWords(text)
	if err != nil {
		t.Fatal(err)
	}
	recipe := strings.TrimSpace(makeRecipe(t, words[1:]...))
	const goRun = "go run ./cmd/lifeline "
	if strings.Contains(recipe, "\n") || !strings.HasPrefix(recipe, goRun) {
		t.Fatalf("%s runs %q, not one `%s...` line: update readme_test.go", text, recipe, goRun)
	}
	args, err := shellWords(strings.TrimPrefix(recipe, goRun))
	if err != nil {
		t.Fatal(err)
	}
	return args
}

// runMakeDemo runs `make demo` as the recipe make would run. A story of up
// to 30s (`make demo DEMOFLAGS="--duration 20s --json"`) runs to its end:
// exit 0, and with --json one JSON object per line ending with a
// successful summary. The default one-minute story runs until the first
// incident has recovered and the dashboard answers, then gets Ctrl-C and
// must stop promptly (exit 1: the story did not finish). The dashboard
// listens on a free port instead of 8484, which another test or a
// developer's demo may hold; nothing else differs from the README's command.
func runMakeDemo(t *testing.T, env *readmeEnv, text string) {
	args := lifelineArgs(t, text)
	if len(args) == 0 || args[0] != "demo" {
		t.Fatalf("%s runs lifeline %q, not lifeline demo", text, args)
	}
	args = append(args, "--http", "127.0.0.1:0")
	duration, asJSON := time.Minute, false
	for i, a := range args {
		switch {
		case a == "--json" || a == "-json":
			asJSON = true
		case (a == "--duration" || a == "-duration") && i+1 < len(args):
			d, err := time.ParseDuration(args[i+1])
			if err != nil {
				t.Fatal(err)
			}
			duration = d
		}
	}
	p := start(t, env.bin, nil, args...)
	if duration <= 30*time.Second {
		code := p.wait(t, duration+time.Minute)
		if code != 0 {
			t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", code, p.stdout(), p.stderr())
		}
		if asJSON {
			checkDemoJSON(t, p.stdout())
		} else if !strings.Contains(p.stdout(), "summary") {
			t.Errorf("no summary:\n%s", p.stdout())
		}
		return
	}
	p.waitFor(t, "the first incident to recover", 45*time.Second, func() bool {
		return strings.Contains(p.stdout(), "READY") && strings.Contains(p.stdout(), "recovered after")
	})
	dash := regexp.MustCompile(`live dashboard at (http://127\.0\.0\.1:\d+/)`).FindStringSubmatch(p.stdout())
	if dash == nil {
		t.Fatalf("no dashboard address:\n%s", p.stdout())
	}
	resp, err := http.Get(dash[1])
	if err != nil {
		t.Fatalf("dashboard: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("dashboard %s: %s", dash[1], resp.Status)
	}
	p.signal(t, syscall.SIGINT)
	if code := p.wait(t, 15*time.Second); code != 1 {
		t.Fatalf("exit %d after Ctrl-C mid-story, want 1\nstderr:\n%s", code, p.stderr())
	}
}

// checkDemoJSON: every line is a JSON object, the last the summary with
// ok true.
func checkDemoJSON(t *testing.T, out string) {
	t.Helper()
	lines := strings.Split(strings.TrimSpace(out), "\n")
	var last map[string]any
	for i, l := range lines {
		last = nil
		if err := json.Unmarshal([]byte(l), &last); err != nil {
			t.Fatalf("line %d is not a JSON object: %v\n%s", i+1, err, l)
		}
	}
	if last["type"] != "DEMO_SUMMARY" || last["ok"] != true {
		t.Fatalf("last line is not a successful summary: %v", last)
	}
}

// runLifelineRun: `lifeline run` needs DISCORD_TOKEN. Without one it says so
// at once and fails; with --fake it connects to the embedded fake Discord,
// reports ready, serves /readyz, and exits 0 on SIGTERM.
func runLifelineRun(t *testing.T, env *readmeEnv, text string) {
	args, err := shellWords(text)
	if err != nil {
		t.Fatal(err)
	}
	args = args[1:]
	p := start(t, env.bin, nil, args...)
	if code := p.wait(t, 30*time.Second); code == 0 || !strings.Contains(p.stderr(), "DISCORD_TOKEN") {
		t.Fatalf("without a token: exit %d, stderr:\n%s", code, p.stderr())
	}
	p = start(t, env.bin, nil, append(args, "--fake", "--http", "127.0.0.1:0")...)
	p.waitFor(t, "ready", 30*time.Second, func() bool { return strings.Contains(p.stderr(), "lifeline: ready:") })
	addr := regexp.MustCompile(`(?m)^http=(http://127\.0\.0\.1:\d+)$`).FindStringSubmatch(p.stdout())
	if addr == nil {
		t.Fatalf("no http= line:\n%s", p.stdout())
	}
	resp, err := http.Get(addr[1] + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("/readyz: %s", resp.Status)
	}
	p.signal(t, syscall.SIGTERM)
	if code := p.wait(t, 30*time.Second); code != 0 {
		t.Fatalf("exit %d after SIGTERM\nstderr:\n%s", code, p.stderr())
	}
}

// placeholders are what the README's synopses stand for: a shipped policy
// and incident recording.
var placeholders = map[string]string{
	"POLICY": "policies/medium.hcl",
	"REC":    "testdata/incidents/rate-limit-storm.jsonl",
	"OTHER":  "policies/large.hcl",
}

var optionalPart = regexp.MustCompile(`\s*\[([^\]]*)\]`)

// runPolicyTest runs the `lifeline policy test` synopsis with its
// placeholders filled in, with and without each optional part.
func runPolicyTest(t *testing.T, env *readmeEnv, text string) {
	variants := []string{
		optionalPart.ReplaceAllString(text, ""),
		optionalPart.ReplaceAllString(text, " $1"),
	}
	for _, v := range variants {
		words, err := shellWords(v)
		if err != nil {
			t.Fatal(err)
		}
		args := words[1:]
		for i, w := range args {
			if w == strings.ToUpper(w) && strings.Trim(w, "ABCDEFGHIJKLMNOPQRSTUVWXYZ_") == "" {
				sub, ok := placeholders[w]
				if !ok {
					t.Fatalf("placeholder %s in %q has no value in readme_test.go", w, text)
				}
				args[i] = sub
			}
		}
		p := start(t, env.bin, nil, args...)
		if code := p.wait(t, 30*time.Second); code != 0 {
			t.Fatalf("lifeline %s: exit %d\n%s", strings.Join(args, " "), code, p.stderr())
		}
		out := p.stdout()
		if !strings.Contains(out, placeholders["POLICY"]) || !strings.Contains(out, "summary") ||
			(strings.Contains(v, "--compare") && !strings.Contains(out, placeholders["OTHER"])) {
			t.Fatalf("lifeline %s printed:\n%s", strings.Join(args, " "), out)
		}
	}
}

// runFakeDiscord: `lifeline fake-discord` prints its URLs, serves the REST
// API, and stops with Ctrl-C (exit 0).
func runFakeDiscord(t *testing.T, env *readmeEnv, text string) {
	words, err := shellWords(text)
	if err != nil {
		t.Fatal(err)
	}
	p := start(t, env.bin, nil, words[1:]...)
	var rest string
	p.waitFor(t, "the URLs", 30*time.Second, func() bool {
		m := regexp.MustCompile(`rest=(http://127\.0\.0\.1:\d+/api/v\d+) gateway=ws://`).FindStringSubmatch(p.stdout())
		if m != nil {
			rest = m[1]
		}
		return m != nil
	})
	resp, err := http.Get(rest + "/gateway")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s/gateway: %s", rest, resp.Status)
	}
	p.signal(t, syscall.SIGINT)
	if code := p.wait(t, 15*time.Second); code != 0 {
		t.Fatalf("exit %d after Ctrl-C\nstderr:\n%s", code, p.stderr())
	}
}

// proc is a started command whose output is collected.
type proc struct {
	cmd    *exec.Cmd
	mu     sync.Mutex
	out    bytes.Buffer
	errb   bytes.Buffer
	done   chan struct{}
	result error
}

type lockedBuffer struct {
	mu *sync.Mutex
	b  *bytes.Buffer
}

func (l lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

// start runs bin with args and, in env, the environment without
// DISCORD_TOKEN; the process is killed at the end of the test if it still
// runs.
func start(t *testing.T, bin string, env []string, args ...string) *proc {
	t.Helper()
	p := &proc{done: make(chan struct{})}
	p.cmd = exec.Command(bin, args...)
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "DISCORD_TOKEN=") {
			p.cmd.Env = append(p.cmd.Env, kv)
		}
	}
	p.cmd.Env = append(p.cmd.Env, env...)
	p.cmd.Stdout = lockedBuffer{&p.mu, &p.out}
	p.cmd.Stderr = lockedBuffer{&p.mu, &p.errb}
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		p.result = p.cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		select {
		case <-p.done:
		default:
			p.cmd.Process.Kill()
			<-p.done
		}
	})
	return p
}

func (p *proc) stdout() string { p.mu.Lock(); defer p.mu.Unlock(); return p.out.String() }
func (p *proc) stderr() string { p.mu.Lock(); defer p.mu.Unlock(); return p.errb.String() }

// waitFor polls cond every 20ms until it holds, failing after bound or if
// the process ends first.
func (p *proc) waitFor(t *testing.T, what string, bound time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(bound)
	for !cond() {
		select {
		case <-p.done:
			if cond() {
				return
			}
			t.Fatalf("exited (%v) before %s\nstdout:\n%s\nstderr:\n%s", p.result, what, p.stdout(), p.stderr())
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("no %s within %s\nstdout:\n%s\nstderr:\n%s", what, bound, p.stdout(), p.stderr())
		}
	}
}

func (p *proc) signal(t *testing.T, sig os.Signal) {
	t.Helper()
	if err := p.cmd.Process.Signal(sig); err != nil {
		t.Fatal(err)
	}
}

// wait returns the exit code, failing if the process runs longer than
// bound.
func (p *proc) wait(t *testing.T, bound time.Duration) int {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), bound)
	defer cancel()
	select {
	case <-p.done:
	case <-ctx.Done():
		t.Fatalf("still running after %s\nstdout:\n%s\nstderr:\n%s", bound, lastLines(p.stdout(), 20), p.stderr())
	}
	if p.result == nil {
		return 0
	}
	if ee, ok := p.result.(*exec.ExitError); ok {
		return ee.ExitCode()
	}
	t.Fatalf("wait: %v", p.result)
	return -1
}

func lastLines(s string, n int) string {
	var lines []string
	sc := bufio.NewScanner(strings.NewReader(s))
	for sc.Scan() {
		lines = append(lines, sc.Text())
	}
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
