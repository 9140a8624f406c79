package demo

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/lifeline-bot/lifeline/core/flight"
)

func TestMain(m *testing.M) {
	// The story starts this test binary as its plugin (see PluginArg).
	if len(os.Args) > 1 && os.Args[1] == PluginArg {
		ServePlugin()
		os.Exit(0)
	}
	goleak.VerifyTestMain(m,
		goleak.IgnoreTopFunction("time.Sleep"), // discordgo's Close sleeps in its own goroutine
		goleak.IgnoreTopFunction("net/http.(*persistConn).readLoop"),
		goleak.IgnoreTopFunction("net/http.(*persistConn).writeLoop"),
		goleak.IgnoreTopFunction("internal/poll.runtime_pollWait"),
	)
}

// The shortened story: every incident recovers, every message arrives,
// no limit is broken, and the output tells the story.
func TestStoryRecoversFromEveryIncident(t *testing.T) {
	var out bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	res, err := Run(ctx, Options{Out: &out, Duration: 20 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("story:\n%s", out.String())
	if !res.OK() {
		t.Fatalf("story did not end well: %+v", res)
	}
	var names []string
	for _, in := range res.Incidents {
		names = append(names, in.Name)
	}
	if got := strings.Join(names, ","); got != "zombie,latency-spike,ratelimit-storm,error-burst,outage,plugin-crash" {
		t.Fatalf("incidents = %s", got)
	}
	// The degradation story: the latency spike is MINIMAL and back; the
	// error burst climbs to at least MODERATE; the outage is CRITICAL with
	// the bot's writes refused, then steps down one level at a time.
	lv := res.Levels
	if len(lv) < 2 || lv[0] != "MINIMAL" || lv[1] != "NONE" {
		t.Fatalf("levels %v: the latency spike should be MINIMAL then NONE", lv)
	}
	tail := []string{"CRITICAL", "SEVERE", "MODERATE", "MINIMAL", "NONE"}
	if len(lv) < len(tail)+2 || strings.Join(lv[len(lv)-len(tail):], ",") != strings.Join(tail, ",") {
		t.Fatalf("levels %v: the outage should end CRITICAL, SEVERE, MODERATE, MINIMAL, NONE", lv)
	}
	if mid := strings.Join(lv[2:len(lv)-len(tail)], ","); !strings.Contains(mid, "MODERATE") || !strings.HasSuffix(mid, "NONE") {
		t.Fatalf("levels %v: the error burst should reach MODERATE and come back to NONE", lv)
	}
	// The actions, exactly: the spike's level, and the outage's climb and
	// its step-by-step rollback in reverse order of application.
	st := res.Steps
	if st[0] != "NONE->MINIMAL [disable_analytics reduce_logging_level]" || st[1] != "MINIMAL->NONE [reduce_logging_level disable_analytics]" {
		t.Fatalf("latency spike steps %q", st[:2])
	}
	wantTail := []string{
		"CRITICAL->SEVERE [enable_read_only_mode demo.hold_welcomes]",
		"SEVERE->MODERATE [increase_timeouts shutdown_non_essential_services reduce_concurrent_requests]",
		"MODERATE->MINIMAL [enable_aggressive_caching disable_non_critical_features]",
		"MINIMAL->NONE [reduce_logging_level disable_analytics]",
	}
	if len(st) < len(wantTail)+3 {
		t.Fatalf("steps %q", st)
	}
	if got := st[len(st)-len(wantTail):]; strings.Join(got, "\n") != strings.Join(wantTail, "\n") {
		t.Fatalf("outage steps:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(wantTail, "\n"))
	}
	// The climb into CRITICAL applied the demo plugin's action, then
	// read-only mode last (the climb may pass through a lower level first
	// if errors pile up before the breaker opens).
	climb := st[len(st)-len(wantTail)-1]
	if !strings.Contains(climb, "->CRITICAL [") || !strings.HasSuffix(climb, "demo.hold_welcomes enable_read_only_mode]") {
		t.Fatalf("climb into CRITICAL: %q", climb)
	}
	if res.ReadOnlyRefusals == 0 {
		t.Fatal("no write was refused while CRITICAL (read-only mode)")
	}
	if res.Identifies != 1 || res.Resumes < 2 {
		t.Fatalf("identifies = %d, resumes = %d: want one IDENTIFY and every recovery a RESUME", res.Identifies, res.Resumes)
	}
	if res.REST429s == 0 {
		t.Fatal("the rate-limit storm answered no 429")
	}
	checkPluginCrash(t, res.PluginCrash)
	for _, want := range []string{"zombie", "outage", "ratelimit-storm", "STATE_CHANGED", "CIRCUIT_BREAKER_TRIGGERED",
		"PLUGIN_STARTED", "PLUGIN_EXITED", "plugin-crash: the check fails, saying why: ", "meanwhile the bot is still connected: READY",
		"DEGRADATION_ACTIVATED", "DEGRADATION_DEACTIVATED", "read-only on", "leaderboard stopped",
		"read-only on, welcome-dm off", // the plugin's action, through the host API
		"read-only off, welcome-dm on",
		"RECOVERY_COMPLETED", "HEALTH_CHANGED", "OK: every incident recovered"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q", want)
		}
	}
}

// checkPluginCrash asserts the plugin chapter: the plugin process died in
// the middle of a call, its check failed saying so, the connection stayed
// READY, and the host restarted the plugin after its backoff into a new
// process whose check passes.
func checkPluginCrash(t *testing.T, pc PluginCrash) {
	t.Helper()
	if pc.Plugin != "demo" || pc.Check != "sidecar" || pc.PIDBefore == 0 || pc.PIDAfter == 0 || pc.PIDAfter == pc.PIDBefore {
		t.Fatalf("plugin chapter: %+v", pc)
	}
	const reason = "exit status 3 (last output: crashing on purpose: the demo's cue)"
	if !strings.Contains(pc.Exit, reason) {
		t.Errorf("PLUGIN_EXITED reason %q, want %q", pc.Exit, reason)
	}
	if len(pc.Failures) == 0 || !strings.Contains(pc.Failures[0], `plugin "demo" check sidecar: the plugin exited during the call: `+reason) {
		t.Errorf("the check's failures %q do not start with the crash and its reason", pc.Failures)
	}
	if !pc.StayedReady {
		t.Error("the connection left READY while the plugin crashed")
	}
	// A lower bound, not a timing: the host waited out its restart backoff
	// (1s) instead of restarting the plugin at once.
	if pc.RestartedAfter < 500*time.Millisecond {
		t.Errorf("restarted %s after the exit: no backoff", pc.RestartedAfter)
	}
	if !strings.Contains(pc.PassedAgain, fmt.Sprintf("pid %d,", pc.PIDAfter)) {
		t.Errorf("the check after the restart says %q, not the new pid %d", pc.PassedAgain, pc.PIDAfter)
	}
}

func TestStoryJSONIsOneObjectPerLine(t *testing.T) {
	var out bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	record := filepath.Join(t.TempDir(), "demo.jsonl")
	res, err := Run(ctx, Options{Out: &out, JSON: true, Duration: MinDuration, Record: record})
	if err != nil {
		t.Fatal(err)
	}
	// --record: a line per tick, with each incident marked.
	rec, err := flight.ReadFile(record)
	if err != nil {
		t.Fatal(err)
	}
	marks := map[string]bool{}
	levels := map[string]bool{}
	for _, l := range rec.Lines {
		for _, m := range l.Marks {
			marks[m] = true
		}
		levels[l.Level] = true
	}
	if len(rec.Lines) < 50 || !marks["zombie"] || !marks["outage"] || !marks["plugin-crash"] || !levels["CRITICAL"] {
		t.Fatalf("recording: %d lines, marks %v, levels %v", len(rec.Lines), marks, levels)
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	types := map[string]int{}
	for _, l := range lines {
		var v struct {
			Type string `json:"type"`
		}
		if err := json.Unmarshal([]byte(l), &v); err != nil || v.Type == "" {
			t.Fatalf("line is not a JSON object with a type: %q (%v)", l, err)
		}
		types[v.Type]++
	}
	if types["DEMO_SUMMARY"] != 1 || types["DEMO_STEP"] == 0 || types["STATE_CHANGED"] == 0 ||
		types["PLUGIN_EXITED"] == 0 || types["PLUGIN_STARTED"] < 2 {
		t.Fatalf("types seen: %v", types)
	}
	var last struct {
		OK          bool        `json:"ok"`
		PluginCrash PluginCrash `json:"plugin_crash"`
	}
	_ = json.Unmarshal([]byte(lines[len(lines)-1]), &last)
	if last.OK != res.OK() {
		t.Fatalf("summary ok = %v, result OK = %v", last.OK, res.OK())
	}
	// The summary carries the plugin chapter's record.
	if last.PluginCrash.PIDAfter == 0 || last.PluginCrash.PIDAfter != res.PluginCrash.PIDAfter || !last.PluginCrash.StayedReady {
		t.Fatalf("summary plugin_crash = %+v, result %+v", last.PluginCrash, res.PluginCrash)
	}
}

func TestDurationTooShortIsRefused(t *testing.T) {
	if _, err := Run(context.Background(), Options{Duration: time.Second}); err == nil {
		t.Fatal("a one-second story was accepted")
	}
}

// With a listener, the story serves the operator's surface while it runs.
func TestStoryServesTheDashboard(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	url := "http://" + ln.Addr().String()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	got := make(chan int, 1)
	go func() {
		for i := 0; i < 200; i++ {
			if resp, err := http.Get(url + "/readyz"); err == nil {
				resp.Body.Close()
				if resp.StatusCode == http.StatusOK {
					got <- resp.StatusCode
					return
				}
			}
			time.Sleep(50 * time.Millisecond)
		}
		got <- 0
	}()
	var out bytes.Buffer
	if _, err := Run(ctx, Options{Out: &out, Duration: MinDuration, HTTP: ln}); err != nil {
		t.Fatal(err)
	}
	if code := <-got; code != http.StatusOK {
		t.Fatalf("/readyz never answered 200 during the story")
	}
	if !strings.Contains(out.String(), "live dashboard at "+url) {
		t.Fatalf("the story does not say where the dashboard is:\n%s", out.String())
	}
}
