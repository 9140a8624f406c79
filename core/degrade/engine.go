package degrade

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/lifeline-bot/lifeline/core/clock"
	"github.com/lifeline-bot/lifeline/core/events"
	"github.com/lifeline-bot/lifeline/core/metrics"
	"github.com/lifeline-bot/lifeline/core/policy"
)

// Defaults used for zero fields of Settings.
const (
	DefaultHistorySize      = 64
	DefaultRetryInterval    = 5 * time.Second
	DefaultMaxRetryInterval = time.Minute
)

// Settings configures an Engine. The zero value is valid: every zero field
// takes the default its comment states.
type Settings struct {
	// Clock times hysteresis, retries and history. Default: clock.Real.
	Clock clock.Clock
	// Events receives DEGRADATION_ACTIVATED, DEGRADATION_DEACTIVATED and,
	// for each failed apply or rollback, ERROR_OCCURRED (source
	// "degrade"). Default: events.Discard.
	Events events.Publisher
	// Logger gets a line per level change (WARN going up, INFO going
	// down) and per failed action (WARN). Default: a null logger.
	Logger hclog.Logger
	// Policy returns the policy in force, for EvaluateDegradation, Tick
	// and Activate without an action list (a policy.Watcher's Policy
	// method fits). Default: policy.Default().
	Policy func() *policy.Policy
	// Actions are registered at once, as by Register. Default: none.
	Actions []Action
	// HistorySize bounds the history of levels reached. Default:
	// DefaultHistorySize (64).
	HistorySize int
	// RetryInterval is the wait before the first retry of a failed apply
	// or rollback; it doubles after each further failure of the same
	// action, up to MaxRetryInterval. Default: DefaultRetryInterval (5s).
	RetryInterval time.Duration
	// MaxRetryInterval caps the wait between retries. Default:
	// DefaultMaxRetryInterval (1m), or RetryInterval when that is longer.
	MaxRetryInterval time.Duration
}

// Engine moves a bot between degradation levels by applying and rolling
// back actions. It runs no goroutine: the caller drives it with Apply (or
// ApplyDecision, or Tick) once per tick, and with Activate and Deactivate
// for manual control. All methods are safe for concurrent use; the calls
// that run actions are serialised, and the read-only methods (Level, View,
// Diagnostics, History) never wait for an action to finish.
type Engine struct {
	clock     clock.Clock
	events    events.Publisher
	log       hclog.Logger
	policy    func() *policy.Policy
	histSize  int
	retry     time.Duration
	maxRetry  time.Duration
	opMu      sync.Mutex // serialises the calls that run actions
	planCache struct {   // PlanOf the last policy seen by ApplyDecision; under opMu
		policy *policy.Policy
		plan   Plan
	}

	mu           sync.Mutex // guards everything below
	registry     map[string]Action
	layers       []*layer // sorted by level; leaving layers first on ties
	states       map[string]*actionState
	seq          uint64
	level        Level
	since        time.Time
	held         bool
	heldReason   string
	recoverSince time.Time
	last         Target // last Target Apply received
	lastPlan     Plan
	history      []Record
}

// layer is one level the engine has entered (or is leaving), with the
// actions entering it named.
type layer struct {
	level   Level
	actions []string
	reason  string
	manual  bool
	leaving bool
	// leaveReason says why the layer is being left.
	leaveReason string
}

// actionState is what the engine knows about one action it applied or
// tried to.
type actionState struct {
	applied bool
	level   Level     // level it was (or is to be) applied for
	seq     uint64    // application order, for rollback in reverse
	since   time.Time // when it was applied
	manual  bool
	// The failure of the last attempt, if it failed.
	failOp   Op
	attempts int
	next     time.Time // earliest retry
	err      error
}

// New returns an Engine at level None. It fails when Settings.Actions has a
// nil or unnamed action (ErrInvalidAction) or two with one name
// (ErrDuplicateAction).
func New(s Settings) (*Engine, error) {
	e := &Engine{
		clock:    clock.Or(s.Clock),
		events:   events.OrDiscard(s.Events),
		log:      s.Logger,
		policy:   s.Policy,
		histSize: s.HistorySize,
		retry:    s.RetryInterval,
		maxRetry: s.MaxRetryInterval,
		registry: map[string]Action{},
		states:   map[string]*actionState{},
	}
	if e.log == nil {
		e.log = hclog.NewNullLogger()
	}
	if e.policy == nil {
		def := policy.Default()
		e.policy = func() *policy.Policy { return def }
	}
	if e.histSize <= 0 {
		e.histSize = DefaultHistorySize
	}
	if e.retry <= 0 {
		e.retry = DefaultRetryInterval
	}
	if e.maxRetry <= 0 {
		e.maxRetry = DefaultMaxRetryInterval
	}
	e.maxRetry = max(e.maxRetry, e.retry)
	e.since = e.clock.Now()
	if err := e.Register(s.Actions...); err != nil {
		return nil, err
	}
	return e, nil
}

// Register adds actions the policy can name. It fails, registering none of
// them, on a nil or unnamed action (ErrInvalidAction) or a name already
// taken (ErrDuplicateAction). A level that named an action before it was
// registered picks it up at its next retry.
func (e *Engine) Register(actions ...Action) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	seen := map[string]bool{}
	for _, a := range actions {
		if a == nil || a.Name() == "" {
			return fmt.Errorf("degrade: register: %w", ErrInvalidAction)
		}
		n := a.Name()
		if _, ok := e.registry[n]; ok || seen[n] {
			return fmt.Errorf("degrade: register %q: %w", n, ErrDuplicateAction)
		}
		seen[n] = true
	}
	for _, a := range actions {
		e.registry[a.Name()] = a
	}
	return nil
}

// Result says what one call of Apply, ApplyDecision, Tick, Activate,
// Deactivate or Retry did.
type Result struct {
	// From and Level are the engine's level before and after the call.
	From, Level Level
	// Target is the level the engine is heading for: the highest level it
	// has entered and is not leaving.
	Target Level
	// Applied and RolledBack name the actions that succeeded in this call,
	// in the order they ran.
	Applied, RolledBack []string
	// Failures are the applies and rollbacks that failed in this call;
	// each will be retried.
	Failures []*ActionError
	// Held is true when a manual activation kept the policy's Target from
	// moving the level.
	Held bool
	// Err joins the Failures, and the context's error when the call
	// stopped early because ctx was done; nil when everything ran.
	Err error
}

// Apply moves the engine toward t, then runs due retries. Going up is
// immediate: every level up to t.Level is entered and its actions applied,
// least severe first. Going down waits until t.Recover has held, with
// t.Level below the current level, for t.RecoveryDelay; then one level is
// left, its actions rolled back in the reverse of the order they were
// applied, and the wait starts again for the next level. While a manual
// activation holds, t is recorded but not followed.
func (e *Engine) Apply(ctx context.Context, t Target) Result {
	e.opMu.Lock()
	defer e.opMu.Unlock()
	return e.applyLocked(ctx, t)
}

// ApplyDecision is Apply for a policy's Decision: the ladder and
// recovery_delay come from p (whose Plan is computed once per policy).
func (e *Engine) ApplyDecision(ctx context.Context, p *policy.Policy, d policy.Decision) Result {
	e.opMu.Lock()
	defer e.opMu.Unlock()
	if e.planCache.policy != p || p == nil {
		e.planCache.policy, e.planCache.plan = p, PlanOf(p)
	}
	t := Target{Level: d.Level, Plan: e.planCache.plan, Recover: d.Recover, Reason: d.Reason}
	if p != nil {
		t.RecoveryDelay = p.Degradation.RecoveryDelay
	}
	return e.applyLocked(ctx, t)
}

// Tick evaluates Settings.Policy against s and applies the Decision.
func (e *Engine) Tick(ctx context.Context, s *metrics.Snapshot) Result {
	p := e.policy()
	return e.ApplyDecision(ctx, p, p.Evaluate(s))
}

// EvaluateDegradation reports what Settings.Policy says about s, without
// acting on it. It does not consider a manual activation: Diagnostics says
// whether one holds.
func (e *Engine) EvaluateDegradation(s *metrics.Snapshot) Evaluation {
	d := e.policy().Evaluate(s)
	return Evaluation{
		ShouldDegrade: d.Level > None,
		Level:         d.Level,
		Actions:       slices.Clone(d.Actions),
		Reason:        d.Reason,
		Recover:       d.Recover,
		Err:           d.Err,
	}
}

func (e *Engine) applyLocked(ctx context.Context, t Target) Result {
	now := e.clock.Now()
	e.mu.Lock()
	start := e.level
	e.last = t
	if t.Plan != nil {
		e.lastPlan = t.Plan
	}
	held := e.held
	c := call{start: start}
	if !held {
		c.upReason, c.downReason = e.steer(t, now)
	}
	e.mu.Unlock()
	res := e.reconcile(ctx, c)
	res.Held = held
	return res
}

// steer changes the wanted layers for a policy Target and returns the
// reason of a climb or of a step down ("" for none). e.mu is held.
func (e *Engine) steer(t Target, now time.Time) (up, down string) {
	top := e.topLevel()
	switch {
	case t.Level > top:
		e.raise(t.Level, t.Plan, t.Reason, false)
		e.recoverSince = time.Time{}
		return t.Reason, ""
	case t.Level < top && t.Recover:
		if e.recoverSince.IsZero() {
			e.recoverSince = now
		}
		delay := max(t.RecoveryDelay, 0)
		if !e.anyLeaving() && now.Sub(e.recoverSince) >= delay {
			reason := fmt.Sprintf("recover condition held for %s (policy wants %s)", delay, t.Level)
			e.stepDown(reason)
			e.recoverSince = now
			return "", reason
		}
	default:
		// Either the policy still wants this level (or more), or the
		// recover condition does not hold: the wait starts over.
		e.recoverSince = time.Time{}
	}
	return "", ""
}

// topLevel is the highest level entered and not being left. e.mu is held.
func (e *Engine) topLevel() Level {
	top := None
	for _, l := range e.layers {
		if !l.leaving && l.level > top {
			top = l.level
		}
	}
	return top
}

func (e *Engine) anyLeaving() bool {
	for _, l := range e.layers {
		if l.leaving {
			return true
		}
	}
	return false
}

// raise enters every level of plan up to level that is not entered yet,
// and re-enters levels up to level that are being left. e.mu is held.
func (e *Engine) raise(level Level, plan Plan, reason string, manual bool) {
	for _, l := range e.layers {
		if l.leaving && l.level <= level {
			l.leaving, l.leaveReason = false, ""
			l.reason, l.manual = reason, manual
		}
	}
	top := e.topLevel()
	steps := slices.Clone(plan)
	sort.SliceStable(steps, func(i, j int) bool { return steps[i].Level < steps[j].Level })
	for _, s := range steps {
		if s.Level > top && s.Level <= level {
			e.layers = append(e.layers, &layer{level: s.Level, actions: dedupe(s.Actions), reason: reason, manual: manual})
		}
	}
	if level > None && e.topLevel() < level {
		e.layers = append(e.layers, &layer{level: level, reason: reason, manual: manual})
	}
	e.sortLayers()
}

// stepDown starts leaving the highest entered level. e.mu is held.
func (e *Engine) stepDown(reason string) {
	top := e.topLevel()
	if top == None {
		return
	}
	for _, l := range e.layers {
		if !l.leaving && l.level == top {
			l.leaving, l.leaveReason = true, reason
		}
	}
}

func (e *Engine) sortLayers() {
	sort.SliceStable(e.layers, func(i, j int) bool {
		a, b := e.layers[i], e.layers[j]
		if a.level != b.level {
			return a.level < b.level
		}
		return a.leaving && !b.leaving
	})
}

func dedupe(names []string) []string {
	out := make([]string, 0, len(names))
	for _, n := range names {
		if !slices.Contains(out, n) {
			out = append(out, n)
		}
	}
	return out
}

// Activate puts the engine under manual control at level: levels above it
// are left at once (rolled back, most recent action first), and level is
// entered with actions, or with the policy's ladder up to level when
// actions is nil. A non-nil actions list replaces whatever the entered
// level had; an empty one enters the level with no action. The hold
// lasts until Deactivate: meanwhile Apply records the policy's Target but
// does not follow it (failed actions are still retried). Activate(None, nil,
// reason) holds the engine at None.
//
// It fails without changing anything for a level outside None..Critical
// (ErrUnknownLevel), actions at None (ErrNoneWithActions) or an action no
// one registered (ErrUnknownAction). Otherwise it publishes
// DEGRADATION_ACTIVATED (Manual set) even when the level does not change,
// and returns the Result, whose Err reports actions that failed and will
// be retried.
func (e *Engine) Activate(ctx context.Context, level Level, actions []string, reason string) (Result, error) {
	if !validLevel(level) {
		return Result{}, fmt.Errorf("degrade: activate level %d: %w", uint8(level), ErrUnknownLevel)
	}
	if level == None && len(actions) > 0 {
		return Result{}, fmt.Errorf("degrade: activate %v: %w", actions, ErrNoneWithActions)
	}
	e.opMu.Lock()
	defer e.opMu.Unlock()
	e.mu.Lock()
	for _, n := range actions {
		if _, ok := e.registry[n]; !ok {
			e.mu.Unlock()
			return Result{}, fmt.Errorf("degrade: activate %s: %q: %w", level, n, ErrUnknownAction)
		}
	}
	start := e.level
	e.held, e.heldReason = true, reason
	e.recoverSince = time.Time{}
	for _, l := range e.layers {
		if !l.leaving && (l.level > level || (actions != nil && l.level == level)) {
			l.leaving, l.leaveReason = true, reason
		}
	}
	switch {
	case actions == nil:
		plan := e.lastPlan
		if plan == nil {
			plan = PlanOf(e.policy())
		}
		e.raise(level, plan, reason, true)
	case level > None:
		e.layers = append(e.layers, &layer{level: level, actions: dedupe(actions), reason: reason, manual: true})
		e.sortLayers()
	}
	e.mu.Unlock()
	res := e.reconcile(ctx, call{start: start, manual: true, upReason: reason, downReason: reason, forceActivated: true})
	return res, nil
}

// Deactivate ends every degradation now, manual or not: every level is left
// at once, its actions rolled back most recent first, and a manual hold is
// released, so the policy drives the engine again from the next Apply (and
// climbs straight back if its conditions still hold). It publishes
// DEGRADATION_DEACTIVATED (Manual set) even when nothing was active. The
// error joins the rollbacks that failed; they are retried by later calls.
func (e *Engine) Deactivate(ctx context.Context, reason string) (Result, error) {
	e.opMu.Lock()
	defer e.opMu.Unlock()
	e.mu.Lock()
	start := e.level
	e.held, e.heldReason = false, ""
	e.recoverSince = time.Time{}
	for _, l := range e.layers {
		if !l.leaving {
			l.leaving, l.leaveReason = true, reason
		}
	}
	e.mu.Unlock()
	res := e.reconcile(ctx, call{start: start, manual: true, downReason: reason, forceDeactivated: true})
	return res, res.Err
}

// Retry runs the applies and rollbacks that failed earlier and are due,
// without looking at the policy. Apply does the same on every call.
func (e *Engine) Retry(ctx context.Context) Result {
	e.opMu.Lock()
	defer e.opMu.Unlock()
	e.mu.Lock()
	start, held := e.level, e.held
	e.mu.Unlock()
	res := e.reconcile(ctx, call{start: start})
	res.Held = held
	return res
}

// call carries one reconcile's context.
type call struct {
	start  Level
	manual bool
	// upReason and downReason say why levels were entered and left by
	// this call; "" when the call only retries.
	upReason, downReason string
	forceActivated       bool
	forceDeactivated     bool
}

type pendingOp struct {
	name   string
	level  Level
	reason string
	manual bool
}

// reconcile makes the applied actions match the wanted layers: it rolls
// back applied actions no entered level wants (most recently applied
// first), then applies wanted actions that are not applied (least severe
// level first, in each level's order), skipping failed ones whose retry is
// not due. Then it recomputes the level and reports. e.opMu is held.
func (e *Engine) reconcile(ctx context.Context, c call) Result {
	now := e.clock.Now()
	var res Result
	var ctxErr error
	rbReason, rbManual := "", false
	apReason, apManual := "", false

	e.mu.Lock()
	rollbacks := e.rollbackCandidates()
	e.mu.Unlock()
	for _, op := range rollbacks {
		if ctxErr = ctx.Err(); ctxErr != nil {
			break
		}
		e.mu.Lock()
		st := e.states[op.name]
		due := st.failOp != OpRollback || !now.Before(st.next)
		a := e.registry[op.name]
		e.mu.Unlock()
		if !due {
			continue
		}
		var err error
		if a == nil {
			err = ErrUnknownAction
		} else {
			err = safeCall(func() error { return a.Rollback(ctx) })
		}
		e.mu.Lock()
		if err == nil {
			delete(e.states, op.name)
			res.RolledBack = append(res.RolledBack, op.name)
			if rbReason == "" {
				rbReason, rbManual = op.reason, op.manual
			}
		} else {
			res.Failures = append(res.Failures, e.fail(op.name, OpRollback, st.level, err, now))
		}
		e.mu.Unlock()
	}

	e.mu.Lock()
	e.tidy()
	applies := e.applyCandidates()
	e.mu.Unlock()
	for _, op := range applies {
		if ctxErr == nil {
			ctxErr = ctx.Err()
		}
		if ctxErr != nil {
			break
		}
		e.mu.Lock()
		st := e.states[op.name]
		due := st == nil || st.failOp != OpApply || !now.Before(st.next)
		a := e.registry[op.name]
		e.mu.Unlock()
		if !due {
			continue
		}
		var err error
		if a == nil {
			err = ErrUnknownAction
		} else {
			err = safeCall(func() error { return a.Apply(ctx, op.level) })
		}
		e.mu.Lock()
		if err == nil {
			e.seq++
			e.states[op.name] = &actionState{applied: true, level: op.level, seq: e.seq, since: now, manual: op.manual}
			res.Applied = append(res.Applied, op.name)
			apReason, apManual = op.reason, op.manual
		} else {
			res.Failures = append(res.Failures, e.fail(op.name, OpApply, op.level, err, now))
		}
		e.mu.Unlock()
	}

	e.mu.Lock()
	e.tidy()
	end := e.computeLevel()
	res.From, res.Level, res.Target = c.start, end, e.topLevel()
	changed := end != e.level
	var evs []events.Degradation
	lo := min(c.start, end)
	if len(res.RolledBack) > 0 || end < c.start || c.forceDeactivated {
		reason := firstNonEmpty(c.downReason, rbReason, "retried rollback")
		evs = append(evs, events.Degradation{From: c.start.String(), To: lo.String(),
			Actions: res.RolledBack, Reason: reason, Manual: c.manual || rbManual})
	}
	if len(res.Applied) > 0 || end > c.start || c.forceActivated {
		reason := firstNonEmpty(c.upReason, apReason, "retried apply")
		evs = append(evs, events.Degradation{Activated: true, From: lo.String(), To: end.String(),
			Actions: res.Applied, Reason: reason, Manual: c.manual || apManual})
	}
	if changed {
		reason, manual := "", false
		if len(evs) > 0 {
			last := evs[len(evs)-1]
			reason, manual = last.Reason, last.Manual
		}
		e.recordLevel(end, reason, manual, now)
	}
	e.mu.Unlock()

	for _, f := range res.Failures {
		e.log.Warn("degradation action failed; will retry", "action", f.Action, "op", string(f.Op),
			"level", f.Level.String(), "attempt", f.Attempt, "error", f.Err)
		e.events.Publish(events.New(now, events.Error{Source: "degrade", Kind: "action_" + string(f.Op), Message: f.Error()}))
	}
	for _, d := range evs {
		if d.Activated {
			e.log.Warn("degradation activated", "from", d.From, "to", d.To, "actions", d.Actions, "reason", d.Reason, "manual", d.Manual)
		} else {
			e.log.Info("degradation deactivated", "from", d.From, "to", d.To, "actions", d.Actions, "reason", d.Reason, "manual", d.Manual)
		}
		e.events.Publish(events.New(now, d))
	}
	errs := make([]error, 0, len(res.Failures)+1)
	for _, f := range res.Failures {
		errs = append(errs, f)
	}
	if ctxErr != nil {
		errs = append(errs, fmt.Errorf("degrade: stopped early: %w", ctxErr))
	}
	res.Err = errors.Join(errs...)
	return res
}

func firstNonEmpty(s ...string) string {
	for _, v := range s {
		if v != "" {
			return v
		}
	}
	return ""
}

// wanted reports whether an entered (not leaving) layer names the action.
// e.mu is held.
func (e *Engine) wanted(name string) bool {
	for _, l := range e.layers {
		if !l.leaving && slices.Contains(l.actions, name) {
			return true
		}
	}
	return false
}

// rollbackCandidates lists applied actions no entered layer wants, most
// recently applied first. e.mu is held.
func (e *Engine) rollbackCandidates() []pendingOp {
	type cand struct {
		pendingOp
		seq uint64
	}
	var cs []cand
	for name, st := range e.states {
		if !st.applied || e.wanted(name) {
			continue
		}
		c := cand{pendingOp: pendingOp{name: name, level: st.level}, seq: st.seq}
		// The reason is that of the highest leaving layer naming it.
		for _, l := range e.layers {
			if l.leaving && slices.Contains(l.actions, name) {
				c.reason, c.manual = l.leaveReason, l.manual
			}
		}
		cs = append(cs, c)
	}
	sort.Slice(cs, func(i, j int) bool { return cs[i].seq > cs[j].seq })
	out := make([]pendingOp, len(cs))
	for i, c := range cs {
		out[i] = c.pendingOp
	}
	return out
}

// applyCandidates lists wanted actions that are not applied, least severe
// level first and in each level's order, each name once. e.mu is held.
func (e *Engine) applyCandidates() []pendingOp {
	var out []pendingOp
	seen := map[string]bool{}
	for _, l := range e.layers {
		if l.leaving {
			continue
		}
		for _, n := range l.actions {
			if seen[n] {
				continue
			}
			seen[n] = true
			if st := e.states[n]; st != nil && st.applied {
				continue
			}
			out = append(out, pendingOp{name: n, level: l.level, reason: l.reason, manual: l.manual})
		}
	}
	return out
}

// tidy drops leaving layers whose actions are all rolled back (or wanted
// by another layer), forgets failed applies of actions no longer wanted,
// and clears a failed rollback of an action wanted again. e.mu is held.
func (e *Engine) tidy() {
	e.layers = slices.DeleteFunc(e.layers, func(l *layer) bool {
		if !l.leaving {
			return false
		}
		for _, n := range l.actions {
			if st := e.states[n]; st != nil && st.applied && !e.wanted(n) {
				return false
			}
		}
		return true
	})
	for name, st := range e.states {
		w := e.wanted(name)
		switch {
		case !st.applied && !w:
			delete(e.states, name)
		case st.applied && w && st.failOp == OpRollback:
			st.failOp, st.attempts, st.err, st.next = "", 0, nil, time.Time{}
		}
	}
}

// computeLevel returns the highest level L such that every layer up to L
// counts: an entered layer counts when all its actions are applied, a
// leaving layer counts until its last action is rolled back. e.mu is held.
func (e *Engine) computeLevel() Level {
	lvl := None
	for _, l := range e.layers {
		if !l.leaving {
			for _, n := range l.actions {
				if st := e.states[n]; st == nil || !st.applied {
					return lvl
				}
			}
		}
		lvl = max(lvl, l.level)
	}
	return lvl
}

// fail records a failed attempt and schedules its retry. e.mu is held.
func (e *Engine) fail(name string, op Op, level Level, err error, now time.Time) *ActionError {
	st := e.states[name]
	if st == nil {
		st = &actionState{level: level}
		e.states[name] = st
	}
	if st.failOp != op {
		st.failOp, st.attempts = op, 0
	}
	st.attempts++
	st.err = err
	st.next = now.Add(e.backoff(st.attempts))
	return &ActionError{Action: name, Op: op, Level: level, Attempt: st.attempts, Err: err}
}

// backoff is the wait after the n-th consecutive failure (n >= 1).
func (e *Engine) backoff(n int) time.Duration {
	d := e.retry
	for i := 1; i < n && d < e.maxRetry; i++ {
		d *= 2
	}
	return min(d, e.maxRetry)
}

// Level returns the current level: see the package doc for when a level
// counts as reached and as left.
func (e *Engine) Level() Level {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.level
}

// View returns the level and when it was reached, for
// metrics.Recorder.SetDegradation (so policies can read degradation.level
// and degradation.age).
func (e *Engine) View() metrics.DegradationView {
	e.mu.Lock()
	defer e.mu.Unlock()
	return metrics.DegradationView{Level: e.level.String(), Since: e.since}
}

// Active returns the names of the actions in effect, in the order they
// were applied.
func (e *Engine) Active() []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.activeLocked()
}
