package discordtest

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/lifeline-bot/lifeline/core/clock"
)

func TestParseScenario(t *testing.T) {
	src := `
name        = "demo"
description = "a demo"

step "drop" {
  at     = "20s"
  shards = [1, 2]
}
step "stall_acks" {
  at       = "5s"
  duration = "1m"
}
step "rest_errors" {
  at     = "30s"
  rate   = 0.25
  status = 502
}
step "outage" {
  at   = "40s"
  mode = "blackhole"
  duration = "10s"
}
`
	sc, err := ParseScenario("demo.hcl", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	want := []Step{
		{At: 5 * time.Second, Line: 9, Fault: Fault{Kind: FaultStallACKs, Duration: time.Minute}},
		{At: 20 * time.Second, Line: 5, Fault: Fault{Kind: FaultDrop, Shards: []int{1, 2}}},
		{At: 30 * time.Second, Line: 13, Fault: Fault{Kind: FaultRESTErrors, Rate: 0.25, Status: 502}},
		{At: 40 * time.Second, Line: 18, Fault: Fault{Kind: FaultOutage, Mode: OutageBlackhole, Duration: 10 * time.Second}},
	}
	if sc.Name != "demo" || sc.Description != "a demo" || !reflect.DeepEqual(sc.Steps, want) {
		t.Fatalf("parsed %+v\nwant steps %+v", sc, want)
	}
	if sc.Length() != 65*time.Second {
		t.Fatalf("Length %v, want 65s", sc.Length())
	}
}

func TestMalformedScenarioReportsFileLineAndReason(t *testing.T) {
	tests := []struct {
		name string
		src  string
		line int
		want string
	}{
		{"syntax error", "\nstep \"drop\" {\n  at = \"1s\"\n", 2, "Unclosed configuration block"},
		{"unknown fault", "\n\nstep \"meteor\" {\n  at = \"1s\"\n}\n", 3, "Unknown fault"},
		{"missing at", "step \"drop\" {\n  shards = [0]\n}\n", 1, "Missing required argument"},
		{"bad duration", "step \"stall_acks\" {\n  at = \"1s\"\n  duration = \"soon\"\n}\n", 3, "Invalid duration"},
		{"negative offset", "step \"drop\" {\n  at = \"-1s\"\n}\n", 2, "negative"},
		{"parameter the fault does not use", "step \"drop\" {\n  at = \"1s\"\n  duration = \"5s\"\n}\n", 1, `does not use "duration"`},
		{"missing parameter", "step \"close\" {\n  at = \"1s\"\n}\n", 1, `needs "code"`},
		{"unknown attribute", "step \"drop\" {\n  at = \"1s\"\n  colour = \"red\"\n}\n", 3, "Unsupported argument"},
		{"wrong type", "step \"close\" {\n  at = \"1s\"\n  code = \"loud\"\n}\n", 3, "Unsuitable value type"},
		{"variable reference", "step \"drop\" {\n  at = later\n}\n", 2, "Variables not allowed"},
		{"missing label", "step {\n  at = \"1s\"\n}\n", 1, "Missing fault for step"},
		{"unknown block", "stage \"one\" {\n}\n", 1, "Unsupported block type"},
		{"no steps", "name = \"empty\"\n", 1, "No steps"},
		{"bad close code", "step \"close\" {\n  at = \"1s\"\n  code = 1006\n}\n", 1, "not a close code"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseScenario("bad.hcl", []byte(tt.src))
			if err == nil {
				t.Fatal("parsed a malformed scenario")
			}
			if !errors.Is(err, ErrInvalidScenario) {
				t.Fatalf("error %v does not wrap ErrInvalidScenario", err)
			}
			var se *ScenarioError
			if !errors.As(err, &se) || len(se.Diagnostics) == 0 {
				t.Fatalf("error %T carries no diagnostics", err)
			}
			loc := "bad.hcl:" + strconv.Itoa(tt.line) + ","
			if !strings.Contains(err.Error(), loc) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %q, want %q and %q", err, loc, tt.want)
			}
		})
	}
}

func TestLoadScenarioReportsEveryProblem(t *testing.T) {
	p := filepath.Join("testdata", "scenarios", "malformed.hcl")
	_, err := LoadScenario(p)
	if err == nil {
		t.Fatal("loaded a malformed file")
	}
	msg := err.Error()
	for _, want := range []string{p + ":8,", `needs "code"`, p + ":13,", "Invalid duration"} {
		if !strings.Contains(msg, want) {
			t.Fatalf("error %q lacks %q", msg, want)
		}
	}
	if _, err := LoadScenario(filepath.Join("testdata", "nope.hcl")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("missing file: %v", err)
	}
}

func TestShippedScenariosParse(t *testing.T) {
	names := Scenarios()
	want := []string{"identify-storm", "invalid-session-loop", "ratelimit-storm", "rolling-outage", "stalled-sessions", "zombie"}
	if !reflect.DeepEqual(names, want) {
		t.Fatalf("Scenarios() = %v, want %v", names, want)
	}
	for _, n := range names {
		sc, err := BuiltinScenario(n)
		if err != nil {
			t.Fatalf("%s: %v", n, err)
		}
		if sc.Name != n || sc.Description == "" || len(sc.Steps) == 0 {
			t.Fatalf("%s: %+v", n, sc)
		}
		// The files on disk are the ones embedded.
		if _, err := LoadScenario(filepath.Join("scenarios", n+".hcl")); err != nil {
			t.Fatalf("%s from disk: %v", n, err)
		}
	}
	if _, err := BuiltinScenario("nope"); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("unknown built-in: %v", err)
	}
}

// TestShippedScenariosRun plays every shipped scenario, compressed 4000
// times, against a server with four connected shards, and checks that every
// step ran in order and left its mark in the ledger.
func TestShippedScenariosRun(t *testing.T) {
	for _, n := range Scenarios() {
		t.Run(n, func(t *testing.T) {
			srv := newTestServer(t, Options{Scale: 4000, MaxConcurrency: 4, HeartbeatTimeout: -1, SessionExpiry: time.Hour, Guilds: 8})
			for sh := 0; sh < 4; sh++ {
				c := dialRaw(t, srv, "/gateway", "")
				c.identify(srv, [2]int{sh, 4})
			}
			sc, err := BuiltinScenario(n)
			if err != nil {
				t.Fatal(err)
			}
			var ran []Step
			if err := sc.Run(context.Background(), srv, func(st Step) { ran = append(ran, st) }); err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(ran, sc.Steps) {
				t.Fatalf("ran %+v, want %+v", ran, sc.Steps)
			}
			// Inject only queues the frames a fault sends; each connection's
			// writer goroutine writes them (and the ledger records them)
			// later. At Scale 4000 the whole scenario is over in a few
			// milliseconds, so under load the check can come before the
			// writers: wait for the trace, with a bound.
			for _, st := range sc.Steps {
				waitFor(t, fmt.Sprintf("a trace of step %s at %v", st.Fault.Kind, st.At), func() bool {
					return faultLeftAMark(srv, st.Fault)
				})
			}
		})
	}
}

// faultLeftAMark checks the server for an effect of the fault that outlives
// it (the ledger, or the fault being recorded as active or ended).
func faultLeftAMark(srv *Server, f Fault) bool {
	l := srv.Ledger()
	switch f.Kind {
	case FaultDrop, FaultMassDisconnect:
		for _, c := range l.Connections() {
			if c.CloseKind == DroppedByServer {
				return true
			}
		}
		return false
	case FaultDispatch:
		for _, s := range l.Sessions() {
			for _, d := range s.Dispatches {
				if d.Type == "MESSAGE_CREATE" {
					return true
				}
			}
		}
		return false
	case FaultInvalidSession, FaultInvalidateSessions:
		for _, c := range l.Connections() {
			for _, fr := range c.Frames {
				if fr.Dir == Sent && fr.Op == OpInvalidSession {
					return true
				}
			}
		}
		if f.Kind == FaultInvalidSession {
			return false
		}
		// The op 9 frames of invalidate_sessions are only queued, and a
		// drop that follows at once (identify-storm drops every connection
		// at the same offset) discards what the writers have not sent yet,
		// as a real connection reset would. The sessions it ended are in
		// the ledger whatever became of the frames.
		sessions := l.Sessions()
		for _, s := range sessions {
			if !s.Ended {
				return false
			}
		}
		return len(sessions) > 0
	case FaultGuildOutage:
		for _, s := range l.Sessions() {
			for _, d := range s.Dispatches {
				if d.Type == "GUILD_DELETE" {
					return true
				}
			}
		}
		return false
	default:
		// Lasting faults: Inject accepted them (Run would have failed
		// otherwise); their effects have their own tests.
		return true
	}
}

func TestScenarioRunHonoursOffsetsOnTheServerClock(t *testing.T) {
	fc := clock.NewFake(time.Time{})
	srv := newTestServer(t, Options{Clock: fc, Scale: 10, MaxConcurrency: 2, HeartbeatTimeout: -1})
	c0 := dialRaw(t, srv, "/gateway", "")
	c0.identify(srv, [2]int{0, 2})
	c1 := dialRaw(t, srv, "/gateway", "")
	c1.identify(srv, [2]int{1, 2})
	sc, err := ParseScenario("t.hcl", []byte(`
step "reconnect" {
  at     = "10s"
  shards = [0]
}
step "close" {
  at     = "20s"
  code   = 4000
  shards = [1]
}
`))
	if err != nil {
		t.Fatal(err)
	}
	steps := make(chan Step, 2)
	done := make(chan error, 1)
	waiters := fc.Waiters()
	go func() { done <- sc.Run(context.Background(), srv, func(st Step) { steps <- st }) }()
	// Scale 10: the first step is due after 1 s of server time.
	if !fc.BlockUntil(waiters+1, ioTimeout) {
		t.Fatal("the runner did not wait on the clock")
	}
	fc.Advance(999 * time.Millisecond)
	select {
	case st := <-steps:
		t.Fatalf("step %s ran early", st.Fault.Kind)
	default:
	}
	fc.Advance(time.Millisecond)
	if st := <-steps; st.Fault.Kind != FaultReconnect {
		t.Fatalf("first step %s", st.Fault.Kind)
	}
	c0.expect(OpReconnect, "")
	if !fc.BlockUntil(waiters+1, ioTimeout) {
		t.Fatal("the runner did not wait for the second step")
	}
	fc.Advance(time.Second)
	if code := c1.expectClose(); code != 4000 {
		t.Fatalf("close %d", code)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

func TestScenarioRunStopsOnContextAndClose(t *testing.T) {
	fc := clock.NewFake(time.Time{})
	srv := newTestServer(t, Options{Clock: fc})
	sc, err := ParseScenario("t.hcl", []byte("step \"drop\" {\n  at = \"1h\"\n}\n"))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- sc.Run(ctx, srv, nil) }()
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("Run after cancel: %v", err)
	}
	go func() { done <- sc.Run(context.Background(), srv, nil) }()
	if !fc.BlockUntil(1, ioTimeout) {
		t.Fatal("runner not waiting")
	}
	_ = srv.Close()
	if err := <-done; !errors.Is(err, ErrClosed) {
		t.Fatalf("Run after Close: %v", err)
	}
}

func FuzzParseScenario(f *testing.F) {
	for _, n := range Scenarios() {
		src, err := builtinScenarios.ReadFile("scenarios/" + n + ".hcl")
		if err != nil {
			f.Fatal(err)
		}
		f.Add(src)
	}
	f.Add([]byte("step \"close\" {\n  at = \"1s\"\n  code = 4000\n}\n"))
	f.Add([]byte("step \"drop\" {\n  at = \"1s\"\n"))
	f.Fuzz(func(t *testing.T, src []byte) {
		sc, err := ParseScenario("fuzz.hcl", src)
		if err != nil {
			if !errors.Is(err, ErrInvalidScenario) {
				t.Fatalf("error %v does not wrap ErrInvalidScenario", err)
			}
			if !strings.Contains(err.Error(), "fuzz.hcl:") {
				t.Fatalf("error %q has no location", err)
			}
			return
		}
		if len(sc.Steps) == 0 {
			t.Fatal("a scenario without steps parsed")
		}
		for i, st := range sc.Steps {
			if st.At < 0 || st.Line < 1 {
				t.Fatalf("step %+v", st)
			}
			if err := st.Fault.Validate(); err != nil {
				t.Fatalf("parsed an invalid fault: %v", err)
			}
			if i > 0 && st.At < sc.Steps[i-1].At {
				t.Fatal("steps not sorted by offset")
			}
		}
	})
}
