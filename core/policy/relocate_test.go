package policy

import (
	"bytes"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/hcl/v2"
	"github.com/lifeline-bot/lifeline/core/metrics"
)

func TestRelocate(t *testing.T) {
	src, err := os.ReadFile("testdata/valid/full.hcl")
	if err != nil {
		t.Fatal(err)
	}
	p, diags := Decode("full.hcl", src, testOptions())
	if diags.HasErrors() {
		t.Fatal(diags)
	}
	before := policyJSON(t, p, false)
	shift := func(r hcl.Range) hcl.Range {
		r.Filename = "moved.hcl"
		r.Start.Line += 100
		r.End.Line += 100
		return r
	}
	q := p.Relocate("moved.hcl", shift)

	if got := policyJSON(t, p, false); !bytes.Equal(got, before) {
		t.Error("Relocate changed the original policy")
	}
	if a, b := policyJSON(t, p, true), policyJSON(t, q, true); !bytes.Equal(a, b) {
		t.Errorf("Relocate changed values:\n%s\n---\n%s", a, b)
	}
	if q.Filename != "moved.hcl" {
		t.Errorf("Filename = %q", q.Filename)
	}
	checkRanges := func(name string, a, b Ranges) {
		t.Helper()
		if a.Block.Start.Line != 0 && (b.Block.Start.Line != a.Block.Start.Line+100 || b.Block.Filename != "moved.hcl") {
			t.Errorf("%s block range %v -> %v", name, a.Block, b.Block)
		}
		if a.Block.Start.Line == 0 && b.Block.Start.Line != 0 {
			t.Errorf("%s: empty block range became %v", name, b.Block)
		}
		for k, r := range a.Attrs {
			if b.Attrs[k].Start.Line != r.Start.Line+100 {
				t.Errorf("%s.%s range %v -> %v", name, k, r, b.Attrs[k])
			}
		}
	}
	checkRanges("connection", p.Connection.Ranges, q.Connection.Ranges)
	checkRanges("health", p.Health.Ranges, q.Health.Ranges)
	checkRanges("circuit_breaker", p.CircuitBreaker.Ranges, q.CircuitBreaker.Ranges)
	checkRanges("degradation", p.Degradation.Ranges, q.Degradation.Ranges)
	for i := range p.Recovery {
		checkRanges("recovery "+p.Recovery[i].Name, p.Recovery[i].Ranges, q.Recovery[i].Ranges)
	}
	if len(p.Plugins) == 0 || len(p.Degradation.Levels) == 0 {
		t.Fatal("full.hcl should declare plugins and levels")
	}
	for i := range p.Plugins {
		checkRanges("plugin "+p.Plugins[i].Name, p.Plugins[i].Ranges, q.Plugins[i].Ranges)
	}

	// Decision reasons name the new place.
	var s metrics.Snapshot
	s.Errors.Rate = 1
	s.Errors.Consecutive = 1000
	s.Latency.Heartbeat = time.Hour
	d := q.Evaluate(&s)
	if d.Level == None {
		t.Fatalf("no level for a terrible snapshot: %+v", d)
	}
	if want := fmt.Sprintf("(moved.hcl:%d)", 100+levelLine(p, d.Level)); !strings.Contains(d.Reason, want) {
		t.Errorf("reason %q does not name the relocated line %s", d.Reason, want)
	}
	if orig := p.Evaluate(&s); orig.Level != d.Level || strings.Contains(orig.Reason, "moved.hcl") {
		t.Errorf("original evaluates to %+v, relocated to %+v", orig, d)
	}
}

func levelLine(p *Policy, l Level) int {
	for _, r := range p.Degradation.Levels {
		if r.Level == l {
			return r.When.Range.Start.Line
		}
	}
	return -1
}
