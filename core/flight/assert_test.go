package flight_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/lifeline-bot/lifeline/core/flight"
)

func TestAssertions(t *testing.T) {
	rec := incident()
	rec.Lines[3].Marks = []string{"fault"}
	rec.Lines[9].Marks = []string{"fault cleared"}
	tl, err := flight.Replay(rec, mustPolicy(t, "p.hcl", "10s")) // MODERATE from +3s to +19s
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, body string
		fail       string // "" when it holds; else a substring of the failure
	}{
		{"critical never", `level = "critical"` + "\n never = true", ""},
		{"moderate never", `level = "moderate"` + "\n never = true", `at +3s (2026-11-27T05:00:03Z): level MODERATE (target MODERATE: level "moderate" (p.hcl:5): errors.rate > 0.1); errors.rate=0.2 errors.consecutive=0`},
		{"moderate soon", `level = ">= moderate"` + "\n within = \"0s\"\n of = \"mark:fault\"", ""},
		{"none soon after clear", `level = "none"` + "\n within = \"5s\"\n of = \"mark:fault cleared\"", `at +14s (2026-11-27T05:00:14Z): level MODERATE at the end of the window (target NONE: no level condition holds); errors.rate=0.01`},
		{"none within 10s after clear", `level = "none"` + "\n within = \"10s\"\n of = \"mark:fault cleared\"", ""},
		{"none at the end", `level = "none"` + "\n within = \"5s\"\n of = \"end\"", ""},
		{"missing marker", `level = "none"` + "\n within = \"5s\"\n of = \"mark:nope\"", `"mark:nope": marker not in the recording`},
		{"window past the end", `level = "critical"` + "\n within = \"1h\"\n of = \"start\"", "recording ends at +24s at level NONE, before the window closes"},
		{"first event", `level = "none"` + "\n within = \"1s\"\n of = \"first ERROR_OCCURRED\"", `"ERROR_OCCURRED": marker not in the recording`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			as, err := flight.DecodeTests("t.hcl", []byte(`assert "`+tc.name+`" {`+"\n"+tc.body+"\n}\n"))
			if err != nil {
				t.Fatal(err)
			}
			fails := flight.Check(tl, as)
			if tc.fail == "" {
				if len(fails) != 0 {
					t.Fatalf("unexpected failure: %s", fails[0])
				}
				return
			}
			if len(fails) != 1 || !strings.Contains(fails[0].String(), tc.fail) || !strings.Contains(fails[0].String(), `FAIL "`+tc.name+`"`) {
				t.Fatalf("failures %v, want one containing %q", fails, tc.fail)
			}
		})
	}
}

func TestDecodeTestsRejects(t *testing.T) {
	tests := map[string]string{
		"no blocks":        ``,
		"bad level":        `assert "a" { level = "purple"` + "\n never = true }",
		"never and within": "assert \"a\" {\n level = \"none\"\n never = true\n within = \"1s\"\n of = \"start\"\n}",
		"no kind":          "assert \"a\" {\n level = \"none\"\n}",
		"bad duration":     "assert \"a\" {\n level = \"none\"\n within = \"soon\"\n of = \"start\"\n}",
		"bad marker":       "assert \"a\" {\n level = \"none\"\n within = \"1s\"\n of = \"lunch\"\n}",
		"bad event":        "assert \"a\" {\n level = \"none\"\n within = \"1s\"\n of = \"first LUNCH\"\n}",
		"unknown attr":     "assert \"a\" {\n level = \"none\"\n never = true\n color = 1\n}",
		"syntax":           "assert \"a\" {",
	}
	for name, src := range tests {
		t.Run(name, func(t *testing.T) {
			if _, err := flight.DecodeTests("t.hcl", []byte(src)); !errors.Is(err, flight.ErrInvalidTests) {
				t.Fatalf("err = %v", err)
			}
		})
	}
}
