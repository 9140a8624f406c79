package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/lifeline-bot/lifeline/core/flight"
	"github.com/lifeline-bot/lifeline/core/policy"
)

func init() {
	register(command{
		Name:    "policy test",
		Summary: "replay a flight recording through a policy: timeline, comparison, assertions",
		Usage: `POLICY --trace RECORDING [--compare OTHER] [--tests FILE] [--json]

Replays RECORDING (a flight recorder's JSON lines; its rotated files
RECORDING.1, RECORDING.2, ... are read first) through POLICY with the
recording's own clock, using the same evaluation and degradation engine as
the running system, so hysteresis and recovery_delay behave as they did live.
Prints when each level would have activated and deactivated with its actions,
the recovery strategies chosen for each recorded error, and a summary (time
per level, transitions, flaps avoided by hysteresis).

--compare OTHER replays OTHER too and prints both side by side; rows and
summary lines where the two differ are marked with '*'.

--tests FILE checks the assertions of a policy test file (see
docs/policy.md, "Tuning with recordings") over POLICY's replay; without it,
POLICY's name with .hcl replaced by .test.hcl is used when that file exists.

Exit status: 0, 1 when an assertion fails or a file cannot be read, 2 on
misuse.`,
		Run: runPolicyTest,
	})
}

// policyTestReport is the --json output.
type policyTestReport struct {
	Recording string           `json:"recording"`
	Lines     int              `json:"lines"`
	Truncated []string         `json:"truncated,omitempty"`
	Timeline  flight.Timeline  `json:"timeline"`
	Compare   *flight.Timeline `json:"compare,omitempty"`
	Tests     string           `json:"tests,omitempty"`
	Failures  []flight.Failure `json:"failures"`
}

// parseInterspersed parses flags that may come after positional arguments.
func parseInterspersed(fs *flag.FlagSet, args []string) (pos []string, code int, done bool) {
	for {
		if code, done := parseFlags(fs, args); done {
			return nil, code, true
		}
		args = fs.Args()
		if len(args) == 0 {
			return pos, 0, false
		}
		pos = append(pos, args[0])
		args = args[1:]
	}
}

// runPolicyTest is `lifeline policy test`.
func runPolicyTest(_ context.Context, env *cliEnv, args []string) int {
	fs := newFlagSet(env, "policy test")
	trace := fs.String("trace", "", "the flight recording to replay (required)")
	compare := fs.String("compare", "", "a second policy to replay and compare")
	tests := fs.String("tests", "", "a policy test file of assertions")
	asJSON := fs.Bool("json", false, "print the report as JSON")
	pos, code, done := parseInterspersed(fs, args)
	if done {
		return code
	}
	switch {
	case len(pos) == 0:
		return usageError(env, fs, "no policy file given")
	case len(pos) > 1:
		return usageError(env, fs, "one policy file expected, got %d", len(pos))
	case *trace == "":
		return usageError(env, fs, "--trace RECORDING is required")
	}
	fail := func(format string, a ...any) int {
		fmt.Fprintf(env.Stderr, "lifeline policy test: "+format+"\n", a...)
		return 1
	}
	opts := policy.Options{LookupEnv: func(name string) (string, bool) {
		v := env.Getenv(name)
		return v, v != ""
	}}
	p, err := policy.Load(pos[0], opts)
	if err != nil {
		return fail("%v", err)
	}
	rec, err := flight.ReadFile(*trace)
	if err != nil {
		return fail("%v", err)
	}
	rep := policyTestReport{Recording: *trace, Lines: len(rec.Lines), Truncated: rec.Truncated, Failures: []flight.Failure{}}
	if rep.Timeline, err = flight.Replay(rec, p); err != nil {
		return fail("%v", err)
	}
	if *compare != "" {
		q, err := policy.Load(*compare, opts)
		if err != nil {
			return fail("%v", err)
		}
		tl, err := flight.Replay(rec, q)
		if err != nil {
			return fail("%v", err)
		}
		rep.Compare = &tl
	}
	testFile := *tests
	if testFile == "" {
		if cand := strings.TrimSuffix(pos[0], ".hcl") + ".test.hcl"; cand != pos[0] {
			if _, err := os.Stat(cand); err == nil {
				testFile = cand
			}
		}
	}
	if testFile != "" {
		src, err := os.ReadFile(testFile)
		if err != nil {
			return fail("%v", err)
		}
		as, err := flight.DecodeTests(testFile, src)
		if err != nil {
			return fail("%v", err)
		}
		rep.Tests = testFile
		rep.Failures = append(rep.Failures, flight.Check(rep.Timeline, as)...)
	}
	if *asJSON {
		enc := json.NewEncoder(env.Stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(rep); err != nil {
			return fail("%v", err)
		}
	} else {
		writeReport(env.Stdout, rep)
	}
	for _, f := range rep.Failures {
		fmt.Fprintln(env.Stderr, f.String())
	}
	if len(rep.Failures) > 0 {
		return 1
	}
	return 0
}

// off formats a time as an offset from the recording's start.
func off(t, start time.Time) string { return "+" + dur(t.Sub(start)) }

// dur rounds a duration to the millisecond for display: recordings made
// with the real clock have nanosecond noise.
func dur(d time.Duration) string { return d.Round(time.Millisecond).String() }

func writeReport(w io.Writer, rep policyTestReport) {
	tl := rep.Timeline
	fmt.Fprintf(w, "recording %s: %d ticks over %s from %s\n", rep.Recording, rep.Lines, dur(tl.Summary.Duration), tl.Start.UTC().Format(time.RFC3339))
	for _, t := range rep.Truncated {
		fmt.Fprintf(w, "note: truncated last line left out at %s\n", t)
	}
	if rep.Compare != nil {
		writeCompare(w, tl, *rep.Compare)
	} else {
		writeTimeline(w, tl)
	}
	if rep.Tests != "" {
		n := "all assertions hold"
		if len(rep.Failures) > 0 {
			n = fmt.Sprintf("%d assertion(s) failed", len(rep.Failures))
		}
		fmt.Fprintf(w, "\ntests %s: %s\n", rep.Tests, n)
	}
}

func actionList(c flight.Change) string {
	var parts []string
	for _, a := range c.Applied {
		parts = append(parts, "+"+a)
	}
	for _, a := range c.RolledBack {
		parts = append(parts, "-"+a)
	}
	if len(parts) == 0 {
		return "-"
	}
	return strings.Join(parts, " ")
}

func writeTimeline(w io.Writer, tl flight.Timeline) {
	fmt.Fprintf(w, "\npolicy %s\n\n", tl.Policy)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "TIME\tCHANGE\tACTIONS\tREASON")
	if len(tl.Changes) == 0 {
		fmt.Fprintln(tw, "-\tno level change\t-\t-")
	}
	for _, c := range tl.Changes {
		reason := c.Reason
		if c.To < c.From {
			reason = "recovered"
		}
		fmt.Fprintf(tw, "%s\t%s -> %s\t%s\t%s\n", off(c.Time, tl.Start), c.From, c.To, actionList(c), reason)
	}
	tw.Flush()
	if len(tl.Recoveries) > 0 {
		fmt.Fprintln(w, "\nrecovery strategies")
		tw = tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		for _, r := range tl.Recoveries {
			fmt.Fprintf(tw, "%s\t%s\t-> %s\n", off(r.Time, tl.Start), r.Error, strings.Join(r.Strategies, ", "))
		}
		tw.Flush()
	}
	fmt.Fprintln(w, "\nsummary")
	tw = tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	for _, row := range summaryRows(tl) {
		fmt.Fprintf(tw, "  %s\t%s\n", row[0], row[1])
	}
	tw.Flush()
}

func summaryRows(tl flight.Timeline) [][2]string {
	rows := [][2]string{
		{"max level", tl.Summary.MaxLevel.String()},
		{"transitions", fmt.Sprint(tl.Summary.Transitions)},
		{"flaps avoided by hysteresis", fmt.Sprint(tl.Summary.FlapsAvoided)},
		{"time degraded", dur(tl.Summary.Degraded)},
	}
	for _, lt := range tl.Summary.TimeAt {
		rows = append(rows, [2]string{"time at " + lt.Level.String(), dur(lt.Duration)})
	}
	return rows
}

// writeCompare prints the two timelines side by side: one row per tick at
// which either changes level, marked '*' when the levels after it differ.
func writeCompare(w io.Writer, a, b flight.Timeline) {
	fmt.Fprintln(w)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "TIME\t%s\t%s\t\n", a.Policy, b.Policy)
	changeAt := func(tl flight.Timeline) map[time.Time]flight.Change {
		m := map[time.Time]flight.Change{}
		for _, c := range tl.Changes {
			m[c.Time] = c
		}
		return m
	}
	ca, cb := changeAt(a), changeAt(b)
	if len(ca) == 0 && len(cb) == 0 {
		fmt.Fprintln(tw, "-\tno level change\tno level change\t")
	}
	cell := func(c flight.Change, ok bool, level string) string {
		if !ok {
			return "(" + level + ")"
		}
		return fmt.Sprintf("%s -> %s %s", c.From, c.To, actionList(c))
	}
	for i, ta := range a.Ticks {
		tb := b.Ticks[i]
		xa, oka := ca[ta.Time]
		xb, okb := cb[tb.Time]
		if !oka && !okb {
			continue
		}
		mark := ""
		if ta.Level != tb.Level {
			mark = "*"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", off(ta.Time, a.Start), cell(xa, oka, ta.Level.String()), cell(xb, okb, tb.Level.String()), mark)
	}
	tw.Flush()
	fmt.Fprintln(w, "\nsummary")
	tw = tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	ra, rb := summaryRows(a), summaryRows(b)
	for i := range ra {
		mark := ""
		if ra[i][1] != rb[i][1] {
			mark = "*"
		}
		fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\n", ra[i][0], ra[i][1], rb[i][1], mark)
	}
	tw.Flush()
}
