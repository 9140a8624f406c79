package policy

import (
	"maps"

	"github.com/hashicorp/hcl/v2"
)

// Relocate returns a copy of p whose source ranges have been passed
// through fn, with Filename set to filename, and recompiled so that
// Decision reasons name the new locations.
//
// It is for layers that decode a policy assembled from several sources
// (core/config puts a preset, a policy file and environment variables into
// one text so that a single Decode validates them together): fn maps each
// range of the assembled text back to the file, or preset, its value came
// from. p itself is left unchanged; compiled conditions are shared, as
// they hold no positions.
func (p *Policy) Relocate(filename string, fn func(hcl.Range) hcl.Range) *Policy {
	q := &Policy{Filename: filename}
	q.Connection = p.Connection
	q.Connection.Intents = append([]string(nil), p.Connection.Intents...)
	q.Connection.Ranges = p.Connection.Ranges.relocate(fn)

	q.Health = p.Health
	q.Health.Ranges = p.Health.Ranges.relocate(fn)
	q.Health.Checks = make([]Check, len(p.Health.Checks))
	for i, c := range p.Health.Checks {
		c.Ranges = c.Ranges.relocate(fn)
		q.Health.Checks[i] = c
	}

	q.CircuitBreaker = p.CircuitBreaker
	q.CircuitBreaker.Ranges = p.CircuitBreaker.Ranges.relocate(fn)

	q.Degradation = p.Degradation
	q.Degradation.Ranges = p.Degradation.Ranges.relocate(fn)
	if t := p.Degradation.Thresholds; t != nil {
		tc := *t
		tc.Ranges = t.Ranges.relocate(fn)
		q.Degradation.Thresholds = &tc
	}
	q.Degradation.Levels = make([]LevelRule, len(p.Degradation.Levels))
	for i, l := range p.Degradation.Levels {
		l.When = l.When.relocate(fn)
		l.Actions = append([]string(nil), l.Actions...)
		l.Ranges = l.Ranges.relocate(fn)
		q.Degradation.Levels[i] = l
	}
	q.Degradation.Recover = p.Degradation.Recover.relocate(fn)

	if p.Recovery != nil {
		q.Recovery = make([]RecoveryRule, len(p.Recovery))
	}
	for i, r := range p.Recovery {
		r.When = r.When.relocate(fn)
		r.Ranges = r.Ranges.relocate(fn)
		q.Recovery[i] = r
	}
	if p.Plugins != nil {
		q.Plugins = make([]Plugin, len(p.Plugins))
	}
	for i, pl := range p.Plugins {
		pl.Ranges = pl.Ranges.relocate(fn)
		pl.Args = append([]string(nil), pl.Args...)
		q.Plugins[i] = pl
	}
	if c := p.Coordination; c != nil {
		cc := *c
		cc.Ranges = c.Ranges.relocate(fn)
		q.Coordination = &cc
	}
	q.compile()
	return q
}

func (r Ranges) relocate(fn func(hcl.Range) hcl.Range) Ranges {
	out := Ranges{Block: relocateRange(r.Block, fn)}
	if r.Attrs != nil {
		out.Attrs = maps.Clone(r.Attrs)
		for k, v := range out.Attrs {
			out.Attrs[k] = relocateRange(v, fn)
		}
	}
	return out
}

func (c Condition) relocate(fn func(hcl.Range) hcl.Range) Condition {
	c.Range = relocateRange(c.Range, fn)
	return c
}

// relocateRange leaves empty ranges (generated values, absent blocks)
// empty.
func relocateRange(r hcl.Range, fn func(hcl.Range) hcl.Range) hcl.Range {
	if r.Filename == "" && r.Start.Line == 0 {
		return r
	}
	return fn(r)
}
