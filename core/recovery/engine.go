package recovery

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/lifeline-bot/lifeline/core/clock"
	"github.com/lifeline-bot/lifeline/core/conn"
	"github.com/lifeline-bot/lifeline/core/events"
	"github.com/lifeline-bot/lifeline/core/metrics"
	"github.com/lifeline-bot/lifeline/core/policy"
)

// Settings configures an Engine. The zero value is valid: the default
// policy's rules, no connection (the built-in strategies are then
// unavailable until a Failure brings one), the wall clock, no events.
type Settings struct {
	// Connection is what the built-in strategies drive when a Failure has
	// no Conn of its own. Default: none.
	Connection Connection
	// Snapshot returns the metrics Snapshot of a shard, for the policy's
	// conditions, when a Failure has none. Default: an empty Snapshot.
	Snapshot func(shard int) *metrics.Snapshot
	// Clock times attempts, timeouts, retry delays and the cap window.
	// Default: clock.Real.
	Clock clock.Clock
	// Events receives RECOVERY_ATTEMPTED and RECOVERY_COMPLETED for every
	// attempt, and ERROR_OCCURRED (Source "recovery") when a failure could
	// not be recovered. Default: none.
	Events events.Publisher
	// Logger gets one line per attempt and per outcome. Default: hclog's
	// null logger.
	Logger hclog.Logger
	// AttemptTimeout bounds one attempt. For a built-in strategy run
	// through a connection's Planner (ConnPlanner) the time the connection
	// loop waits out its backoff before it begins the attempt is left out
	// (conn.WithTryNotice). A Recoverer that ignores its
	// context past the deadline is abandoned (counted in
	// Stats.Abandoned) and the next strategy runs. Default: 30s.
	AttemptTimeout time.Duration
	// RetryDelay is the pause between two attempts of the same strategy
	// for one failure (none between different strategies). Default: 0
	// (the connection loop has its own backoff).
	RetryDelay time.Duration
	// Window is the length of the sliding window the two caps below
	// count failed attempts in. Default: 5m.
	Window time.Duration
	// MaxAttemptsPerWindow caps the failed attempts of all strategies
	// together on one shard within Window; once reached, Handle skips every
	// remaining strategy (ErrWindowCap). A successful attempt does not
	// count. Default: 30.
	MaxAttemptsPerWindow int
	// MaxStrategyAttemptsPerWindow caps the failed attempts of one strategy
	// on one shard within Window, across failures; once reached, Handle
	// falls through to the next strategy (ErrStrategyCap), except to one
	// that would start a new session while the failure leaves the old one
	// resumable (ErrSessionKept). A successful attempt does not count.
	// Default: 10.
	MaxStrategyAttemptsPerWindow int
}

func (s *Settings) defaults() {
	s.Clock = clock.Or(s.Clock)
	s.Events = events.OrDiscard(s.Events)
	if s.Logger == nil {
		s.Logger = hclog.NewNullLogger()
	}
	if s.AttemptTimeout <= 0 {
		s.AttemptTimeout = 30 * time.Second
	}
	if s.RetryDelay < 0 {
		s.RetryDelay = 0
	}
	if s.Window <= 0 {
		s.Window = 5 * time.Minute
	}
	if s.MaxAttemptsPerWindow <= 0 {
		s.MaxAttemptsPerWindow = 30
	}
	if s.MaxStrategyAttemptsPerWindow <= 0 {
		s.MaxStrategyAttemptsPerWindow = 10
	}
}

// Engine chooses and runs recovery strategies. On a Failure it takes the
// policy's recovery rules whose condition holds and the Go strategies whose
// When holds, orders them by priority, and tries each (up to its
// MaxAttempts) until one succeeds, within the caps per strategy and per
// window. An Engine is safe for concurrent use; one Engine serves every
// shard, and at most one recovery runs per shard at a time.
type Engine struct {
	s   Settings
	log hclog.Logger

	mu       sync.Mutex
	policy   *policy.Policy
	impls    map[string]Recoverer
	strats   []Strategy // Go strategies in registration order
	windows  map[windowKey]*window
	active   map[int]bool
	stats    Stats
	sweepAge int // reserve calls since the last sweep of empty windows
}

// Stats are the Engine's counters since New.
type Stats struct {
	// Failures counts Handle calls that looked for a strategy.
	Failures uint64 `json:"failures"`
	// Recovered counts failures a strategy recovered from.
	Recovered uint64 `json:"recovered"`
	// Unrecovered counts failures no strategy recovered from (none
	// applied, all failed or were capped). Cancelled calls are not counted.
	Unrecovered uint64 `json:"unrecovered"`
	// Attempts counts attempts started, successful or not (each has its
	// RECOVERY_ATTEMPTED and RECOVERY_COMPLETED events).
	Attempts uint64 `json:"attempts"`
	// Refunded counts the attempts that succeeded and so were taken back
	// out of the window caps, which count failed attempts only.
	Refunded uint64 `json:"refunded"`
	// Skipped counts strategies skipped by a cap, as unavailable, or to
	// keep a resumable session (ErrSessionKept); each is in its Report's
	// Skipped and logged, and no event is published for it.
	Skipped uint64 `json:"skipped"`
	// Abandoned counts attempts that ignored their context past the
	// AttemptTimeout and were left running.
	Abandoned uint64 `json:"abandoned"`
	// Busy counts Handle calls refused because a recovery for the shard
	// was already running.
	Busy uint64 `json:"busy"`
}

// New returns an Engine bound to the default policy (policy.Default()),
// with the built-in strategies registered.
func New(s Settings) *Engine {
	s.defaults()
	e := &Engine{
		s:       s,
		log:     s.Logger.Named("recovery"),
		policy:  policy.Default(),
		impls:   Builtins(),
		windows: map[windowKey]*window{},
		active:  map[int]bool{},
	}
	return e
}

// Register makes r the implementation of the strategy name, which a policy
// rule's `use` can then name: "plugin.strategy" for a plugin's strategy,
// or a built-in name to replace that built-in. Registering a name again
// replaces the previous implementation.
func (e *Engine) Register(name string, r Recoverer) error {
	if name == "" || r == nil {
		return fmt.Errorf("recovery: Register(%q): a name and a Recoverer are required: %w", name, ErrInvalidStrategy)
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	e.impls[name] = r
	return nil
}

// Registered returns the names of every registered implementation (the
// built-ins included), sorted.
func (e *Engine) Registered() []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.registeredLocked()
}

func (e *Engine) registeredLocked() []string {
	names := make([]string, 0, len(e.impls))
	for n := range e.impls {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// AddRecoveryStrategy adds a strategy defined in Go (the seed's
// addRecoveryStrategy). It runs alongside the policy's rules in one
// priority order. The name must be new: not another Go strategy's and not
// a rule name of the current policy.
func (e *Engine) AddRecoveryStrategy(s Strategy) error {
	if s.Name == "" || s.Recoverer == nil {
		return fmt.Errorf("recovery: AddRecoveryStrategy(%q): a name and a Recoverer are required: %w", s.Name, ErrInvalidStrategy)
	}
	if s.MaxAttempts <= 0 {
		s.MaxAttempts = DefaultMaxAttempts
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, g := range e.strats {
		if g.Name == s.Name {
			return fmt.Errorf("recovery: AddRecoveryStrategy(%q): a Go strategy of that name is already registered: %w", s.Name, ErrDuplicate)
		}
	}
	for _, r := range e.policy.Recovery {
		if r.Name == s.Name {
			return fmt.Errorf("recovery: AddRecoveryStrategy(%q): the policy has a recovery rule of that name (%s): %w", s.Name, ruleLocation(e.policy, r, "name"), ErrDuplicate)
		}
	}
	e.strats = append(e.strats, s)
	return nil
}

// RemoveRecoveryStrategy removes the Go strategy name and reports whether
// there was one.
func (e *Engine) RemoveRecoveryStrategy(name string) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	for i, g := range e.strats {
		if g.Name == name {
			e.strats = slices.Delete(e.strats, i, i+1)
			return true
		}
	}
	return false
}

// SetPolicy binds the recovery rules of p (nil: policy.Default()). Every
// rule's `use` must name a registered implementation (the built-ins, or
// one added with Register), and no rule may share its name with a Go
// strategy; otherwise SetPolicy returns every problem, each with the rule's
// file and line, wrapping ErrUnknownStrategy or ErrDuplicate, and the
// previous policy stays bound. Call it from a policy.Watcher's OnReload to
// follow live reloads.
func (e *Engine) SetPolicy(p *policy.Policy) error {
	if p == nil {
		p = policy.Default()
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	var errs []error
	for _, r := range p.Recovery {
		if _, ok := e.impls[r.Use]; !ok {
			errs = append(errs, fmt.Errorf("%s: recovery %q: strategy %q is %s (registered: %s): %w",
				ruleLocation(p, r, "use"), r.Name, r.Use, unknownWhy(r.Use), strings.Join(e.registeredLocked(), ", "), ErrUnknownStrategy))
		}
		for _, g := range e.strats {
			if g.Name == r.Name {
				errs = append(errs, fmt.Errorf("%s: recovery %q: a Go strategy added with AddRecoveryStrategy has the same name: %w",
					ruleLocation(p, r, "name"), r.Name, ErrDuplicate))
			}
		}
	}
	if len(errs) > 0 {
		return &BindError{Errs: errs}
	}
	e.policy = p
	return nil
}

// BindError is SetPolicy's error: one entry per problem, each naming the
// rule and its location.
type BindError struct {
	Errs []error
}

// Error joins the problems on one line.
func (b *BindError) Error() string {
	msgs := make([]string, len(b.Errs))
	for i, err := range b.Errs {
		msgs[i] = err.Error()
	}
	return "recovery: policy not bound: " + strings.Join(msgs, "; ")
}

// Unwrap returns the problems, so errors.Is finds ErrUnknownStrategy or
// ErrDuplicate.
func (b *BindError) Unwrap() []error { return b.Errs }

func unknownWhy(use string) string {
	if plugin, _, ok := strings.Cut(use, "."); ok {
		return fmt.Sprintf("not provided by plugin %q (is the plugin running and does it serve this strategy?)", plugin)
	}
	return "not a built-in strategy and was not registered"
}

// ruleLocation says where a rule is: "file:line,col-col" of the attribute
// (or of the block when the file did not set it), or the default rules.
func ruleLocation(p *policy.Policy, r policy.RecoveryRule, attr string) string {
	if r.Generated {
		return "default recovery rules"
	}
	rng := r.Ranges.Of(attr)
	if attr == "name" || rng.Filename == "" {
		rng = r.Ranges.Block
	}
	if rng.Filename == "" {
		if p.Filename != "" {
			return p.Filename
		}
		return "policy"
	}
	return rng.String()
}

// Policy returns the bound policy.
func (e *Engine) Policy() *policy.Policy {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.policy
}

// StrategyInfo describes one strategy the Engine may run, for diagnostics.
type StrategyInfo struct {
	// Name is the rule's label or the Go strategy's Name.
	Name string `json:"name"`
	// Use is the implementation it runs.
	Use string `json:"use"`
	// Priority orders strategies; lower first.
	Priority int `json:"priority"`
	// MaxAttempts caps attempts for one failure.
	MaxAttempts int `json:"max_attempts"`
	// Condition is the expr condition, "(Go)" for a Go When, or "" for
	// always.
	Condition string `json:"condition,omitempty"`
	// Origin is "policy", "default" (a generated rule) or "go".
	Origin string `json:"origin"`
	// Location is where a policy rule is defined; empty otherwise.
	Location string `json:"location,omitempty"`
}

// Strategies lists every strategy in the order Handle considers them
// (before conditions are evaluated).
func (e *Engine) Strategies() []StrategyInfo {
	e.mu.Lock()
	defer e.mu.Unlock()
	var out []StrategyInfo
	for _, r := range e.policy.Recovery {
		origin, loc := "policy", ruleLocation(e.policy, r, "name")
		if r.Generated {
			origin, loc = "default", ""
		}
		out = append(out, StrategyInfo{Name: r.Name, Use: r.Use, Priority: r.Priority, MaxAttempts: r.MaxAttempts,
			Condition: r.When.Expr, Origin: origin, Location: loc})
	}
	for _, g := range e.strats {
		cond := ""
		if g.When != nil {
			cond = "(Go)"
		}
		out = append(out, StrategyInfo{Name: g.Name, Use: g.Name, Priority: g.Priority, MaxAttempts: g.MaxAttempts,
			Condition: cond, Origin: "go"})
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Priority < out[j].Priority })
	return out
}

// Stats returns the counters.
func (e *Engine) Stats() Stats {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.stats
}

// Report says what Handle did for one failure.
type Report struct {
	// Failure is the failure handled, with Conn and Snapshot filled in.
	Failure Failure
	// Plan names the strategies that applied, in the order they were
	// considered.
	Plan []string
	// Attempts lists every attempt in order.
	Attempts []AttemptRecord
	// Skipped lists strategies skipped by a cap, as unavailable, or to
	// keep a resumable session.
	Skipped []Skip
	// Recovered is true when a strategy succeeded; Strategy names it.
	Recovered bool
	Strategy  string
	// ConditionErr holds the errors of conditions that failed to evaluate
	// (each counted as false); nil normally.
	ConditionErr error
}

// AttemptRecord is one attempt's outcome.
type AttemptRecord struct {
	Strategy string
	Use      string
	Number   int
	Started  time.Time
	Duration time.Duration
	// Err is nil for the successful attempt.
	Err error
}

// Skip is a strategy that applied but was not tried (further).
type Skip struct {
	Strategy string
	// Reason wraps ErrStrategyCap, ErrWindowCap, ErrSessionKept or
	// ErrUnavailable.
	Reason error
}

// ExhaustedError is Handle's error when strategies applied but none
// succeeded. errors.Is matches ErrExhausted and each attempt's error.
type ExhaustedError struct {
	Shard   int
	Failure string
	// Errs are the attempts' errors and the skip reasons, in order.
	Errs []error
}

// Error says which failure could not be recovered and why, on one line.
func (x *ExhaustedError) Error() string {
	msgs := make([]string, len(x.Errs))
	for i, err := range x.Errs {
		msgs[i] = err.Error()
	}
	return fmt.Sprintf("recovery: shard %d (%s): %v: %s", x.Shard, x.Failure, ErrExhausted, strings.Join(msgs, "; "))
}

// Unwrap returns ErrExhausted followed by the attempts' errors.
func (x *ExhaustedError) Unwrap() []error { return append([]error{ErrExhausted}, x.Errs...) }

// candidate is a strategy that applies to the failure at hand.
type candidate struct {
	name, use   string
	priority    int
	maxAttempts int
	impl        Recoverer
}

// Handle recovers from f: it tries the strategies that apply, lowest
// priority first, each up to its MaxAttempts, until one succeeds, and
// returns what it did. A failing attempt falls through to the next attempt
// or strategy. A strategy at its cap falls through to the next one too,
// but never to a strategy that starts a new session (reidentify,
// restart_client) while a resume strategy applies to f: a cap meant for
// failing loops must not cost a session that can still resume; those are
// skipped with ErrSessionKept and the failure goes back to the caller (a
// ConnPlanner's connection loop resumes with its own backoff). Each attempt publishes RECOVERY_ATTEMPTED before and
// RECOVERY_COMPLETED after (with the outcome); when nothing succeeds,
// ERROR_OCCURRED (Source "recovery") is published and the error wraps
// ErrExhausted (an *ExhaustedError) or ErrNoStrategy. Handle returns
// ErrBusy at once while another recovery of the same shard runs,
// ErrOwnFailure for the Engine's own errors, and ctx's error (wrapped)
// when ctx ends first.
func (e *Engine) Handle(ctx context.Context, f Failure) (Report, error) {
	if f.Error.Source == Source {
		return Report{Failure: f}, fmt.Errorf("recovery: shard %d (%s): %w", f.Shard, f, ErrOwnFailure)
	}
	if f.Conn == nil {
		f.Conn = e.s.Connection
	}
	if f.Snapshot == nil && e.s.Snapshot != nil {
		f.Snapshot = e.s.Snapshot(f.Shard)
	}
	if f.Snapshot == nil {
		f.Snapshot = &metrics.Snapshot{}
	}
	rep := Report{Failure: f}

	e.mu.Lock()
	if e.active[f.Shard] {
		e.stats.Busy++
		e.mu.Unlock()
		return rep, fmt.Errorf("recovery: shard %d (%s): %w", f.Shard, f, ErrBusy)
	}
	e.active[f.Shard] = true
	e.stats.Failures++
	e.mu.Unlock()
	defer func() {
		e.mu.Lock()
		delete(e.active, f.Shard)
		e.mu.Unlock()
	}()

	plan, condErr := e.plan(f)
	rep.ConditionErr = condErr
	if condErr != nil {
		e.log.Warn("recovery condition failed to evaluate; counted as false", "shard", f.Shard, "error", condErr)
	}
	for _, c := range plan {
		rep.Plan = append(rep.Plan, c.name)
	}
	if len(plan) == 0 {
		err := fmt.Errorf("recovery: shard %d (%s): %w", f.Shard, f, ErrNoStrategy)
		e.giveUp(f, err)
		return rep, err
	}

	// resumable: a resume strategy applies, i.e. the policy says this
	// failure leaves the session resumable. capped names the first
	// strategy keeping the session that was skipped at its cap.
	resumable := slices.ContainsFunc(plan, func(c candidate) bool { return c.use == Resume })
	var capped string
	var errs []error
strategies:
	for _, c := range plan {
		if ctx.Err() != nil {
			break
		}
		if resumable && capped != "" && startsNewSession(c.use) {
			err := fmt.Errorf("%s: %w: %s, which keeps the session, was skipped at its cap and the failure leaves the session resumable",
				c.name, ErrSessionKept, capped)
			e.skip(&rep, c.name, err)
			errs = append(errs, err)
			continue
		}
		if av, ok := c.impl.(Availability); ok {
			if err := av.Available(f); err != nil {
				e.skip(&rep, c.name, err)
				errs = append(errs, err)
				continue
			}
		}
		for n := 1; n <= c.maxAttempts; n++ {
			if n > 1 && e.s.RetryDelay > 0 && !e.sleep(ctx, e.s.RetryDelay) {
				break strategies
			}
			if ctx.Err() != nil {
				break strategies
			}
			res, err := e.reserve(f.Shard, c.name)
			if err != nil {
				e.skip(&rep, c.name, err)
				errs = append(errs, err)
				if errors.Is(err, ErrWindowCap) {
					break strategies
				}
				if capped == "" && keepsSession(c.use) {
					capped = c.name
				}
				continue strategies
			}
			rec := e.attempt(ctx, c, n, f)
			rep.Attempts = append(rep.Attempts, rec)
			if rec.Err == nil || ctx.Err() != nil {
				// Caps count failures: a success, or an attempt cut short
				// because the caller stopped, spends none of the budget.
				e.refund(res)
			}
			if rec.Err == nil {
				rep.Recovered, rep.Strategy = true, c.name
				e.mu.Lock()
				e.stats.Recovered++
				e.mu.Unlock()
				e.log.Info("recovered", "shard", f.Shard, "strategy", c.name, "attempt", n, "failure", f.String())
				return rep, nil
			}
			errs = append(errs, fmt.Errorf("%s attempt %d: %w", c.name, n, rec.Err))
		}
	}
	if err := ctx.Err(); err != nil {
		return rep, fmt.Errorf("recovery: shard %d (%s): stopped: %w", f.Shard, f, err)
	}
	err := &ExhaustedError{Shard: f.Shard, Failure: f.String(), Errs: errs}
	e.giveUp(f, err)
	return rep, err
}

// plan returns the strategies that apply to f, in priority order.
func (e *Engine) plan(f Failure) ([]candidate, error) {
	e.mu.Lock()
	p := e.policy
	strats := slices.Clone(e.strats)
	e.mu.Unlock()

	rules, condErr := p.ChooseRecovery(f.Error, f.Snapshot)
	var out []candidate
	e.mu.Lock()
	for _, r := range rules {
		out = append(out, candidate{name: r.Name, use: r.Use, priority: r.Priority, maxAttempts: r.MaxAttempts, impl: e.impls[r.Use]})
	}
	e.mu.Unlock()
	var errs []error
	if condErr != nil {
		errs = append(errs, condErr)
	}
	for _, s := range strats {
		ok, err := applies(s, f)
		if err != nil {
			errs = append(errs, err)
		}
		if ok {
			out = append(out, candidate{name: s.Name, use: s.Name, priority: s.Priority, maxAttempts: s.MaxAttempts, impl: s.Recoverer})
		}
	}
	// Stable: policy rules (already in priority and file order) stay
	// ahead of Go strategies of the same priority.
	sort.SliceStable(out, func(i, j int) bool { return out[i].priority < out[j].priority })
	// A rule whose implementation vanished cannot run (SetPolicy checked
	// it, so this only guards against misuse).
	out = slices.DeleteFunc(out, func(c candidate) bool {
		if c.impl == nil {
			errs = append(errs, fmt.Errorf("recovery %q: strategy %q: %w", c.name, c.use, ErrUnknownStrategy))
			return true
		}
		return false
	})
	return out, errors.Join(errs...)
}

// applies evaluates a Go strategy's When, turning a panic into false and
// an error.
func applies(s Strategy, f Failure) (ok bool, err error) {
	if s.When == nil {
		return true, nil
	}
	defer func() {
		if p := recover(); p != nil {
			ok, err = false, fmt.Errorf("recovery %q: When panicked: %v", s.Name, p)
		}
	}()
	return s.When(f), nil
}

// keepsSession reports whether the built-in use keeps the session: resume,
// and reconnect, which RESUMEs while the connection holds a session.
func keepsSession(use string) bool { return use == Resume || use == Reconnect }

// startsNewSession reports whether the built-in use gives the session up
// and IDENTIFYs anew.
func startsNewSession(use string) bool { return use == Reidentify || use == RestartClient }

// reservation is one attempt counted in the window caps; refund takes it
// back out.
type reservation struct {
	shard    int
	strategy string
	at       time.Time
}

// reserve counts one attempt of strategy on shard, or says which cap
// forbids it. The attempt stays counted unless refund takes it back, which
// Handle does when it succeeds: the caps count failed attempts.
func (e *Engine) reserve(shard int, strategy string) (reservation, error) {
	now := e.s.Clock.Now()
	e.mu.Lock()
	defer e.mu.Unlock()
	e.sweepAge++
	if e.sweepAge >= 64 {
		e.sweepAge = 0
		for k, w := range e.windows {
			if w.count(now, e.s.Window) == 0 {
				delete(e.windows, k)
			}
		}
	}
	total := e.windowLocked(windowKey{shard: shard})
	if n := total.count(now, e.s.Window); n >= e.s.MaxAttemptsPerWindow {
		return reservation{}, fmt.Errorf("%s: %d failed attempts on shard %d within %s: %w", strategy, n, shard, e.s.Window, ErrWindowCap)
	}
	per := e.windowLocked(windowKey{shard: shard, strategy: strategy})
	if n := per.count(now, e.s.Window); n >= e.s.MaxStrategyAttemptsPerWindow {
		return reservation{}, fmt.Errorf("%s: %d failed attempts on shard %d within %s: %w", strategy, n, shard, e.s.Window, ErrStrategyCap)
	}
	total.add(now)
	per.add(now)
	e.stats.Attempts++
	return reservation{shard: shard, strategy: strategy, at: now}, nil
}

// refund takes a reserved attempt back out of both window caps.
func (e *Engine) refund(r reservation) {
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, k := range []windowKey{{shard: r.shard}, {shard: r.shard, strategy: r.strategy}} {
		if w := e.windows[k]; w != nil {
			w.remove(r.at)
		}
	}
	e.stats.Refunded++
}

func (e *Engine) windowLocked(k windowKey) *window {
	w := e.windows[k]
	if w == nil {
		w = &window{}
		e.windows[k] = w
	}
	return w
}

func (e *Engine) skip(rep *Report, strategy string, reason error) {
	rep.Skipped = append(rep.Skipped, Skip{Strategy: strategy, Reason: reason})
	e.mu.Lock()
	e.stats.Skipped++
	e.mu.Unlock()
	e.log.Warn("recovery strategy skipped", "shard", rep.Failure.Shard, "strategy", strategy, "reason", reason)
}

// attempt runs one attempt under the AttemptTimeout and publishes its two
// events.
func (e *Engine) attempt(ctx context.Context, c candidate, n int, f Failure) AttemptRecord {
	start := e.s.Clock.Now()
	a := Attempt{Strategy: c.name, Use: c.use, Number: n, Failure: f, Started: start}
	trigger := f.String()
	e.s.Events.Publish(events.ForShard(start, f.Shard, events.Recovery{Strategy: c.name, Attempt: n, Trigger: trigger}))
	e.log.Info("recovery attempt", "shard", f.Shard, "strategy", c.name, "use", c.use, "attempt", n, "failure", trigger)

	err := e.run(ctx, c.impl, a)

	end := e.s.Clock.Now()
	rec := AttemptRecord{Strategy: c.name, Use: c.use, Number: n, Started: start, Duration: end.Sub(start), Err: err}
	data := events.Recovery{Completed: true, Strategy: c.name, Attempt: n, Trigger: trigger, Success: err == nil, Duration: rec.Duration}
	if err != nil {
		data.Error = err.Error()
		e.log.Warn("recovery attempt failed", "shard", f.Shard, "strategy", c.name, "attempt", n, "error", err)
	}
	e.s.Events.Publish(events.ForShard(end, f.Shard, data))
	return rec
}

// run calls the Recoverer on its own goroutine so that one ignoring its
// context cannot hold the Engine past the AttemptTimeout; a panic becomes
// an error wrapping ErrPanicked.
func (e *Engine) run(ctx context.Context, r Recoverer, a Attempt) error {
	actx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	timeout := e.s.AttemptTimeout
	t := e.s.Clock.AfterFunc(timeout, func() {
		cancel(fmt.Errorf("%w after %s", ErrAttemptTimeout, timeout))
	})
	defer t.Stop()
	// A connection attempt may wait out the loop's backoff before it
	// begins; the deadline is the attempt's, so that wait is left out.
	cctx := actx
	actx = conn.WithTryNotice(cctx, func() { t.Stop() }, func() {
		if cctx.Err() == nil {
			t.Reset(timeout)
		}
	})

	done := make(chan error, 1)
	go func() {
		defer func() {
			if p := recover(); p != nil {
				done <- fmt.Errorf("%s: %w: %v", a.Strategy, ErrPanicked, p)
			}
		}()
		done <- r.Recover(actx, a)
	}()
	annotate := func(err error) error {
		if cause := context.Cause(actx); err != nil && errors.Is(cause, ErrAttemptTimeout) && !errors.Is(err, ErrAttemptTimeout) {
			return fmt.Errorf("%w: %w", cause, err)
		}
		return err
	}
	select {
	case err := <-done:
		return annotate(err)
	case <-actx.Done():
	}
	// A well-behaved Recoverer returns soon after its context ends, with
	// its own (more precise) error: give it abandonGrace.
	g := e.s.Clock.NewTimer(abandonGrace)
	defer g.Stop()
	select {
	case err := <-done:
		return annotate(err)
	case <-g.C():
	}
	e.mu.Lock()
	e.stats.Abandoned++
	e.mu.Unlock()
	e.log.Error("recovery attempt ignored its deadline; abandoned", "strategy", a.Strategy, "attempt", a.Number)
	return fmt.Errorf("%s: abandoned: %w", a.Strategy, context.Cause(actx))
}

// abandonGrace is how long run waits, after an attempt's context ended,
// for the Recoverer to return before abandoning it.
const abandonGrace = time.Second

// sleep waits d on the Engine's clock, or until ctx ends (false).
func (e *Engine) sleep(ctx context.Context, d time.Duration) bool {
	t := e.s.Clock.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C():
		return true
	case <-ctx.Done():
		return false
	}
}

// giveUp publishes ERROR_OCCURRED for a failure nothing recovered.
func (e *Engine) giveUp(f Failure, err error) {
	e.mu.Lock()
	e.stats.Unrecovered++
	e.mu.Unlock()
	e.log.Error("recovery failed", "shard", f.Shard, "error", err)
	e.s.Events.Publish(events.ForShard(e.s.Clock.Now(), f.Shard, events.Error{
		Source: Source, Kind: "recovery_failed", Message: err.Error(), CloseCode: f.Error.CloseCode}))
}
