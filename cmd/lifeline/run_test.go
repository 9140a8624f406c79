package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
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

	"go.uber.org/goleak"

	"github.com/lifeline-bot/lifeline/core/flight"
	"github.com/lifeline-bot/lifeline/core/telemetry"
	"github.com/lifeline-bot/lifeline/internal/testutil"
)

// The sentinels the token tests look for in every output.
const (
	sentinelToken     = "MTI3NDk5.SENTINEL-discord-token.x9Qz7wLk"
	sentinelHTTPToken = "SENTINEL-http-bearer-4b1e"
)

var httpLine = regexp.MustCompile(`^http=(http://127\.0\.0\.1:\d+)$`)

var (
	tcpprobeOnce sync.Once
	tcpprobeBin  string
	tcpprobeErr  error
)

// tcpprobe builds the tcpprobe plugin once, next to the lifeline binary
// (TestMain removes that directory).
func tcpprobe(t *testing.T) string {
	t.Helper()
	tcpprobeOnce.Do(func() {
		tcpprobeBin = filepath.Join(filepath.Dir(lifelineBin), "tcpprobe")
		out, err := exec.Command("go", "build", "-o", tcpprobeBin, "../../plugins/tcpprobe").CombinedOutput()
		if err != nil {
			tcpprobeErr = fmt.Errorf("go build tcpprobe: %v\n%s", err, out)
		}
	})
	if tcpprobeErr != nil {
		t.Fatal(tcpprobeErr)
	}
	return tcpprobeBin
}

// withPlugin adds to the policy at path a tcpprobe check named "probe"
// against addr.
func withPlugin(t *testing.T, path, addr string) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	fmt.Fprintf(f, "\nplugin \"tcpprobe\" {\n  path = %q\n}\n", tcpprobe(t))
	// A second health block would be an error: the check goes in the first.
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	b = bytes.Replace(b, []byte("  check \"gateway\" {"), []byte(fmt.Sprintf(
		"  check \"probe\" {\n    plugin = \"tcpprobe\"\n    threshold = \"2s\"\n    config = { address = %q }\n  }\n\n  check \"gateway\" {", addr)), 1)
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

// pluginPID finds the pid of plugin's process in the PLUGIN_STARTED events
// /debug/lifeline lists.
func (c *client) pluginPID(plugin string) int {
	c.t.Helper()
	_, body := c.do(http.MethodGet, "/debug/lifeline")
	var d struct {
		RecentEvents []telemetry.EventRecord `json:"recent_events"`
	}
	if err := json.Unmarshal(body, &d); err != nil {
		c.t.Fatal(err)
	}
	for _, e := range d.RecentEvents {
		var p struct {
			Name string `json:"name"`
			PID  int    `json:"pid"`
		}
		if e.Type == "PLUGIN_STARTED" && json.Unmarshal(e.Data, &p) == nil && p.Name == plugin && p.PID > 0 {
			return p.PID
		}
	}
	return 0
}

// copyPolicy copies testdata/run/policy.hcl into a temporary directory.
func copyPolicy(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "run", "policy.hcl"))
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "policy.hcl")
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// editPolicy rewrites path as editors do (a new file renamed over it), with
// old replaced by new.
func editPolicy(t *testing.T, path, old, new string) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(b, []byte(old)) {
		t.Fatalf("%s does not hold %q", path, old)
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, bytes.Replace(b, []byte(old), []byte(new), 1), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

// client talks to a running instance and keeps every response it got.
type client struct {
	t     *testing.T
	base  string
	token string
	seen  bytes.Buffer
}

func (c *client) do(method, path string) (int, []byte) {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), processBound)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, nil)
	if err != nil {
		c.t.Fatal(err)
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		c.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		c.t.Fatal(err)
	}
	fmt.Fprintf(&c.seen, "%s %s -> %d\n", method, path, resp.StatusCode)
	resp.Header.Write(&c.seen)
	c.seen.Write(body)
	return resp.StatusCode, body
}

// summary returns /debug/lifeline's summary.
func (c *client) summary() telemetry.Summary {
	c.t.Helper()
	code, body := c.do(http.MethodGet, "/debug/lifeline")
	var d struct {
		Summary telemetry.Summary `json:"summary"`
	}
	if err := json.Unmarshal(body, &d); code != 200 || err != nil {
		c.t.Fatalf("/debug/lifeline: %d %v\n%s", code, err, body)
	}
	return d.Summary
}

// until polls cond every 50ms for up to processBound.
func until(t *testing.T, p *binProcess, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(processBound)
	for !cond() {
		select {
		case <-p.Done():
			t.Fatalf("%s: lifeline exited (%v)\nstderr:\n%s", what, p.Err(), p.stderr.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("never: %s\nstderr:\n%s", what, p.stderr.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestRunProcess runs `lifeline run --fake` as a process with a policy that
// uses a plugin (tcpprobe): it prints its address, gets READY, runs the
// plugin's check, serves /metrics (with the Go runtime's families) and the
// dashboard, reloads on SIGHUP (a valid edit: a new generation; a broken
// one: the error with its location, the policy kept) and on POST /-/reload,
// answers `lifeline status`, and exits 0 on SIGTERM after closing the
// gateway connection resumably (4000), the plugin's process gone too.
func TestRunProcess(t *testing.T) {
	policyPath := copyPolicy(t)
	withPlugin(t, policyPath, testutil.AcceptingListener(t))
	p := startLifeline(t, []string{"DISCORD_TOKEN=" + sentinelToken},
		"run", "--fake", "--fake-scale", "50", "--policy", policyPath, "--http", "127.0.0.1:0", "--log-level", "debug")
	m := httpLine.FindStringSubmatch(p.firstLine(t))
	if m == nil {
		t.Fatalf("first stdout line is not http=URL: %q\nstderr:\n%s", p.stdout.String(), p.stderr.String())
	}
	c := &client{t: t, base: m[1]}
	until(t, p, "/readyz says ready", func() bool { code, _ := c.do(http.MethodGet, "/readyz"); return code == 200 })

	// The plugin runs and its check passes.
	until(t, p, "the tcpprobe check passes", func() bool {
		_, body := c.do(http.MethodGet, "/metrics")
		return bytes.Contains(body, []byte(`lifeline_health_check_passing{check="probe",shard="0"} 1`))
	})
	pid := c.pluginPID("tcpprobe")
	if pid == 0 {
		t.Fatal("no PLUGIN_STARTED event with the plugin's pid")
	}
	code, body := c.do(http.MethodGet, "/metrics")
	for _, want := range []string{`lifeline_connection_state{shard="0",state="READY"} 1`, `lifeline_policy_generation{shard="0"} 1`,
		`lifeline_plugin_starts_total{plugin="tcpprobe",shard="0"} 1`, "go_goroutines ", "process_resident_memory_bytes "} {
		if code != 200 || !bytes.Contains(body, []byte(want)) {
			t.Fatalf("/metrics (%d) lacks %q", code, want)
		}
	}
	if code, body := c.do(http.MethodGet, "/"); code != 200 || !bytes.Contains(body, []byte("<title>lifeline</title>")) {
		t.Fatalf("/: %d", code)
	}
	until(t, p, "/health passes", func() bool { code, _ := c.do(http.MethodGet, "/health"); return code == 200 })

	// SIGHUP after a valid edit: generation 2 (the file watcher may have
	// reloaded it first; SIGHUP then finds it unchanged).
	editPolicy(t, policyPath, `threshold = "5s"`, `threshold = "6s"`)
	if err := p.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	until(t, p, "SIGHUP handled", func() bool {
		return strings.Contains(p.stderr.String(), "SIGHUP: policy reloaded") || strings.Contains(p.stderr.String(), "SIGHUP: policy unchanged")
	})
	until(t, p, "generation 2 in /debug/lifeline", func() bool { return c.summary().Policy.Generation == 2 })

	// SIGHUP after a broken edit: the error with its location; generation 2 stays.
	editPolicy(t, policyPath, `interval = "1s"`, `interval = "soon"`)
	if err := p.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	until(t, p, "SIGHUP reports the broken file", func() bool {
		return regexp.MustCompile(`SIGHUP: policy reload failed; the running policy stays: generation=2 error=.*policy\.hcl:\d+:\d+`).MatchString(p.stderr.String())
	})
	if s := c.summary(); s.Policy.Generation != 2 || s.Policy.LastError == "" || s.State != "READY" {
		t.Fatalf("after a broken edit: %+v", s.Policy)
	}

	// POST /-/reload after a valid edit: generation 3.
	editPolicy(t, policyPath, `interval = "soon"`, `interval = "2s"`)
	code, body = c.do(http.MethodPost, "/-/reload")
	var rr telemetry.ReloadResponse
	if err := json.Unmarshal(body, &rr); code != 200 || err != nil || rr.Generation != 3 {
		t.Fatalf("POST /-/reload: %d %s", code, body)
	}
	until(t, p, "generation 3 in /debug/lifeline", func() bool { return c.summary().Policy.Generation == 3 })

	st := exec.Command(lifelineBin, "status", "--addr", c.base)
	st.Env = append(os.Environ(), "GORACE=atexit_sleep_ms=0")
	out, err := st.CombinedOutput()
	if err != nil || !regexp.MustCompile(`connection +READY`).Match(out) || !bytes.Contains(out, []byte("generation 3")) ||
		!regexp.MustCompile(`plugin tcpprobe +RUNNING, pid [1-9]`).Match(out) {
		t.Fatalf("lifeline status: %v\n%s", err, out)
	}

	if err := p.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if code := p.wait(t); code != 0 {
		t.Fatalf("exit code %d after SIGTERM\nstderr:\n%s", code, p.stderr.String())
	}
	// The plugin's process ended with lifeline.
	if err := syscall.Kill(pid, 0); err == nil {
		t.Errorf("the plugin's process %d outlived lifeline", pid)
	}
	errs := p.stderr.String()
	for _, want := range []string{
		"policy: circuit breaker: failure_threshold=", "policy: health check: name=probe kind=\"plugin tcpprobe\"", // the policy as validated
		"health check: check=probe passed=true", "health evaluation: status=HEALTHY", // check results (debug)
		"from=CONNECTING to=IDENTIFYING",        // state transitions
		"plugin 1 of 1 started: tcpprobe: pid=", // the plugin's launch, beside the connection
		"shard_count=auto",                      // the default shard count: Discord's recommendation
		"shutting down: reason=signal", "close_code=4000 resumable=true", "lifeline: stopped"} {
		if !strings.Contains(errs, want) {
			t.Errorf("stderr lacks %q:\n%s", want, errs)
		}
	}
	for name, text := range map[string]string{"stdout": p.stdout.String(), "stderr": errs, "HTTP responses": c.seen.String(), "status": string(out)} {
		if strings.Contains(text, sentinelToken) {
			t.Errorf("the token appears in %s", name)
		}
	}
}

// TestRunNeverShowsTheToken runs a full session with sentinel tokens (the
// bot's and the HTTP bearer's): JSON logs at trace level, a scripted zombie
// and drop against the fake, every endpoint (the event stream included),
// a failed reload, a refused request, `lifeline status` in both forms; and
// finds neither token in any log line, response, error or export.
func TestRunNeverShowsTheToken(t *testing.T) {
	policyPath := copyPolicy(t)
	withPlugin(t, policyPath, testutil.AcceptingListener(t))
	p := startLifeline(t, []string{"DISCORD_TOKEN=" + sentinelToken, "LIFELINE_HTTP_TOKEN=" + sentinelHTTPToken},
		"run", "--fake", "--fake-scale", "100", "--fake-scenario", "zombie", "--policy", policyPath,
		"--http", "127.0.0.1:0", "--log-level", "trace", "--log-json")
	m := httpLine.FindStringSubmatch(p.firstLine(t))
	if m == nil {
		t.Fatalf("first stdout line is not http=URL: %q", p.stdout.String())
	}
	c := &client{t: t, base: m[1], token: sentinelHTTPToken}
	until(t, p, "READY", func() bool { code, _ := c.do(http.MethodGet, "/readyz"); return code == 200 })
	// The fake accepted the sentinel: it is the token in use.
	until(t, p, "the zombie scenario played and was recovered from", func() bool {
		s := c.summary()
		return s.Ready && s.Resumes+s.Identifies >= 2
	})

	// The event stream, for a few messages.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, c.base+"/events", nil)
	req.Header.Set("Authorization", "Bearer "+sentinelHTTPToken)
	if resp, err := http.DefaultClient.Do(req); err == nil {
		sc := bufio.NewScanner(resp.Body)
		for n := 0; n < 40 && sc.Scan(); n++ {
			c.seen.WriteString(sc.Text() + "\n")
		}
		resp.Body.Close()
	}
	cancel()
	// The scenario's faults go on after that first recovery (ACKs stall
	// until 1.9 s, shard 0 drops at 1.8 s), so /readyz and /health may
	// answer 503 for a moment: each must come to answer 200.
	for _, path := range []string{"/", "/metrics", "/health", "/livez", "/readyz", "/debug/lifeline?samples=all"} {
		until(t, p, "GET "+path+" answers 200", func() bool { code, _ := c.do(http.MethodGet, path); return code == 200 })
	}
	editPolicy(t, policyPath, `interval = "1s"`, `interval = "never"`)
	if code, _ := c.do(http.MethodPost, "/-/reload"); code != http.StatusUnprocessableEntity {
		t.Errorf("POST /-/reload of a broken file: %d", code)
	}
	anon := &client{t: t, base: c.base}
	if code, _ := anon.do(http.MethodGet, "/metrics"); code != http.StatusUnauthorized {
		t.Errorf("GET /metrics without the bearer token: %d", code)
	}
	var statusOut bytes.Buffer
	for _, args := range [][]string{{"status", "--addr", c.base}, {"status", "--addr", c.base, "--json"}, {"status", "--addr", c.base, "--events", "100"}} {
		st := exec.Command(lifelineBin, args...)
		st.Env = append(os.Environ(), "GORACE=atexit_sleep_ms=0", "LIFELINE_HTTP_TOKEN="+sentinelHTTPToken)
		out, err := st.CombinedOutput()
		if err != nil {
			t.Errorf("lifeline %v: %v\n%s", args, err, out)
		}
		statusOut.Write(out)
	}
	if err := p.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if code := p.wait(t); code != 0 {
		t.Fatalf("exit code %d\nstderr:\n%s", code, p.stderr.String())
	}
	outputs := map[string]string{
		"stdout": p.stdout.String(), "stderr (logs)": p.stderr.String(),
		"HTTP responses": c.seen.String() + anon.seen.String(), "lifeline status": statusOut.String(),
	}
	for name, text := range outputs {
		for _, secret := range []string{sentinelToken, sentinelHTTPToken, "SENTINEL"} {
			if strings.Contains(text, secret) {
				i := strings.Index(text, secret)
				t.Errorf("%q appears in %s: ...%s...", secret, name, text[max(0, i-200):min(len(text), i+len(secret)+50)])
			}
		}
	}
	// Nothing even tried to write a token: the redactor, a second line of
	// defence, had nothing to hide.
	for name, text := range outputs {
		if strings.Contains(text, "[REDACTED]") {
			t.Errorf("something wrote a token to %s (the redactor hid it)", name)
		}
	}
	// The run did what the test meant: debug logs, JSON, the scenario.
	logs := p.stderr.String()
	for _, want := range []string{`"@level":"debug"`, `"@message":"scenario step"`, `"@message":"ready"`} {
		if !strings.Contains(logs, want) {
			t.Errorf("the logs lack %s", want)
		}
	}
	if c.seen.Len() < 10000 {
		t.Errorf("only %d bytes of HTTP responses were checked", c.seen.Len())
	}
}

// TestRunStopsCleanlyInProcess runs the command in-process: a reload
// through the SIGHUP channel, then cancellation (what SIGINT and SIGTERM do
// through main's context); exit 0 and no goroutine left behind.
func TestRunStopsCleanlyInProcess(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent(),
		goleak.IgnoreTopFunction("time.Sleep"), // discordgo's Close sleeps in its own goroutine
		goleak.IgnoreTopFunction("net/http.(*persistConn).readLoop"),
		goleak.IgnoreTopFunction("net/http.(*persistConn).writeLoop"),
		goleak.IgnoreTopFunction("internal/poll.runtime_pollWait"))
	r := startRun(t, nil, "--fake", "--fake-scale", "50", "--policy", copyPolicy(t), "--http", "127.0.0.1:0", "--log-level", "debug")
	r.waitReady()
	r.httpURL()
	r.sighup()
	r.waitFor("the reload", func() bool { return strings.Contains(r.stderr.String(), "SIGHUP: policy unchanged") })
	r.stop()
	if !strings.Contains(r.stderr.String(), "close_code=4000 resumable=true") {
		t.Fatalf("no resumable close:\n%s", r.stderr.String())
	}
	http.DefaultClient.CloseIdleConnections()
}

func TestRunUsage(t *testing.T) {
	broken := filepath.Join(t.TempDir(), "broken.hcl")
	if err := os.WriteFile(broken, []byte("health {\n  interval = 5\n}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	privileged := filepath.Join(t.TempDir(), "privileged.hcl")
	if err := os.WriteFile(privileged, []byte("connection {\n  intents = [\"Guilds\", \"GuildMembers\"]\n}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		args []string
		env  map[string]string
		code int
		err  string
	}{
		{"no token", []string{"--http", "off"}, nil, 2, "no token: set DISCORD_TOKEN, or use --fake"},
		{"fatal close at start", []string{"--fake", "--fake-scale", "50", "--http", "127.0.0.1:0", "--policy", privileged}, nil, 1, "4014"},
		{"remote without a bearer token", []string{"--fake", "--http", "0.0.0.0:0"}, nil, 2, "LIFELINE_HTTP_TOKEN"},
		{"every interface without a bearer token", []string{"--fake", "--http", ":8484"}, nil, 2, "not a loopback address"},
		{"bad address", []string{"--fake", "--http", "8484"}, nil, 2, "want HOST:PORT or off"},
		{"scenario without the fake", []string{"--fake-scenario", "zombie"}, map[string]string{"DISCORD_TOKEN": "t"}, 2, "--fake-scenario needs --fake"},
		{"bad level", []string{"--fake", "--log-level", "loud"}, nil, 2, `--log-level "loud"`},
		{"bad scale", []string{"--fake", "--fake-scale", "0"}, nil, 2, "--fake-scale 0"},
		{"bad shard", []string{"--fake", "--shard", "2", "--shard-count", "2"}, nil, 2, "--shard 2 of --shard-count 2"},
		{"negative shard", []string{"--fake", "--shard", "-1"}, nil, 2, "--shard -1 of --shard-count 0"},
		{"negative shard count", []string{"--fake", "--shard-count", "-1"}, nil, 2, "--shard-count -1: want a number of shards, or 0"},
		{"extra argument", []string{"--fake", "now"}, nil, 2, `unexpected argument "now"`},
		{"broken policy", []string{"--fake", "--http", "off", "--policy", broken}, nil, 1, "broken.hcl line 2"},
		{"unknown scenario", []string{"--fake", "--http", "off", "--fake-scenario", "no-such"}, nil, 1, "no shipped scenario"},
		{"malformed environment variable", []string{"--fake", "--http", "off"}, map[string]string{"DISCORD_MAX_RECONNECT_ATTEMPTS": "ten"}, 1,
			`env DISCORD_MAX_RECONNECT_ATTEMPTS="ten": error: Invalid value`},
		{"every problem at once", []string{"--fake", "--http", "off", "--policy", broken}, map[string]string{"DISCORD_AUTO_RECONNECT": "maybe"}, 1,
			"(2 problems)"},
		{"unknown preset", []string{"--fake", "--http", "off", "--preset", "huge"}, nil, 1, "Unknown preset"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env, _, errb := testEnv(tt.env)
			code := run(context.Background(), env, append([]string{"run"}, tt.args...))
			if code != tt.code || !strings.Contains(errb.String(), tt.err) {
				t.Fatalf("exit %d, stderr:\n%s\nwant %d and %q", code, errb.String(), tt.code, tt.err)
			}
		})
	}
}

func TestRedactor(t *testing.T) {
	var b bytes.Buffer
	r := newRedactor(&b, "tok-123", "", "  ")
	n, err := r.Write([]byte("a tok-123 b tok-123\n"))
	if err != nil || n != 20 || b.String() != "a [REDACTED] b [REDACTED]\n" {
		t.Fatalf("%d %v %q", n, err, b.String())
	}
}

// --record writes the flight recorder's lines, which lifeline policy test
// reads back.
func TestRunRecordsAFlight(t *testing.T) {
	rec := filepath.Join(t.TempDir(), "flight.jsonl")
	r := startRun(t, nil, "--fake", "--fake-scale", "50", "--http", "off", "--record", rec)
	r.waitFor("a recording", func() bool { f, err := flight.ReadFile(rec); return err == nil && len(f.Lines) >= 3 })
	r.stop()
	var out, errOut testutil.SyncBuffer
	env2 := &cliEnv{Stdout: &out, Stderr: &errOut, Getenv: func(string) string { return "" }}
	if code := run(context.Background(), env2, []string{"policy", "test", "../../policies/default.hcl", "--trace", rec}); code != 0 {
		t.Fatalf("policy test over the recording: exit %d\n%s%s", code, out.String(), errOut.String())
	}
}

// TestRunLayers: `lifeline run` loads the preset, the policy file and the
// environment in that order and says, at debug level, where each setting
// came from.
func TestRunLayers(t *testing.T) {
	vars := map[string]string{"DISCORD_MAX_RECONNECT_ATTEMPTS": "17"}
	policyPath := copyPolicy(t)
	r := startRun(t, func(k string) string { return vars[k] }, "--fake", "--fake-scale", "50", "--preset", "medium",
		"--policy", policyPath, "--http", "off", "--log-level", "debug")
	r.waitReady()
	r.stop()
	out := r.stderr.String()
	for _, want := range []string{
		"max_reconnect_attempts=17",
		`key=connection.max_reconnect_attempts from="env DISCORD_MAX_RECONNECT_ATTEMPTS"`,
		`from="preset medium (policies/medium.hcl:`,
		"from=" + policyPath + ":",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("stderr lacks %q:\n%s", want, out)
		}
	}
}
