package policy

import (
	"errors"
	"fmt"
	"sync"

	"github.com/expr-lang/expr/vm"
	"github.com/lifeline-bot/lifeline/core/metrics"
)

// Decision is what the policy wants for one Snapshot. The degradation
// engine acts on it; the policy itself changes nothing.
type Decision struct {
	// Level is the most severe level whose condition holds; None when no
	// level condition holds or degradation is disabled.
	Level Level
	// Actions are the actions of every declared level up to and including
	// Level, in the order they are applied. The slice is shared by every
	// Decision of the same policy: do not modify it.
	Actions []string
	// Recover reports whether the recover condition holds (always true
	// when degradation is disabled). The engine steps a level down only
	// after it has held for RecoveryDelay.
	Recover bool
	// Reason names the condition that chose Level, with its location.
	Reason string
	// Err is the first error met while evaluating (the condition that
	// failed counted as false); nil normally.
	Err error
}

type compiledLevel struct {
	present bool
	flat    flatCond // prog.flat, copied here so Evaluate reads it directly
	prog    *program
	actions []string
	reason  string
}

type evalPool struct{ pool sync.Pool }

// compile prepares the evaluation tables. Decode calls it once.
func (p *Policy) compile() {
	var acc []string
	for i := range p.levels {
		p.levels[i] = compiledLevel{}
	}
	for _, l := range p.Degradation.Levels {
		acc = append(acc, l.Actions...)
		where := "thresholds"
		if !l.Generated && l.When.Range.Filename != "" {
			where = fmt.Sprintf("%s:%d", l.When.Range.Filename, l.When.Range.Start.Line)
		}
		p.levels[l.Level] = compiledLevel{
			present: l.When.prog != nil,
			flat:    l.When.flat(),
			prog:    l.When.prog,
			actions: append([]string(nil), acc...),
			reason:  fmt.Sprintf("level %q (%s): %s", l.Level.describe(), where, l.When.Expr),
		}
	}
	p.recoverFlat = p.Degradation.Recover.flat()
	p.degradeGroups = p.Degradation.Recover.groups()
	for _, l := range p.Degradation.Levels {
		p.degradeGroups |= l.When.groups()
	}
	p.recoveryGroups = 0
	for _, r := range p.Recovery {
		p.recoveryGroups |= r.When.groups()
	}
	p.nativeDegrade = p.Degradation.Recover.native()
	for _, l := range p.Degradation.Levels {
		p.nativeDegrade = p.nativeDegrade && l.When.native()
	}
	p.allFlat = p.Degradation.Enabled && (p.Degradation.Recover.prog == nil || p.recoverFlat.ok)
	for l := range p.levels {
		p.allFlat = p.allFlat && (!p.levels[l].present || p.levels[l].flat.ok)
	}
	// The ladder: every declared level's condition implies the one of the
	// level below it.
	p.ladder = p.allFlat
	var below *program
	for l := Minimal; l <= Critical; l++ {
		if !p.levels[l].present {
			continue
		}
		if below != nil && !implies(p.levels[l].prog.native, below.native) {
			p.ladder = false
		}
		below = p.levels[l].prog
	}
	p.nativeRecovery = true
	for _, r := range p.Recovery {
		p.nativeRecovery = p.nativeRecovery && r.When.native()
	}
	p.pool = &evalPool{}
}

// native reports whether the condition needs no VM: it is unset or has a
// native form.
func (c Condition) native() bool { return c.prog == nil || c.prog.native != nil }

func (c Condition) flat() flatCond {
	if c.prog == nil {
		return flatCond{}
	}
	return c.prog.flat
}

func (c Condition) groups() group {
	if c.prog == nil {
		return 0
	}
	return c.prog.groups
}

// Evaluator evaluates one Policy with reusable state, so evaluation does
// not allocate. An Evaluator is not safe for concurrent use; Policy's own
// methods draw Evaluators from a pool and are.
//
// Conditions with a native form (native.go) read the Snapshot directly;
// the Env is filled, once per evaluation and only with the sections the
// policy's conditions read, when a condition needs expr's VM.
type Evaluator struct {
	p      *Policy
	env    Env
	filled bool // env holds the snapshot of the evaluation under way
	vm     vm.VM
}

// NewEvaluator returns an Evaluator for p.
func (p *Policy) NewEvaluator() *Evaluator { return &Evaluator{p: p} }

func (p *Policy) evaluator() *Evaluator {
	if p.pool == nil {
		return p.NewEvaluator()
	}
	if e, ok := p.pool.pool.Get().(*Evaluator); ok {
		return e
	}
	return p.NewEvaluator()
}

func (p *Policy) release(e *Evaluator) {
	if p.pool != nil {
		e.env.Error = ErrorInfo{}
		p.pool.pool.Put(e)
	}
}

// Evaluate decides the degradation level for s. It is safe for concurrent
// use and does not allocate.
func (p *Policy) Evaluate(s *metrics.Snapshot) Decision {
	// One call, so that Evaluate inlines and the Decision is not copied
	// once more on its way out.
	return p.decide(nil, s)
}

// ChooseRecovery returns the recovery rules whose condition holds for the
// error err and the snapshot s, in priority order. A rule whose condition
// fails to evaluate is left out and its error returned (joined).
func (p *Policy) ChooseRecovery(err ErrorInfo, s *metrics.Snapshot) ([]RecoveryRule, error) {
	return p.appendRecovery(nil, nil, err, s)
}

// Evaluate is Policy.Evaluate with this Evaluator's state.
func (e *Evaluator) Evaluate(s *metrics.Snapshot) Decision { return e.p.decide(e, s) }

// noLevel is the Reason of a Decision when no level condition holds.
const noLevel = "no level condition holds"

// decide is Evaluate. When every degradation condition is a flatCond (as
// in the default policy and the thresholds shorthand) it runs them
// straight from the Policy, else decideTree does the work.
//
// The level is the most severe whose condition holds. Conditions are
// tried from the most severe down, the first that holds deciding; but
// when the levels form a ladder (each level's condition implies the one
// below it, as when each level raises the thresholds of the one before,
// proven when the policy loads) they are tried from the least severe up
// until one fails, since none above it can hold then: a healthy snapshot
// costs one level's condition instead of all of them.
func (p *Policy) decide(e *Evaluator, s *metrics.Snapshot) Decision {
	if !p.allFlat {
		return p.decideTree(e, s)
	}
	level := None
	if p.ladder {
		for l := Minimal; l <= Critical; l++ {
			if f := &p.levels[l].flat; f.ok {
				if !f.eval(s) {
					break
				}
				level = l
			}
		}
	} else {
		for l := Critical; l >= Minimal; l-- {
			if f := &p.levels[l].flat; f.ok && f.eval(s) {
				level = l
				break
			}
		}
	}
	recover := p.recoverFlat.ok && p.recoverFlat.eval(s)
	if level == None {
		return Decision{Recover: recover, Reason: noLevel}
	}
	cl := &p.levels[level]
	return Decision{Level: level, Actions: cl.actions, Recover: recover, Reason: cl.reason}
}

// decideTree is decide for any policy. With e nil it evaluates natively,
// or with a pooled Evaluator when some condition needs expr's VM.
func (p *Policy) decideTree(e *Evaluator, s *metrics.Snapshot) Decision {
	if !p.Degradation.Enabled {
		return Decision{Recover: true, Reason: "degradation is disabled"}
	}
	pooled := e == nil && !p.nativeDegrade
	if pooled {
		e = p.evaluator()
	}
	if e != nil {
		e.filled = false
	}
	d := Decision{Reason: noLevel}
	for l := Critical; l >= Minimal; l-- {
		cl := &p.levels[l]
		var ok bool
		if cl.flat.ok {
			ok = cl.flat.eval(s) // the usual level condition: a || b || c of range leaves
		} else if !cl.present {
			continue
		} else if n := cl.prog.native; n != nil {
			ok = n.evalBool(s, nil)
		} else {
			var err error
			ok, err = e.runVM(cl.prog, s, nil, p.degradeGroups)
			if err != nil && d.Err == nil {
				d.Err = fmt.Errorf("policy: %s: %w", cl.reason, err)
			}
		}
		if ok {
			d.Level, d.Actions, d.Reason = l, cl.actions, cl.reason
			break
		}
	}
	if rp := p.Degradation.Recover.prog; p.recoverFlat.ok {
		d.Recover = p.recoverFlat.eval(s)
	} else if rp != nil && rp.native != nil {
		d.Recover = rp.native.evalBool(s, nil)
	} else if rp != nil {
		ok, err := e.runVM(rp, s, nil, p.degradeGroups)
		if err != nil && d.Err == nil {
			d.Err = fmt.Errorf("policy: recover condition %s: %w", p.Degradation.Recover.Expr, err)
		}
		d.Recover = ok
	}
	if pooled {
		p.release(e)
	}
	return d
}

// AppendRecovery appends to dst the rules ChooseRecovery would return.
func (e *Evaluator) AppendRecovery(dst []RecoveryRule, err ErrorInfo, s *metrics.Snapshot) ([]RecoveryRule, error) {
	return e.p.appendRecovery(e, dst, err, s)
}

// appendRecovery is AppendRecovery. With e nil it evaluates natively, or
// with a pooled Evaluator when some condition needs expr's VM.
func (p *Policy) appendRecovery(e *Evaluator, dst []RecoveryRule, err ErrorInfo, s *metrics.Snapshot) ([]RecoveryRule, error) {
	if e == nil && !p.nativeRecovery {
		e = p.evaluator()
		defer p.release(e)
	}
	if e != nil {
		e.filled = false
	}
	var errs []error
	for i := range p.Recovery {
		r := &p.Recovery[i]
		if r.When.prog == nil {
			dst = append(dst, *r)
			continue
		}
		ok, runErr := e.run(r.When.prog, s, &err, p.recoveryGroups)
		if runErr != nil {
			errs = append(errs, fmt.Errorf("policy: recovery %q: %w", r.Name, runErr))
			continue
		}
		if ok {
			dst = append(dst, *r)
		}
	}
	return dst, errors.Join(errs...)
}

// run evaluates one condition: natively when it can (e may then be nil),
// else on expr's VM over e's Env. info is the error of a recovery rule,
// nil for degradation conditions.
func (e *Evaluator) run(p *program, s *metrics.Snapshot, info *ErrorInfo, groups group) (bool, error) {
	if p.native != nil {
		return p.native.evalBool(s, info), nil
	}
	return e.runVM(p, s, info, groups)
}

func (e *Evaluator) runVM(p *program, s *metrics.Snapshot, info *ErrorInfo, groups group) (bool, error) {
	if !e.filled {
		e.env.fill(s, groups)
		if info != nil {
			e.env.Error = *info
		}
		e.filled = true
	}
	out, err := e.vm.Run(p.vm, &e.env)
	if err != nil {
		return false, err
	}
	b, _ := out.(bool)
	return b, nil
}
