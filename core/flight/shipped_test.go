package flight_test

import (
	"path/filepath"
	"testing"

	"github.com/lifeline-bot/lifeline/core/flight"
	"github.com/lifeline-bot/lifeline/core/policy"
)

// TestShippedIncidentsReplayToTheirLiveLevels: every incident under
// testdata/incidents/ was recorded live with policies/medium.hcl; replaying
// it with that policy gives, tick by tick, the decision and the level the
// live run recorded.
func TestShippedIncidentsReplayToTheirLiveLevels(t *testing.T) {
	files, err := filepath.Glob("../../testdata/incidents/*.jsonl")
	if err != nil || len(files) == 0 {
		t.Fatalf("no incidents: %v", err)
	}
	p, err := policy.Load("../../policies/medium.hcl", policy.Options{})
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			rec, err := flight.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			tl, err := flight.Replay(rec, p)
			if err != nil {
				t.Fatal(err)
			}
			for i, tk := range tl.Ticks {
				l := rec.Lines[i]
				if l.Decision == nil {
					t.Fatalf("line %d has no live decision", i+1)
				}
				if tk.Target != l.Decision.Level || tk.Recover != l.Decision.Recover || tk.Level.String() != l.Level {
					t.Errorf("line %d: live target %v recover %v level %s; replay target %v recover %v level %v",
						i+1, l.Decision.Level, l.Decision.Recover, l.Level, tk.Target, tk.Recover, tk.Level)
				}
			}
		})
	}
}
