package flightlive_test

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/lifeline-bot/lifeline/core/flight"
	"github.com/lifeline-bot/lifeline/core/policy"
)

// shippedIncidents pins what each incident under testdata/incidents/ must
// show when replayed with policies/medium.hcl, the policy it was recorded
// with (go run ./internal/cmd/record-incidents records them): the highest
// level the replay reaches. A re-recording or a policy edit that changes
// one of these is a change in behaviour to look at, not noise.
var shippedIncidents = map[string]policy.Level{
	// 100s of refused connections: a minute down (gateway.down_for > 60s)
	// makes CRITICAL (read-only), held until the gateway is back.
	"rolling-outage": policy.Critical,
	// Stalled ACKs are caught as zombies and resumed at once: the gateway
	// is never down long enough to degrade.
	"zombie-storm": policy.None,
	// 40s of 429s: load shed at MODERATE, never further.
	"rate-limit-storm": policy.Moderate,
	// Half the REST requests failing: SEVERE, then a slow way down.
	"slow-recovery": policy.Severe,
}

// TestShippedIncidentsMeetTheirExpectations replays every incident with
// medium.hcl: it reaches the level pinned above and no higher, ends at
// NONE, and passes the assertions of the NAME.test.hcl beside it (the
// file `lifeline policy test --tests` reads; record-incidents checks it
// too when it records).
func TestShippedIncidentsMeetTheirExpectations(t *testing.T) {
	files, err := filepath.Glob("../../testdata/incidents/*.jsonl")
	if err != nil || len(files) != len(shippedIncidents) {
		t.Fatalf("incidents %q (%v): want one per entry of shippedIncidents", files, err)
	}
	p, err := policy.Load("../../policies/medium.hcl", policy.Options{})
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		name := strings.TrimSuffix(filepath.Base(f), ".jsonl")
		t.Run(name, func(t *testing.T) {
			want, ok := shippedIncidents[name]
			if !ok {
				t.Fatalf("%s is not in shippedIncidents", f)
			}
			rec, err := flight.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			tl, err := flight.Replay(rec, p)
			if err != nil {
				t.Fatal(err)
			}
			var top policy.Level
			for _, tk := range tl.Ticks {
				top = max(top, tk.Level)
			}
			if top != want {
				t.Errorf("replay reaches %v, want %v", top, want)
			}
			if last := tl.Ticks[len(tl.Ticks)-1].Level; last != policy.None {
				t.Errorf("replay ends at %v, want NONE", last)
			}
			testFile := strings.TrimSuffix(f, ".jsonl") + ".test.hcl"
			src, err := os.ReadFile(testFile)
			if err != nil {
				t.Fatal(err)
			}
			as, err := flight.DecodeTests(testFile, src)
			if err != nil {
				t.Fatal(err)
			}
			if len(as) == 0 {
				t.Fatalf("%s has no assertions", testFile)
			}
			for _, fail := range flight.Check(tl, as) {
				t.Errorf("%s", fail)
			}
			calmBeforeTheFault(t, rec)
		})
	}
}

// calmBeforeTheFault checks the recording up to its "fault" mark: the
// bot connects once and every health verdict is HEALTHY (or UNKNOWN before
// the first run) at level NONE. A verdict judged on the handshake (the
// gateway check failing before the first READY) would stand for a whole
// health interval after READY and show here as CRITICAL.
func calmBeforeTheFault(t *testing.T, rec *flight.Recording) {
	t.Helper()
	connected := false
	for i, l := range rec.Lines {
		if slices.Contains(l.Marks, "fault") {
			if !connected {
				t.Errorf("never connected before the fault (line %d)", i+1)
			}
			return
		}
		s := l.Snapshot
		connected = connected || s.Gateway.Connected
		if st := s.Health.Status; st != "HEALTHY" && st != "UNKNOWN" {
			t.Errorf("line %d, before the fault: health %s (gateway %s, connected %v)", i+1, st, s.Gateway.State, s.Gateway.Connected)
		}
		if l.Level != "" && l.Level != "NONE" {
			t.Errorf("line %d, before the fault: level %s", i+1, l.Level)
		}
	}
	t.Error("no fault mark")
}
