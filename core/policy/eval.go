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
			prog:    l.When.prog,
			actions: append([]string(nil), acc...),
			reason:  fmt.Sprintf("level %q (%s): %s", l.Level.describe(), where, l.When.Expr),
		}
	}
	p.degradeGroups = p.Degradation.Recover.groups()
	for _, l := range p.Degradation.Levels {
		p.degradeGroups |= l.When.groups()
	}
	p.recoveryGroups = 0
	for _, r := range p.Recovery {
		p.recoveryGroups |= r.When.groups()
	}
	p.pool = &evalPool{}
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
type Evaluator struct {
	p   *Policy
	env Env
	vm  vm.VM
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
	e := p.evaluator()
	d := e.Evaluate(s)
	p.release(e)
	return d
}

// ChooseRecovery returns the recovery rules whose condition holds for the
// error err and the snapshot s, in priority order. A rule whose condition
// fails to evaluate is left out and its error returned (joined).
func (p *Policy) ChooseRecovery(err ErrorInfo, s *metrics.Snapshot) ([]RecoveryRule, error) {
	e := p.evaluator()
	out, evalErr := e.AppendRecovery(nil, err, s)
	p.release(e)
	return out, evalErr
}

// Evaluate is Policy.Evaluate with this Evaluator's state.
func (e *Evaluator) Evaluate(s *metrics.Snapshot) Decision {
	p := e.p
	if !p.Degradation.Enabled {
		return Decision{Recover: true, Reason: "degradation is disabled"}
	}
	e.env.fill(s, p.degradeGroups)
	d := Decision{Reason: "no level condition holds"}
	for l := Critical; l >= Minimal; l-- {
		cl := &p.levels[l]
		if !cl.present {
			continue
		}
		ok, err := e.run(cl.prog)
		if err != nil && d.Err == nil {
			d.Err = fmt.Errorf("policy: %s: %w", cl.reason, err)
		}
		if ok {
			d.Level, d.Actions, d.Reason = l, cl.actions, cl.reason
			break
		}
	}
	if rp := p.Degradation.Recover.prog; rp != nil {
		ok, err := e.run(rp)
		if err != nil && d.Err == nil {
			d.Err = fmt.Errorf("policy: recover condition %s: %w", p.Degradation.Recover.Expr, err)
		}
		d.Recover = ok
	}
	return d
}

// AppendRecovery appends to dst the rules ChooseRecovery would return.
func (e *Evaluator) AppendRecovery(dst []RecoveryRule, err ErrorInfo, s *metrics.Snapshot) ([]RecoveryRule, error) {
	e.env.fill(s, e.p.recoveryGroups)
	e.env.Error = err
	var errs []error
	for i := range e.p.Recovery {
		r := &e.p.Recovery[i]
		if r.When.prog == nil {
			dst = append(dst, *r)
			continue
		}
		ok, runErr := e.run(r.When.prog)
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

func (e *Evaluator) run(p *program) (bool, error) {
	if p.fast != nil {
		return p.fast(&e.env), nil
	}
	out, err := e.vm.Run(p.vm, &e.env)
	if err != nil {
		return false, err
	}
	b, _ := out.(bool)
	return b, nil
}
