package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/lifeline-bot/lifeline/discordtest"
)

// startFakeDiscord starts the binary with fake-discord and args, and kills
// it at the end of the test if it is still running.
func startFakeDiscord(t *testing.T, args ...string) *binProcess {
	t.Helper()
	return startLifeline(t, nil, append([]string{"fake-discord"}, args...)...)
}

var urlLine = regexp.MustCompile(`^rest=(http://127\.0\.0\.1:\d+/api/v10) gateway=(ws://127\.0\.0\.1:\d+/gateway)$`)

// TestFakeDiscordProcess runs `lifeline fake-discord` as a process: it
// prints both URLs, answers REST with and without the token, sends HELLO
// (and READY for the token) on the gateway, stops with exit 0 on SIGINT,
// and never prints the token.
func TestFakeDiscordProcess(t *testing.T) {
	const token = "cli-test-token-4f9a1c"
	p := startFakeDiscord(t, "--listen", "127.0.0.1:0", "--token", token, "--heartbeat", "2s", "--log-level", "trace")
	m := urlLine.FindStringSubmatch(p.firstLine(t))
	if m == nil {
		t.Fatalf("first stdout line is not rest=... gateway=...: %q", p.stdout.String())
	}
	restURL, gatewayURL := m[1], m[2]

	client := &http.Client{Timeout: processBound}
	get := func(auth string) (int, []byte) {
		t.Helper()
		req, err := http.NewRequest(http.MethodGet, restURL+"/gateway/bot", nil)
		if err != nil {
			t.Fatal(err)
		}
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatal(err)
		}
		return resp.StatusCode, body
	}
	status, body := get("Bot " + token)
	if status != http.StatusOK {
		t.Fatalf("GET /gateway/bot with the token: %d %s", status, body)
	}
	var gb struct {
		URL string `json:"url"`
	}
	if err := json.Unmarshal(body, &gb); err != nil || gb.URL != gatewayURL {
		t.Errorf("/gateway/bot url = %q (%v), want the printed %q", gb.URL, err, gatewayURL)
	}
	for _, auth := range []string{"", "Bot wrong-token"} {
		if status, body := get(auth); status != http.StatusUnauthorized {
			t.Errorf("GET /gateway/bot with Authorization %q: %d %s, want 401", auth, status, body)
		}
	}

	dialer := websocket.Dialer{HandshakeTimeout: processBound}
	ws, _, err := dialer.Dial(gatewayURL+"?v=10&encoding=json", nil)
	if err != nil {
		t.Fatalf("dial %s: %v", gatewayURL, err)
	}
	defer ws.Close()
	ws.SetReadDeadline(time.Now().Add(processBound))
	var hello struct {
		Op int `json:"op"`
		D  struct {
			HeartbeatInterval int64 `json:"heartbeat_interval"`
		} `json:"d"`
	}
	if err := ws.ReadJSON(&hello); err != nil {
		t.Fatalf("read HELLO: %v", err)
	}
	if hello.Op != discordtest.OpHello || hello.D.HeartbeatInterval != 2000 {
		t.Fatalf("first frame op %d heartbeat_interval %d, want HELLO with 2000 (--heartbeat 2s)", hello.Op, hello.D.HeartbeatInterval)
	}
	identify := map[string]any{"op": discordtest.OpIdentify, "d": map[string]any{
		"token": token, "intents": discordtest.IntentGuilds, "properties": map[string]string{"os": "linux"},
	}}
	if err := ws.WriteJSON(identify); err != nil {
		t.Fatal(err)
	}
	var ready struct {
		Op int    `json:"op"`
		T  string `json:"t"`
	}
	if err := ws.ReadJSON(&ready); err != nil || ready.Op != discordtest.OpDispatch || ready.T != "READY" {
		t.Fatalf("after IDENTIFY: op %d t %q err %v, want READY", ready.Op, ready.T, err)
	}

	if err := p.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	if code := p.wait(t); code != 0 {
		t.Errorf("exit code after SIGINT %d, want 0\nstderr:\n%s", code, p.stderr.String())
	}
	out := p.stdout.String() + p.stderr.String()
	if strings.Contains(out, token) {
		t.Errorf("the token appears in the output:\n%s", out)
	}
	for _, want := range []string{"stopped:", "1 IDENTIFY(s)"} {
		if !strings.Contains(p.stderr.String(), want) {
			t.Errorf("stderr lacks %q:\n%s", want, p.stderr.String())
		}
	}
}

// TestFakeDiscordProcessSIGTERM: SIGTERM stops it cleanly too.
func TestFakeDiscordProcessSIGTERM(t *testing.T) {
	p := startFakeDiscord(t, "--log-level", "off")
	if l := p.firstLine(t); !urlLine.MatchString(l) {
		t.Fatalf("first line %q", l)
	}
	if err := p.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if code := p.wait(t); code != 0 {
		t.Errorf("exit code after SIGTERM %d, want 0\nstderr:\n%s", code, p.stderr.String())
	}
}

// malformedScenario has two errors: an unknown fault kind on line 4 and a
// bad duration on line 8.
const malformedScenario = `name = "broken"

# line 3
step "no_such_fault" {
  at = "1s"
}
step "drop" {
  at = "soon"
}
`

// TestFakeDiscordProcessMalformedScenario: a scenario file with errors
// exits 2 before serving, naming the file and each line.
func TestFakeDiscordProcessMalformedScenario(t *testing.T) {
	file := filepath.Join(t.TempDir(), "broken.hcl")
	if err := os.WriteFile(file, []byte(malformedScenario), 0o600); err != nil {
		t.Fatal(err)
	}
	p := startFakeDiscord(t, "--scenario", file)
	if code := p.wait(t); code != 2 {
		t.Errorf("exit code %d, want 2", code)
	}
	stderr := p.stderr.String()
	for _, want := range []string{file + ":4:", file + ":8:"} {
		if !strings.Contains(stderr, want) {
			t.Errorf("stderr lacks %q:\n%s", want, stderr)
		}
	}
	if p.stdout.String() != "" {
		t.Errorf("stdout %q: nothing should be served", p.stdout.String())
	}
}

// runCLI runs the CLI in-process with a bound on its context.
func runCLI(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), processBound)
	defer cancel()
	env, out, errb := testEnv(nil)
	code = run(ctx, env, args)
	if ctx.Err() != nil {
		t.Fatalf("%v did not finish within %v\nstderr:\n%s", args, processBound, errb)
	}
	return code, out.String(), errb.String()
}

func TestFakeDiscordUsageErrors(t *testing.T) {
	tests := []struct {
		args []string
		err  string
	}{
		{[]string{"--scale", "fast"}, `invalid value "fast" for flag -scale`},
		{[]string{"--scale", "0"}, "--scale 0: want a number above 0"},
		{[]string{"--scale", "-2"}, "--scale -2: want a number above 0"},
		{[]string{"--bogus"}, "flag provided but not defined: -bogus"},
		{[]string{"extra"}, `unexpected argument "extra"`},
		{[]string{"--listen", "127.0.0.1"}, `--listen "127.0.0.1": want HOST:PORT`},
		{[]string{"--listen", "0.0.0.0:0"}, "not a loopback address"},
		{[]string{"--listen", "192.0.2.1:0"}, "--allow-remote"},
		{[]string{"--token", ""}, "--token must be non-empty"},
		{[]string{"--guilds", "-1"}, "--guilds -1: want 0 or more"},
		{[]string{"--shards", "-1"}, "--shards -1: want 0 or more"},
		{[]string{"--heartbeat", "-1s"}, "negative duration"},
		{[]string{"--heartbeat", "100us"}, "under 1ms"},
		{[]string{"--send-limit", "-5"}, "negative limit"},
		{[]string{"--privileged-intents", "Guilds"}, "Guilds is not privileged"},
		{[]string{"--privileged-intents", "Members2"}, `unknown intent "Members2"`},
		{[]string{"--log-level", "loud"}, `--log-level "loud"`},
		{[]string{"--exit-after-scenario"}, "--exit-after-scenario needs --scenario"},
		{[]string{"--scenario", "no-such-scenario"}, "no shipped scenario of that name (identify-storm"},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			code, stdout, stderr := runCLI(t, append([]string{"fake-discord"}, tt.args...)...)
			if code != 2 {
				t.Errorf("exit %d, want 2", code)
			}
			if !strings.Contains(stderr, tt.err) {
				t.Errorf("stderr lacks %q:\n%s", tt.err, stderr)
			}
			if stdout != "" {
				t.Errorf("stdout %q: a usage error serves nothing", stdout)
			}
		})
	}
}

// TestFakeDiscordExitAfterScenario plays a short scenario (a shipped one by
// name, and a file) at a high scale and exits by itself.
func TestFakeDiscordExitAfterScenario(t *testing.T) {
	file := filepath.Join(t.TempDir(), "short.hcl")
	src := `name = "short"
step "dispatch" {
  at = "1s"
}
step "stall_acks" {
  at       = "2s"
  duration = "3s"
  shards   = [0]
}
`
	if err := os.WriteFile(file, []byte(src), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		scenario string
		want     []string
	}{
		{file, []string{
			"scenario short (" + file + "): 2 step(s) over 5s of Discord time",
			"scenario short: at 1s dispatch (" + file + ":2)",
			"scenario short: at 2s stall_acks shards=[0] duration=3s (" + file + ":5)",
			"scenario short: ended",
		}},
		{"identify-storm", []string{"scenario identify-storm (", "scenario identify-storm: ended"}},
	}
	for _, tt := range tests {
		t.Run(filepath.Base(tt.scenario), func(t *testing.T) {
			code, stdout, stderr := runCLI(t, "fake-discord", "--scale", "1000", "--log-level", "off",
				"--scenario", tt.scenario, "--exit-after-scenario")
			if code != 0 {
				t.Errorf("exit %d, want 0\n%s", code, stderr)
			}
			if !urlLine.MatchString(strings.TrimSpace(stdout)) {
				t.Errorf("stdout %q", stdout)
			}
			for _, w := range tt.want {
				if !strings.Contains(stderr, w) {
					t.Errorf("stderr lacks %q:\n%s", w, stderr)
				}
			}
		})
	}
}

// TestFakeDiscordContextEnds: the command stops cleanly when its context is
// cancelled (what SIGINT does), scenario or not.
func TestFakeDiscordContextEnds(t *testing.T) {
	for _, args := range [][]string{{}, {"--scenario", "zombie"}} {
		ctx, cancel := context.WithCancel(context.Background())
		env, _, errb := testEnv(nil)
		result := make(chan int, 1)
		pr, pw := io.Pipe()
		env.Stdout = pw
		go func() {
			result <- runFakeDiscord(ctx, env, append([]string{"--log-level", "off"}, args...))
			pw.Close()
		}()
		line, err := bufio.NewReader(pr).ReadString('\n')
		if err != nil || !urlLine.MatchString(strings.TrimSpace(line)) {
			t.Fatalf("%v: first line %q, %v", args, line, err)
		}
		go io.Copy(io.Discard, pr)
		cancel()
		select {
		case code := <-result:
			if code != 0 {
				t.Errorf("%v: exit %d after cancel, want 0\n%s", args, code, errb)
			}
		case <-time.After(processBound):
			t.Fatalf("%v: still running %v after cancel", args, processBound)
		}
	}
}

func TestListScenarios(t *testing.T) {
	code, stdout, _ := runCLI(t, "fake-discord", "--list-scenarios")
	if code != 0 {
		t.Fatalf("exit %d", code)
	}
	for _, name := range discordtest.Scenarios() {
		if !strings.Contains(stdout, name+" ") {
			t.Errorf("--list-scenarios lacks %s:\n%s", name, stdout)
		}
	}
}

func TestPrivilegedIntents(t *testing.T) {
	tests := []struct {
		in   string
		want int64
	}{
		{"", 0},
		{"all", discordtest.IntentsPrivileged},
		{"MessageContent", discordtest.IntentMessageContent},
		{"guildmembers, GuildPresences", discordtest.IntentGuildMembers | discordtest.IntentGuildPresences},
	}
	for _, tt := range tests {
		got, err := privilegedIntents(tt.in)
		if err != nil || got != tt.want {
			t.Errorf("privilegedIntents(%q) = %#x, %v; want %#x", tt.in, got, err, tt.want)
		}
	}
}

// TestFakeDiscordFlagsDocumented: README.md's table names every flag.
func TestFakeDiscordFlagsDocumented(t *testing.T) {
	readme, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	env, _, _ := testEnv(nil)
	fs, _ := fakeDiscordFlags(env)
	fs.VisitAll(func(f *flag.Flag) {
		if !bytes.Contains(readme, []byte("`--"+f.Name+"`")) {
			t.Errorf("README.md does not document --%s", f.Name)
		}
	})
}
