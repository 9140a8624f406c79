package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/lifeline-bot/lifeline/core/conn"
	"github.com/lifeline-bot/lifeline/core/flight"
	"github.com/lifeline-bot/lifeline/core/policy"
	"github.com/lifeline-bot/lifeline/discordtest"
)

func TestUsage(t *testing.T) {
	tests := []struct {
		args   []string
		code   int
		stderr string
	}{
		{[]string{"-h"}, 0, "rolling-outage, zombie-storm, rate-limit-storm, slow-recovery"},
		{[]string{"-only", "rolling-outage,nope"}, 2, `unknown incident "nope"`},
		{[]string{"extra"}, 2, `unexpected argument "extra"`},
		{[]string{"-quiet", "0s"}, 2, "must be positive"},
		{[]string{"-max", "zz"}, 2, "invalid value"},
		{[]string{"-policy", filepath.Join(t.TempDir(), "missing.hcl")}, 1, "missing.hcl"},
	}
	for _, tc := range tests {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			code := run(context.Background(), tc.args, &stdout, &stderr)
			if code != tc.code || !strings.Contains(stderr.String(), tc.stderr) {
				t.Fatalf("exit %d, want %d; stderr:\n%s", code, tc.code, stderr.String())
			}
		})
	}
}

// TestIncidentsAreInTimeOrder: each script's steps are in time order,
// start with the "fault" mark and end with "fault cleared", which the
// shipped assertions measure from.
func TestIncidentsAreInTimeOrder(t *testing.T) {
	for _, inc := range incidents {
		var last time.Duration
		for i, st := range inc.steps {
			if st.at < last {
				t.Errorf("%s: step %d at %s comes before %s", inc.name, i, st.at, last)
			}
			last = st.at
		}
		if n := len(inc.steps); n < 2 || inc.steps[0].mark != "fault" || inc.steps[n-1].mark != "fault cleared" || inc.steps[0].do == nil {
			t.Errorf("%s: want a first step marked fault that injects one and a last marked fault cleared", inc.name)
		}
	}
}

// blipPolicy degrades while the gateway is down; the connection never
// gives up and the breaker does not open on the blip's many quick failed
// reconnects.
const blipPolicy = `
connection {
  max_reconnect_attempts = 0
}
circuit_breaker {
  failure_threshold = 100
}
degradation {
  recovery_delay = "0s"
  level "minimal" {
    when    = "!gateway.connected"
    actions = ["disable_analytics"]
  }
  recover {
    when = "gateway.connected"
  }
}
`

// TestRecordABlip records a short incident for real (a dropped connection
// refused for a moment, a fast fake Discord, a 1s tick): the recording has
// the marks, replays to the levels it recorded, ends once back to NONE, and
// the assertions beside it are checked.
func TestRecordABlip(t *testing.T) {
	if testing.Short() {
		t.Skip("records a few seconds of a live system")
	}
	p, err := policy.LoadSource("blip.hcl", []byte(blipPolicy), policy.Options{})
	if err != nil {
		t.Fatal(err)
	}
	blip := incident{"blip", []step{
		{1500 * time.Millisecond, "fault", func(s *discordtest.Server) error {
			if err := s.Outage(discordtest.OutageRefuse, 1500*time.Millisecond); err != nil {
				return err
			}
			return s.DropConnections()
		}},
		{3 * time.Second, "fault cleared", nil},
	}}
	dir := t.TempDir()
	path := filepath.Join(dir, "blip.jsonl")
	if err := os.WriteFile(path+".1", []byte("an old rotated file\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	var log bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	res, err := record(ctx, blip, settings{
		policy: p, path: path, scale: 200, quiet: 2 * time.Second, max: 40 * time.Second, log: &log,
		tune: func(c *conn.Config) {
			c.ReconnectDelay = 50 * time.Millisecond
			c.MaxReconnectDelay = 300 * time.Millisecond
		},
	})
	if err != nil {
		t.Fatalf("record: %v\n%s", err, log.String())
	}
	if !res.Recovered || res.MaxLevel != policy.Minimal || res.LastLevel != policy.None || res.Stats.Lines < 5 {
		t.Fatalf("result %+v\n%s\nevents:\n%s", res, log.String(), eventSummaries(path))
	}
	if _, err := os.Stat(path + ".1"); !os.IsNotExist(err) {
		t.Errorf("the old rotated file is still there: %v", err)
	}
	rec, err := flight.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var marks []string
	for _, l := range rec.Lines {
		marks = append(marks, l.Marks...)
	}
	if strings.Join(marks, ",") != "fault,fault cleared" {
		t.Errorf("marks %q", marks)
	}
	tl, err := flight.Replay(rec, p)
	if err != nil {
		t.Fatal(err)
	}
	for i, tk := range tl.Ticks {
		if got, want := tk.Level.String(), rec.Lines[i].Level; got != want {
			t.Errorf("line %d: replayed level %s, recorded %s", i+1, got, want)
		}
	}

	// The assertions beside the recording are checked against it.
	if msgs := checkAssertions(path, p); msgs != nil {
		t.Fatalf("no test file, yet %q", msgs)
	}
	tests := `assert "degraded after the fault" {
  level  = "minimal"
  within = "10s"
  of     = "mark:fault"
}
assert "never degraded" {
  level = "> none"
  never = true
}
`
	if err := os.WriteFile(filepath.Join(dir, "blip.test.hcl"), []byte(tests), 0o600); err != nil {
		t.Fatal(err)
	}
	msgs := checkAssertions(path, p)
	if len(msgs) != 1 || !strings.Contains(msgs[0], `"never degraded"`) {
		t.Fatalf("assertion failures %q, want only \"never degraded\"", msgs)
	}
}

// eventSummaries lists the events of a recording, for failure messages.
func eventSummaries(path string) string {
	rec, err := flight.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	var b strings.Builder
	for _, l := range rec.Lines {
		for _, e := range l.Events {
			b.WriteString(e.Summary + "\n")
		}
	}
	return b.String()
}
