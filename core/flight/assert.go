package flight

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/gohcl"
	"github.com/hashicorp/hcl/v2/hclsyntax"

	"github.com/lifeline-bot/lifeline/core/events"
	"github.com/lifeline-bot/lifeline/core/policy"
)

// ErrInvalidTests is returned (wrapped) by DecodeTests when a policy test
// file does not parse or an assertion is malformed.
var ErrInvalidTests = errors.New("flight: invalid policy test file")

// Assertion is one `assert "NAME"` block of a policy test file:
//
//	assert "critical never activates" {
//	  level = "critical"          # a level, or a comparison: ">= moderate"
//	  never = true
//	}
//	assert "moderate soon after the fault" {
//	  level  = ">= moderate"
//	  within = "30s"
//	  of     = "mark:fault"       # see Marker
//	}
//
// With never, no tick of the replay may be at a matching level. With within
// and of, some tick in the window must be: [t, t+within] where t is the
// marker's time, or the last `within` of the recording for the marker "end".
type Assertion struct {
	Name   string  `hcl:"name,label"`
	Level  string  `hcl:"level"`
	Never  *bool   `hcl:"never,optional"`
	Within *string `hcl:"within,optional"`
	Of     *string `hcl:"of,optional"`

	cmp    string
	level  policy.Level
	window time.Duration
}

type testFile struct {
	Asserts []*Assertion `hcl:"assert,block"`
}

// DecodeTests parses a policy test file: a list of assert blocks. Markers
// (the `of` attribute) are:
//
//	start, end                  the first and last line of the recording
//	mark:NAME, last mark:NAME   the first (last) line carrying Mark NAME
//	first TYPE, last TYPE       the first (last) event of a type, e.g.
//	                            "first ERROR_OCCURRED"
func DecodeTests(filename string, src []byte) ([]*Assertion, error) {
	f, diags := hclsyntax.ParseConfig(src, filename, hcl.InitialPos)
	if diags.HasErrors() {
		return nil, fmt.Errorf("%w: %s", ErrInvalidTests, diagString(diags))
	}
	var tf testFile
	if diags := gohcl.DecodeBody(f.Body, nil, &tf); diags.HasErrors() {
		return nil, fmt.Errorf("%w: %s", ErrInvalidTests, diagString(diags))
	}
	if len(tf.Asserts) == 0 {
		return nil, fmt.Errorf("%w: %s: no assert block", ErrInvalidTests, filename)
	}
	for _, a := range tf.Asserts {
		if err := a.compile(); err != nil {
			return nil, fmt.Errorf("%w: %s: assert %q: %v", ErrInvalidTests, filename, a.Name, err)
		}
	}
	return tf.Asserts, nil
}

func diagString(diags hcl.Diagnostics) string {
	var parts []string
	for _, d := range diags {
		parts = append(parts, policy.DiagnosticLine(d))
	}
	return strings.Join(parts, "; ")
}

var comparisons = []string{">=", "<=", "!=", "==", ">", "<"}

func (a *Assertion) compile() error {
	s := strings.TrimSpace(a.Level)
	a.cmp = "=="
	for _, c := range comparisons {
		if rest, ok := strings.CutPrefix(s, c); ok {
			a.cmp, s = c, strings.TrimSpace(rest)
			break
		}
	}
	lv, err := policy.ParseLevel(s)
	if err != nil {
		return fmt.Errorf("level %q: %w", a.Level, err)
	}
	a.level = lv
	never := a.Never != nil && *a.Never
	switch {
	case never && (a.Within != nil || a.Of != nil):
		return errors.New("never cannot be combined with within/of")
	case never:
		return nil
	case a.Within == nil || a.Of == nil:
		return errors.New("needs never = true, or within and of")
	}
	d, err := time.ParseDuration(*a.Within)
	if err != nil || d < 0 {
		return fmt.Errorf("within %q: not a non-negative duration", *a.Within)
	}
	a.window = d
	if _, err := markerTime(&Recording{Lines: []Line{{}}}, *a.Of, true); err != nil && !errors.Is(err, errNoMarker) {
		return err
	}
	return nil
}

// Text is the assertion in one line, e.g. "level >= MODERATE within 30s of mark:fault".
func (a *Assertion) Text() string {
	lv := a.level.String()
	if a.cmp != "==" {
		lv = a.cmp + " " + lv
	}
	if a.Never != nil && *a.Never {
		return "level " + lv + " never"
	}
	return fmt.Sprintf("level %s within %s of %s", lv, a.window, *a.Of)
}

func (a *Assertion) matches(l policy.Level) bool {
	switch a.cmp {
	case ">=":
		return l >= a.level
	case "<=":
		return l <= a.level
	case ">":
		return l > a.level
	case "<":
		return l < a.level
	case "!=":
		return l != a.level
	}
	return l == a.level
}

var errNoMarker = errors.New("marker not in the recording")

// markerTime resolves a marker; syntaxOnly checks its form without a
// recording.
func markerTime(rec *Recording, m string, syntaxOnly bool) (time.Time, error) {
	m = strings.TrimSpace(m)
	switch m {
	case "start":
		return rec.Lines[0].Time, nil
	case "end":
		return rec.Lines[len(rec.Lines)-1].Time, nil
	}
	last := false
	if rest, ok := strings.CutPrefix(m, "last "); ok {
		last, m = true, rest
	} else if rest, ok := strings.CutPrefix(m, "first "); ok {
		m = rest
		if strings.HasPrefix(m, "mark:") {
			return time.Time{}, fmt.Errorf("marker %q: write mark:NAME or last mark:NAME", "first "+m)
		}
	} else if !strings.HasPrefix(m, "mark:") {
		return time.Time{}, fmt.Errorf("marker %q: want start, end, mark:NAME, last mark:NAME, first TYPE or last TYPE", m)
	}
	var match func(l *Line) (time.Time, bool)
	if name, ok := strings.CutPrefix(m, "mark:"); ok {
		match = func(l *Line) (time.Time, bool) {
			for _, mk := range l.Marks {
				if mk == name {
					return l.Time, true
				}
			}
			return time.Time{}, false
		}
	} else {
		typ, err := events.ParseType(m)
		if err != nil {
			return time.Time{}, fmt.Errorf("marker %q: %w", m, err)
		}
		match = func(l *Line) (time.Time, bool) {
			var at time.Time
			found := false
			for _, e := range l.Events {
				if e.Type == typ.String() && (!found || last) {
					at, found = e.Time, true
				}
			}
			return at, found
		}
	}
	if syntaxOnly {
		return time.Time{}, errNoMarker
	}
	if last {
		for i := len(rec.Lines) - 1; i >= 0; i-- {
			if t, ok := match(&rec.Lines[i]); ok {
				return t, nil
			}
		}
	} else {
		for i := range rec.Lines {
			if t, ok := match(&rec.Lines[i]); ok {
				return t, nil
			}
		}
	}
	return time.Time{}, fmt.Errorf("%q: %w", m, errNoMarker)
}

// Failure is an assertion that did not hold.
type Failure struct {
	// Assertion is the assertion's name; Text its one-line form.
	Assertion string `json:"assertion"`
	Text      string `json:"text"`
	// Time is when it broke: the offending tick for never, the end of the
	// window for within.
	Time time.Time `json:"time"`
	// Offset is Time relative to the start of the recording.
	Offset time.Duration `json:"offset"`
	// Why says what happened instead.
	Why string `json:"why"`
	// Values are the Snapshot values at the tick named (Values()).
	Values string `json:"values,omitempty"`
}

// String formats the failure on one line.
func (f Failure) String() string {
	s := fmt.Sprintf("FAIL %q (%s) at +%s (%s): %s", f.Assertion, f.Text, f.Offset.Round(time.Millisecond), f.Time.UTC().Format(time.RFC3339Nano), f.Why)
	if f.Values != "" {
		s += "; " + f.Values
	}
	return s
}

// Check evaluates the assertions over a replay's timeline and returns
// those that failed, in the order given.
func Check(tl Timeline, as []*Assertion) []Failure {
	if len(tl.Ticks) == 0 {
		return nil
	}
	rec := &Recording{}
	for _, t := range tl.Ticks {
		if t.Line != nil {
			rec.Lines = append(rec.Lines, *t.Line)
		} else {
			rec.Lines = append(rec.Lines, Line{Time: t.Time})
		}
	}
	var out []Failure
	for _, a := range as {
		fail := Failure{Assertion: a.Name, Text: a.Text()}
		if a.Never != nil && *a.Never {
			for _, t := range tl.Ticks {
				if a.matches(t.Level) {
					fail.Time = t.Time
					fail.Why = fmt.Sprintf("level %s (target %s: %s)", t.Level, t.Target, reasonOr(t.Reason))
					fail.Values = tickValues(t)
					out = append(out, fail.at(tl.Start))
					break
				}
			}
			continue
		}
		mt, err := markerTime(rec, *a.Of, false)
		if err != nil {
			fail.Time = tl.Start
			fail.Why = err.Error()
			out = append(out, fail.at(tl.Start))
			continue
		}
		from, to := mt, mt.Add(a.window)
		if strings.TrimSpace(*a.Of) == "end" {
			from, to = mt.Add(-a.window), mt
		}
		var last *Tick
		ok := false
		for i := range tl.Ticks {
			t := &tl.Ticks[i]
			if t.Time.Before(from) || t.Time.After(to) {
				continue
			}
			last = t
			if a.matches(t.Level) {
				ok = true
				break
			}
		}
		if ok {
			continue
		}
		fail.Time = to
		switch {
		case last == nil:
			fail.Why = fmt.Sprintf("no tick between +%s and +%s", from.Sub(tl.Start), to.Sub(tl.Start))
		case to.After(tl.End):
			fail.Why = fmt.Sprintf("recording ends at +%s at level %s, before the window closes", tl.End.Sub(tl.Start), last.Level)
			fail.Values = tickValues(*last)
		default:
			fail.Why = fmt.Sprintf("level %s at the end of the window (target %s: %s)", last.Level, last.Target, reasonOr(last.Reason))
			fail.Values = tickValues(*last)
		}
		out = append(out, fail.at(tl.Start))
	}
	return out
}

func (f Failure) at(start time.Time) Failure {
	f.Offset = f.Time.Sub(start)
	return f
}

func reasonOr(r string) string {
	if r == "" {
		return "no level condition holds"
	}
	return r
}

// tickValues lists the Snapshot values policies read most.
func tickValues(t Tick) string {
	if t.Line == nil {
		return ""
	}
	return Values(&t.Line.Snapshot)
}
