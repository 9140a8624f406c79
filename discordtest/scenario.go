package discordtest

import (
	"context"
	"embed"
	"fmt"
	"io/fs"
	"os"
	"path"
	"sort"
	"strings"
	"time"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/gohcl"
	"github.com/hashicorp/hcl/v2/hclsyntax"
)

// Scenario is a scripted outage story: faults at time offsets.
type Scenario struct {
	Name        string
	Description string
	// File is the file name the scenario was parsed from.
	File  string
	Steps []Step
}

// Step is one fault at an offset from the start of the scenario.
type Step struct {
	// At is the offset in Discord time; Run divides it by the server's
	// Scale, as it does the fault's Duration, Delay and RetryAfter.
	At    time.Duration
	Fault Fault
	// Line is the step block's line in File.
	Line int
}

// Length returns when the scenario's last effect ends: the latest At plus
// Duration, in Discord time.
func (sc *Scenario) Length() time.Duration {
	var end time.Duration
	for _, st := range sc.Steps {
		if e := st.At + st.Fault.Duration; e > end {
			end = e
		}
	}
	return end
}

// ScenarioError lists everything wrong with a scenario file; each
// diagnostic has the file, line, column and reason. It wraps
// ErrInvalidScenario.
type ScenarioError struct {
	Diagnostics hcl.Diagnostics
}

// Error returns one line per diagnostic: "file:line,col: summary; detail".
func (e *ScenarioError) Error() string {
	lines := make([]string, 0, len(e.Diagnostics))
	for _, d := range e.Diagnostics {
		loc := "scenario"
		if d.Subject != nil {
			loc = fmt.Sprintf("%s:%d,%d", d.Subject.Filename, d.Subject.Start.Line, d.Subject.Start.Column)
		}
		msg := loc + ": " + d.Summary
		if d.Detail != "" {
			msg += "; " + d.Detail
		}
		lines = append(lines, msg)
	}
	return "invalid scenario: " + strings.Join(lines, "\n")
}

// Unwrap returns ErrInvalidScenario.
func (e *ScenarioError) Unwrap() error { return ErrInvalidScenario }

var fileSchema = &hcl.BodySchema{
	Attributes: []hcl.AttributeSchema{{Name: "name"}, {Name: "description"}},
	Blocks:     []hcl.BlockHeaderSchema{{Type: "step", LabelNames: []string{"fault"}}},
}

var stepSchema = &hcl.BodySchema{
	Attributes: []hcl.AttributeSchema{
		{Name: "at", Required: true},
		{Name: "duration"}, {Name: "delay"}, {Name: "retry_after"},
		{Name: "shards"}, {Name: "code"}, {Name: "resumable"}, {Name: "rate"},
		{Name: "status"}, {Name: "global"}, {Name: "mode"}, {Name: "count"},
	},
}

// ParseScenario parses scenario source; filename names it in errors. A
// malformed file returns a *ScenarioError listing every problem.
func ParseScenario(filename string, src []byte) (*Scenario, error) {
	file, diags := hclsyntax.ParseConfig(src, filename, hcl.InitialPos)
	if diags.HasErrors() {
		return nil, &ScenarioError{Diagnostics: diags}
	}
	content, d := file.Body.Content(fileSchema)
	diags = append(diags, d...)
	sc := &Scenario{File: filename}
	if a, ok := content.Attributes["name"]; ok {
		diags = append(diags, gohcl.DecodeExpression(a.Expr, nil, &sc.Name)...)
	}
	if a, ok := content.Attributes["description"]; ok {
		diags = append(diags, gohcl.DecodeExpression(a.Expr, nil, &sc.Description)...)
	}
	for _, b := range content.Blocks {
		st, d := parseStep(b)
		diags = append(diags, d...)
		if !d.HasErrors() {
			sc.Steps = append(sc.Steps, st)
		}
	}
	if len(content.Blocks) == 0 && !diags.HasErrors() {
		rng := file.Body.(*hclsyntax.Body).SrcRange
		diags = append(diags, &hcl.Diagnostic{
			Severity: hcl.DiagError, Summary: "No steps",
			Detail:  `A scenario needs at least one step block, such as step "drop" { at = "10s" }.`,
			Subject: &rng,
		})
	}
	if diags.HasErrors() {
		return nil, &ScenarioError{Diagnostics: diags}
	}
	sort.SliceStable(sc.Steps, func(i, j int) bool { return sc.Steps[i].At < sc.Steps[j].At })
	return sc, nil
}

func parseStep(b *hcl.Block) (Step, hcl.Diagnostics) {
	st := Step{Line: b.DefRange.Start.Line, Fault: Fault{Kind: FaultKind(b.Labels[0])}}
	content, diags := b.Body.Content(stepSchema)
	if _, ok := faultParams[st.Fault.Kind]; !ok {
		kinds := make([]string, 0, len(faultParams))
		for _, k := range FaultKinds() {
			kinds = append(kinds, string(k))
		}
		rng := b.LabelRanges[0]
		diags = append(diags, &hcl.Diagnostic{
			Severity: hcl.DiagError, Summary: "Unknown fault",
			Detail:  fmt.Sprintf("%q is not a fault kind; known kinds: %s.", b.Labels[0], strings.Join(kinds, ", ")),
			Subject: &rng,
		})
		return st, diags
	}
	if diags.HasErrors() {
		return st, diags
	}
	f := &st.Fault
	dur := func(name string, dst *time.Duration) {
		a, ok := content.Attributes[name]
		if !ok {
			return
		}
		var s string
		if d := gohcl.DecodeExpression(a.Expr, nil, &s); d.HasErrors() {
			diags = append(diags, d...)
			return
		}
		v, err := time.ParseDuration(s)
		if err == nil && v < 0 {
			err = fmt.Errorf("it is negative")
		}
		if err != nil {
			rng := a.Expr.Range()
			diags = append(diags, &hcl.Diagnostic{
				Severity: hcl.DiagError, Summary: "Invalid duration",
				Detail:  fmt.Sprintf("%s = %q is not a duration such as \"90s\" or \"1m30s\": %v.", name, s, err),
				Subject: &rng,
			})
			return
		}
		*dst = v
	}
	decode := func(name string, dst any) {
		if a, ok := content.Attributes[name]; ok {
			diags = append(diags, gohcl.DecodeExpression(a.Expr, nil, dst)...)
		}
	}
	dur("at", &st.At)
	dur("duration", &f.Duration)
	dur("delay", &f.Delay)
	dur("retry_after", &f.RetryAfter)
	decode("shards", &f.Shards)
	decode("code", &f.Code)
	decode("resumable", &f.Resumable)
	decode("rate", &f.Rate)
	decode("status", &f.Status)
	decode("global", &f.Global)
	decode("count", &f.Count)
	var mode string
	decode("mode", &mode)
	f.Mode = OutageMode(mode)
	if _, ok := content.Attributes["shards"]; ok && f.Shards == nil && !diags.HasErrors() {
		f.Shards = []int{} // an explicit empty list: no shard at all
	}
	if diags.HasErrors() {
		return st, diags
	}
	if err := f.Validate(); err != nil {
		rng := b.DefRange
		diags = append(diags, &hcl.Diagnostic{
			Severity: hcl.DiagError, Summary: "Invalid step",
			Detail:  strings.TrimSuffix(err.Error(), ": "+ErrInvalidFault.Error()) + ".",
			Subject: &rng,
		})
	}
	return st, diags
}

// LoadScenario reads and parses a scenario file.
func LoadScenario(filename string) (*Scenario, error) {
	src, err := os.ReadFile(filename)
	if err != nil {
		return nil, fmt.Errorf("discordtest: load scenario: %w", err)
	}
	return ParseScenario(filename, src)
}

//go:embed scenarios/*.hcl
var builtinScenarios embed.FS

// Scenarios returns the names of the scenarios shipped under scenarios/,
// sorted.
func Scenarios() []string {
	entries, _ := fs.ReadDir(builtinScenarios, "scenarios")
	var out []string
	for _, e := range entries {
		if name, ok := strings.CutSuffix(e.Name(), ".hcl"); ok {
			out = append(out, name)
		}
	}
	sort.Strings(out)
	return out
}

// BuiltinScenario parses a shipped scenario by name (see Scenarios).
func BuiltinScenario(name string) (*Scenario, error) {
	p := path.Join("scenarios", name+".hcl")
	src, err := builtinScenarios.ReadFile(p)
	if err != nil {
		return nil, fmt.Errorf("discordtest: no built-in scenario %q (have %s): %w",
			name, strings.Join(Scenarios(), ", "), fs.ErrNotExist)
	}
	return ParseScenario(p, src)
}

// scaleDuration divides d by scale, keeping a positive d positive.
func scaleDuration(d time.Duration, scale float64) time.Duration {
	if d <= 0 || scale == 1 {
		return d
	}
	s := time.Duration(float64(d) / scale)
	if s < 1 {
		s = 1
	}
	return s
}

// Run plays the scenario against srv: each step's fault is injected at
// its offset (divided by srv.Scale()) on srv's clock, then onStep (if not
// nil) is called with the step. Run returns once the last step is
// injected, when ctx ends (ctx.Err()), or when srv closes (ErrClosed).
func (sc *Scenario) Run(ctx context.Context, srv *Server, onStep func(Step)) error {
	start := srv.clk.Now()
	scale := srv.Scale()
	for i, st := range sc.Steps {
		due := start.Add(scaleDuration(st.At, scale))
		if wait := due.Sub(srv.clk.Now()); wait > 0 {
			t := srv.clk.NewTimer(wait)
			select {
			case <-t.C():
			case <-ctx.Done():
				t.Stop()
				return ctx.Err()
			case <-srv.done:
				t.Stop()
				return fmt.Errorf("discordtest: scenario %s: %w", sc.Name, ErrClosed)
			}
		}
		f := st.Fault
		f.Duration = scaleDuration(f.Duration, scale)
		f.Delay = scaleDuration(f.Delay, scale)
		f.RetryAfter = scaleDuration(f.RetryAfter, scale)
		if err := srv.Inject(f); err != nil {
			return fmt.Errorf("discordtest: scenario %s step %d (%s:%d): %w", sc.Name, i+1, sc.File, st.Line, err)
		}
		if onStep != nil {
			onStep(st)
		}
	}
	return nil
}
