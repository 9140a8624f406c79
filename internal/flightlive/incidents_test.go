package flightlive_test

import (
	"os"
	"path/filepath"
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
	// 100s of refused connections: six failed reconnects while down make
	// CRITICAL (read-only), held until the gateway is back.
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
		})
	}
}
