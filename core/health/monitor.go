package health

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/lifeline-bot/lifeline/core/clock"
	"github.com/lifeline-bot/lifeline/core/events"
	"github.com/lifeline-bot/lifeline/core/metrics"
)

// Defaults of Options, used when a field is left zero.
const (
	// DefaultInterval is the time between runs of a check.
	DefaultInterval = 30 * time.Second
	// DefaultTimeout bounds each attempt of a check.
	DefaultTimeout = 10 * time.Second
	// DefaultRetries is how many more attempts a failed attempt gets.
	DefaultRetries = 3
	// DefaultTick is how often the Start loop looks for due checks.
	DefaultTick = time.Second
	// DefaultHistorySize is how many evaluations the history keeps.
	DefaultHistorySize = 100
	// DefaultWindow is how many recent scores stability and trend use.
	DefaultWindow = 10
	// DefaultDeadBand is the slope (score points per evaluation) the trend
	// must exceed to be improving or degrading.
	DefaultDeadBand = 1.0
	// DefaultCriticalWeight multiplies a critical check's weight.
	DefaultCriticalWeight = 2.0
	// DefaultUnhealthyBelow is the score under which failing non-critical
	// checks mean Unhealthy rather than Degraded.
	DefaultUnhealthyBelow = 50.0
)

// maxCallsPerCheck bounds the calls of one registered check that have not
// returned, each on a goroutine of its own: the call being waited for plus
// at most one abandoned after its timeout.
const maxCallsPerCheck = 2

// Options configures a Monitor. The zero value is valid; each field's
// comment states its default. Out-of-range values (a negative duration, a
// negative size) also take the default.
type Options struct {
	// Clock is the time source for scheduling, timeouts, retry delays and
	// result times. Default: clock.Real.
	Clock clock.Clock
	// Events receives HEALTH_CHANGED when the status changes. It is called
	// with the monitor's lock held, so it must not block or call back into
	// the Monitor (an events.Bus does neither). Default: events.Discard.
	Events events.Publisher
	// Shard is the shard HEALTH_CHANGED events concern; events.NoShard
	// makes them process-wide. Default: 0.
	Shard int
	// Source returns the Snapshot a run's checks judge. It is called once
	// per run, and every check in that run sees the same Snapshot. It is
	// not bounded by any timeout, so it must return quickly (a metrics
	// Recorder's Build, or a stored Snapshot, does).
	// Default: a Snapshot with only Time set (from Clock).
	Source func() metrics.Snapshot
	// Interval is the time between runs of a check whose CheckConfig
	// leaves Interval zero. Default: DefaultInterval (30s).
	Interval time.Duration
	// Timeout bounds each attempt of a check whose CheckConfig leaves
	// Timeout zero. Default: DefaultTimeout (10s).
	Timeout time.Duration
	// Retries is how many more attempts a failed attempt gets, for checks
	// whose CheckConfig leaves Retries zero. Default (0): DefaultRetries
	// (3); negative: no retries.
	Retries int
	// RetryDelay is the wait (on Clock) before each retry. Default: 0,
	// retry at once.
	RetryDelay time.Duration
	// Tick is how often the loop Start runs looks for due checks; a check
	// runs on the first tick at or after it falls due. It does not apply
	// to RunOnce and RunDue. Default: DefaultTick (1s).
	Tick time.Duration
	// HistorySize bounds the history: it keeps the last HistorySize
	// evaluations (one per run, with that run's results).
	// Default: DefaultHistorySize (100).
	HistorySize int
	// Window is how many recent scores stability and trend look at; it is
	// capped at HistorySize. Default: DefaultWindow (10).
	Window int
	// DeadBand is the slope, in score points per evaluation, that the
	// trend must exceed to be improving or degrading.
	// Default: DefaultDeadBand (1.0).
	DeadBand float64
	// CriticalWeight multiplies a critical check's weight in the score.
	// Default: DefaultCriticalWeight (2).
	CriticalWeight float64
	// UnhealthyBelow is the score under which failing non-critical checks
	// make the status Unhealthy rather than Degraded.
	// Default: DefaultUnhealthyBelow (50).
	UnhealthyBelow float64
	// OnEvaluation, when set, is called with every evaluation a run
	// produces, after the monitor's state is updated, in the goroutine that
	// made the run (the caller of RunOnce or RunDue, or the Start loop's
	// goroutine for that batch; runs of the Start loop may overlap, so
	// calls may be concurrent). It is not called for re-evaluations caused by Remove or
	// Configure. Default: nil.
	OnEvaluation func(Evaluation)
}

// Evaluation is the monitor's verdict after one run: the run's results and
// the values derived from every enabled check's last result. History keeps
// the last Options.HistorySize of them.
type Evaluation struct {
	// Time is when the evaluation was made.
	Time time.Time `json:"time"`
	// Results are the results of the run, sorted by check name; empty
	// when nothing ran.
	Results []Result `json:"results,omitempty"`
	// Status, Score, Stability, Reliability and Trend are described in the
	// package comment.
	Status      Status  `json:"status"`
	Score       float64 `json:"score"`
	Stability   float64 `json:"stability"`
	Reliability float64 `json:"reliability"`
	Trend       Trend   `json:"trend"`
	// Failing names the enabled checks whose last verdict (the last result
	// that was not pending) failed, sorted.
	Failing []string `json:"failing,omitempty"`
}

func (e Evaluation) clone() Evaluation {
	e.Results = slices.Clone(e.Results)
	e.Failing = slices.Clone(e.Failing)
	return e
}

// View returns the evaluation as the metrics Snapshot carries it.
func (e Evaluation) View() metrics.HealthView {
	return metrics.HealthView{Score: e.Score, Status: e.Status.String(), Trend: e.Trend.String()}
}

// Monitor runs health checks and derives the overall health from their
// results. Create it with NewMonitor; all methods are safe for concurrent
// use.
type Monitor struct {
	clk            clock.Clock
	pub            events.Publisher
	shard          int
	source         func() metrics.Snapshot
	interval       time.Duration // interval, timeout and retries: guarded by mu (SetDefaults)
	timeout        time.Duration
	retries        int
	retryDelay     time.Duration
	tick           time.Duration
	historySize    int
	window         int
	deadBand       float64
	criticalWeight float64
	unhealthyBelow float64
	onEval         func(Evaluation)

	wake chan struct{} // nudges the Start loop after Add, Configure, Replace

	mu       sync.Mutex
	checks   map[string]*entry
	hist     []Evaluation // ring buffer of at most historySize
	histNext int          // where the next evaluation goes once hist is full
	current  Evaluation
	// histPassed and histRuns count the passing and the judged (not
	// pending) results in hist, for reliability.
	histPassed, histRuns int

	runMu  sync.Mutex
	cancel context.CancelFunc
	done   chan struct{}
}

// entry is one registered check. Fields other than calls are guarded by
// Monitor.mu.
type entry struct {
	name      string
	check     Checker
	cfg       CheckConfig
	nextDue   time.Time
	lastStart time.Time
	running   bool
	last      Result // the last verdict: the last result that was not pending
	hasLast   bool
	pending   Result // the last run's result, when it was pending
	isPending bool
	calls     atomic.Int32 // calls of check.Check not yet returned
	workers   workers      // the goroutine kept for its calls (WorkerChecker)
}

// job is one check taken for a run, with its settings fixed at take time.
type job struct {
	e       *entry
	check   Checker
	timeout time.Duration
	retries int
	keep    bool // make the calls on the check's kept goroutine
}

// NewMonitor returns a Monitor with no checks. Its status is Unknown and
// its score 100 until a run gives it results.
func NewMonitor(opts Options) *Monitor {
	m := &Monitor{
		clk:            clock.Or(opts.Clock),
		pub:            events.OrDiscard(opts.Events),
		shard:          opts.Shard,
		source:         opts.Source,
		interval:       orDuration(opts.Interval, DefaultInterval),
		timeout:        orDuration(opts.Timeout, DefaultTimeout),
		retryDelay:     max(opts.RetryDelay, 0),
		tick:           orDuration(opts.Tick, DefaultTick),
		historySize:    orInt(opts.HistorySize, DefaultHistorySize),
		window:         orInt(opts.Window, DefaultWindow),
		deadBand:       orFloat(opts.DeadBand, DefaultDeadBand),
		criticalWeight: orFloat(opts.CriticalWeight, DefaultCriticalWeight),
		unhealthyBelow: orFloat(opts.UnhealthyBelow, DefaultUnhealthyBelow),
		onEval:         opts.OnEvaluation,
		wake:           make(chan struct{}, 1),
		checks:         make(map[string]*entry),
	}
	m.retries = retriesOr(opts.Retries)
	m.window = min(m.window, m.historySize)
	if m.source == nil {
		clk := m.clk
		m.source = func() metrics.Snapshot { return metrics.Snapshot{Time: clk.Now()} }
	}
	m.current = Evaluation{Time: m.clk.Now(), Status: Unknown, Score: 100, Stability: 100, Reliability: 100, Trend: Stable}
	return m
}

// retriesOr applies the Retries convention: 0 is DefaultRetries, a
// negative number none.
func retriesOr(n int) int {
	switch {
	case n < 0:
		return 0
	case n == 0:
		return DefaultRetries
	}
	return n
}

func orDuration(v, def time.Duration) time.Duration {
	if v <= 0 {
		return def
	}
	return v
}

func orInt(v, def int) int {
	if v <= 0 {
		return def
	}
	return v
}

func orFloat(v, def float64) float64 {
	if v <= 0 {
		return def
	}
	return v
}

// effective settings of one check.
func (m *Monitor) intervalOf(c CheckConfig) time.Duration { return orDuration(c.Interval, m.interval) }
func (m *Monitor) timeoutOf(c CheckConfig) time.Duration  { return orDuration(c.Timeout, m.timeout) }
func (m *Monitor) weightOf(c CheckConfig) float64         { return orFloat(c.Weight, 1) }
func (m *Monitor) retriesOf(c CheckConfig) int {
	switch {
	case c.Retries < 0:
		return 0
	case c.Retries == 0:
		return m.retries
	default:
		return c.Retries
	}
}

// Add registers c under name. The check is due at once: the Start loop
// runs it promptly, and so do RunDue and RunOnce.
func (m *Monitor) Add(name string, c Checker, cfg CheckConfig) error {
	if name == "" {
		return fmt.Errorf("health: add: %w: empty check name", ErrInvalidConfig)
	}
	if c == nil {
		return fmt.Errorf("health: add %q: %w: nil Checker", name, ErrInvalidConfig)
	}
	if err := cfg.validate(); err != nil {
		return fmt.Errorf("health: add %q: %w", name, err)
	}
	m.mu.Lock()
	if _, ok := m.checks[name]; ok {
		m.mu.Unlock()
		return fmt.Errorf("health: add %q: %w", name, ErrDuplicateCheck)
	}
	m.checks[name] = &entry{name: name, check: c, cfg: cfg, nextDue: m.clk.Now()}
	m.mu.Unlock()
	m.nudge()
	return nil
}

// Remove unregisters the check called name. A run of it in progress
// finishes, but its result is dropped. The goroutine kept for its calls
// (WorkerChecker), if any, ends once its call in progress returns. The
// status and score are derived again at once without it.
func (m *Monitor) Remove(name string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	e, ok := m.checks[name]
	if !ok {
		return fmt.Errorf("health: remove %q: %w", name, ErrUnknownCheck)
	}
	delete(m.checks, name)
	e.workers.close()
	m.refreshLocked()
	return nil
}

// Configure replaces the settings of the check called name. A run in
// progress keeps the settings it started with; the next run uses cfg. The
// next run falls due one new interval after the last run started (at once
// if that time has passed). The status and score are derived again at once,
// since Critical, Weight and Disabled change them.
func (m *Monitor) Configure(name string, cfg CheckConfig) error {
	if err := cfg.validate(); err != nil {
		return fmt.Errorf("health: configure %q: %w", name, err)
	}
	m.mu.Lock()
	e, ok := m.checks[name]
	if !ok {
		m.mu.Unlock()
		return fmt.Errorf("health: configure %q: %w", name, ErrUnknownCheck)
	}
	e.cfg = cfg
	if !e.lastStart.IsZero() {
		e.nextDue = e.lastStart.Add(m.intervalOf(cfg))
	}
	m.refreshLocked()
	m.mu.Unlock()
	m.nudge()
	return nil
}

// Defaults are the settings a check takes when its CheckConfig leaves
// them zero: the monitor-wide Interval, Timeout and Retries of Options,
// which SetDefaults changes while the monitor runs. Zero and negative
// values mean what they mean in Options.
type Defaults struct {
	// Interval is the time between runs. Default: DefaultInterval (30s).
	Interval time.Duration
	// Timeout bounds each attempt. Default: DefaultTimeout (10s).
	Timeout time.Duration
	// Retries is how many more attempts a failed attempt gets. Default
	// (0): DefaultRetries (3); negative: no retries.
	Retries int
}

// SetDefaults replaces the monitor-wide interval, timeout and retries, the
// settings of every check whose CheckConfig leaves them zero (a policy
// reload changing its health block, for instance). A run in progress keeps
// the settings it started with. A check that follows the default interval
// falls due one new interval after its last run started (at once if that
// time has passed), as Configure does.
func (m *Monitor) SetDefaults(d Defaults) {
	m.mu.Lock()
	m.interval = orDuration(d.Interval, DefaultInterval)
	m.timeout = orDuration(d.Timeout, DefaultTimeout)
	m.retries = retriesOr(d.Retries)
	for _, e := range m.checks {
		if e.cfg.Interval == 0 && !e.lastStart.IsZero() {
			e.nextDue = e.lastStart.Add(m.interval)
		}
	}
	m.mu.Unlock()
	m.nudge()
}

// Defaults returns the monitor-wide settings in force, defaults filled in
// (Retries is -1 when failed attempts are not retried).
func (m *Monitor) Defaults() Defaults {
	m.mu.Lock()
	defer m.mu.Unlock()
	d := Defaults{Interval: m.interval, Timeout: m.timeout, Retries: m.retries}
	if d.Retries == 0 {
		d.Retries = -1
	}
	return d
}

// Replace swaps the Checker of the check called name, keeping its settings
// and last result, and makes it due at once. A run in progress finishes
// with the old Checker, and calls of the old Checker abandoned after their
// timeouts still count against the check's limit of outstanding calls.
func (m *Monitor) Replace(name string, c Checker) error {
	if c == nil {
		return fmt.Errorf("health: replace %q: %w: nil Checker", name, ErrInvalidConfig)
	}
	m.mu.Lock()
	e, ok := m.checks[name]
	if !ok {
		m.mu.Unlock()
		return fmt.Errorf("health: replace %q: %w", name, ErrUnknownCheck)
	}
	e.check = c
	e.nextDue = m.clk.Now()
	m.mu.Unlock()
	m.nudge()
	return nil
}

func (m *Monitor) nudge() {
	select {
	case m.wake <- struct{}{}:
	default:
	}
}

// Start runs the checks on their intervals in a goroutine until ctx ends or
// Stop is called. Every check is due when added, so the first run happens
// at once. The loop looks for due checks every Options.Tick; it launches
// each batch of due checks in its own goroutine and does not wait for it,
// so a slow check delays nobody else. A check whose previous run is still
// in progress is skipped until that run ends; runs missed meanwhile are not
// made up. Start returns ErrRunning if the loop is already running.
func (m *Monitor) Start(ctx context.Context) error {
	m.runMu.Lock()
	defer m.runMu.Unlock()
	if m.done != nil {
		select {
		case <-m.done: // the previous loop ended with its context
			m.cancel()
		default:
			return fmt.Errorf("health: start: %w", ErrRunning)
		}
	}
	ctx, cancel := context.WithCancel(ctx)
	tk := m.clk.NewTicker(m.tick)
	done := make(chan struct{})
	m.cancel, m.done = cancel, done
	go func() {
		defer close(done)
		m.loop(ctx, tk)
	}()
	return nil
}

// Stop ends the loop Start began and waits for it and its runs to return.
// Runs in progress are cut short: their checks' contexts are canceled, and
// results cut off that way are dropped. Stop does not wait for checks that
// ignore their context (see the package comment). Then the goroutines kept
// for checks' calls (WorkerChecker) end, each once its call in progress (if
// any) returns; a later run starts new ones. On a monitor that is not
// running, Stop only ends the kept goroutines.
func (m *Monitor) Stop() {
	m.runMu.Lock()
	cancel, done := m.cancel, m.done
	m.cancel, m.done = nil, nil
	m.runMu.Unlock()
	if cancel != nil {
		cancel()
		<-done
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, e := range m.checks {
		e.workers.stop()
	}
}

func (m *Monitor) loop(ctx context.Context, tk clock.Ticker) {
	var wg sync.WaitGroup
	defer wg.Wait()
	defer tk.Stop()
	for {
		if jobs := m.take(m.clk.Now(), false); len(jobs) > 0 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				_, _ = m.runJobs(ctx, jobs)
			}()
		}
		select {
		case <-ctx.Done():
			return
		case <-tk.C():
		case <-m.wake:
		}
	}
}

// RunOnce runs every enabled check now, whether due or not, waits for the
// results and returns the evaluation. A check whose run is already in
// progress (from the Start loop) is skipped. When nothing runs, RunOnce
// returns the latest evaluation unchanged, with no Results. If ctx ends
// first, the results it cut off are dropped, the rest are recorded, and the
// error wraps ctx.Err().
func (m *Monitor) RunOnce(ctx context.Context) (Evaluation, error) {
	return m.runJobs(ctx, m.take(m.clk.Now(), true))
}

// RunDue is RunOnce for the checks that are due only, for a caller that
// drives the monitor from its own tick instead of calling Start.
func (m *Monitor) RunDue(ctx context.Context) (Evaluation, error) {
	return m.runJobs(ctx, m.take(m.clk.Now(), false))
}

// take marks the checks to run now as running and returns them sorted by
// name: every idle enabled check when all is set, else the due ones.
func (m *Monitor) take(now time.Time, all bool) []job {
	m.mu.Lock()
	defer m.mu.Unlock()
	var jobs []job
	for _, e := range m.checks {
		if e.cfg.Disabled || e.running {
			continue
		}
		due := !now.Before(e.nextDue)
		if !all && !due {
			continue
		}
		iv := m.intervalOf(e.cfg)
		// Keep the cadence (due + interval) unless that is already past.
		next := e.nextDue.Add(iv)
		if !due || !next.After(now) {
			next = now.Add(iv)
		}
		e.nextDue = next
		e.lastStart = now
		e.running = true
		jobs = append(jobs, job{e: e, check: e.check, timeout: m.timeoutOf(e.cfg), retries: m.retriesOf(e.cfg), keep: keepsWorker(e.check)})
	}
	sort.Slice(jobs, func(i, j int) bool { return jobs[i].e.name < jobs[j].e.name })
	return jobs
}

// record stores the results that were not cut off, derives a new
// evaluation from them, and appends it to the history. It reports false,
// returning the latest evaluation, when no result was kept.
func (m *Monitor) record(jobs []job, results []Result, cut []bool) (Evaluation, bool) {
	now := m.clk.Now()
	m.mu.Lock()
	defer m.mu.Unlock()
	var kept []Result
	judged := false
	for i, j := range jobs {
		j.e.running = false
		if cut[i] || m.checks[j.e.name] != j.e {
			continue // cut off, or removed while it ran
		}
		r := results[i]
		kept = append(kept, r)
		j.e.pending, j.e.isPending = r, r.Pending
		if r.Pending {
			// Not judged yet: due again at the next tick, the verdict
			// (if any) unchanged.
			j.e.nextDue = now
			continue
		}
		j.e.last, j.e.hasLast = r, true
		judged = true
	}
	if !judged {
		// Nothing was judged (every result cut off or pending): the
		// verdict stands and the history does not move.
		ev := m.current.clone()
		ev.Results = nil
		return ev, false
	}
	ev := m.deriveLocked(now)
	ev.Results = kept
	m.pushLocked(&ev)
	m.setCurrentLocked(ev)
	return ev.clone(), true
}

// deriveLocked computes status, score and failing checks from every
// enabled check's last result.
func (m *Monitor) deriveLocked(now time.Time) Evaluation {
	vs := make([]verdict, 0, len(m.checks))
	for _, e := range m.checks {
		if e.cfg.Disabled || !e.hasLast {
			continue
		}
		vs = append(vs, verdict{name: e.name, passed: e.last.Passed, critical: e.cfg.Critical, weight: m.weightOf(e.cfg)})
	}
	score := scoreOf(vs, m.criticalWeight)
	status, failing := statusOf(vs, score, m.unhealthyBelow)
	return Evaluation{Time: now, Status: status, Score: score, Failing: failing}
}

// pushLocked appends ev to the history and fills in the values derived
// from the history: stability, reliability and trend. Reliability's counts
// are kept as evaluations enter and leave the history, so a run costs the
// same however long the history is.
func (m *Monitor) pushLocked(ev *Evaluation) {
	if len(m.hist) < m.historySize {
		m.hist = append(m.hist, *ev)
	} else {
		gone := &m.hist[m.histNext]
		p, r := countVerdicts(gone.Results)
		m.histPassed -= p
		m.histRuns -= r
		*gone = *ev
		m.histNext = (m.histNext + 1) % m.historySize
	}
	p, r := countVerdicts(ev.Results)
	m.histPassed += p
	m.histRuns += r
	n := len(m.hist)
	scores := make([]float64, 0, m.window)
	for i := max(n-m.window, 0); i < n; i++ {
		scores = append(scores, m.hist[(m.histNext+i)%n].Score) // oldest first
	}
	ev.Stability = stabilityOf(scores)
	ev.Trend = trendOf(scores, m.deadBand)
	ev.Reliability = reliabilityOf(m.histPassed, m.histRuns)
	m.hist[(m.histNext+n-1)%n] = *ev
}

// countVerdicts counts the results that are not pending, and the passing
// ones among them.
func countVerdicts(rs []Result) (passed, runs int) {
	for _, r := range rs {
		if r.Pending {
			continue
		}
		runs++
		if r.Passed {
			passed++
		}
	}
	return passed, runs
}

// refreshLocked derives status and score again after a configuration
// change, keeping the history-based values of the latest evaluation.
func (m *Monitor) refreshLocked() {
	ev := m.deriveLocked(m.clk.Now())
	ev.Stability, ev.Reliability, ev.Trend = m.current.Stability, m.current.Reliability, m.current.Trend
	m.setCurrentLocked(ev)
}

func (m *Monitor) setCurrentLocked(ev Evaluation) {
	from := m.current.Status
	m.current = ev
	if from == ev.Status {
		return
	}
	data := events.HealthChange{From: from.String(), To: ev.Status.String(), Score: ev.Score, Failing: slices.Clone(ev.Failing)}
	if m.shard == events.NoShard {
		m.pub.Publish(events.New(ev.Time, data))
	} else {
		m.pub.Publish(events.ForShard(ev.Time, m.shard, data))
	}
}

// Latest returns the current evaluation: the last run's, or a newer
// re-derivation after Remove or Configure (which carries no Results).
func (m *Monitor) Latest() Evaluation {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.current.clone()
}

// Status returns the current status.
func (m *Monitor) Status() Status {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.current.Status
}

// View returns the current verdict as metrics.HealthView, ready for the
// metrics Recorder.
func (m *Monitor) View() metrics.HealthView {
	return m.Latest().View()
}

// History returns the recorded evaluations, oldest first. It holds at most
// Options.HistorySize of them.
func (m *Monitor) History() []Evaluation {
	m.mu.Lock()
	defer m.mu.Unlock()
	n := len(m.hist)
	out := make([]Evaluation, n)
	for i := range n {
		out[i] = m.hist[(m.histNext+i)%n].clone()
	}
	return out
}

// CheckState is one check as Diagnostics reports it.
type CheckState struct {
	// Name is the name the check is registered under.
	Name string `json:"name"`
	// Config is the configuration as given to Add or Configure.
	Config CheckConfig `json:"config"`
	// Interval, Timeout and Retries are the settings in effect, the
	// monitor's defaults filled in.
	Interval time.Duration `json:"interval"`
	Timeout  time.Duration `json:"timeout"`
	Retries  int           `json:"retries"`
	// Running reports that a run of the check is in progress.
	Running bool `json:"running"`
	// Calls counts calls of the check that have not returned, including at
	// most one abandoned after its timeout.
	Calls int `json:"calls"`
	// NextDue is when the check next falls due.
	NextDue time.Time `json:"next_due"`
	// Last is the check's last verdict: its last result that was not
	// pending; nil before its first.
	Last *Result `json:"last,omitempty"`
	// Pending is the last run's result when it was pending (the check
	// could not judge yet, Result.Pending): what it waits for is in its
	// Message. Nil when the last run judged, or before the first run.
	Pending *Result `json:"pending,omitempty"`
}

// Diagnostics is the monitor's state in one value, for a diagnostics
// endpoint or a log line.
type Diagnostics struct {
	// Time, Status, Score, Stability, Reliability, Trend and Failing are
	// those of the current evaluation (see Latest).
	Time        time.Time `json:"time"`
	Status      Status    `json:"status"`
	Score       float64   `json:"score"`
	Stability   float64   `json:"stability"`
	Reliability float64   `json:"reliability"`
	Trend       Trend     `json:"trend"`
	Failing     []string  `json:"failing,omitempty"`
	// Checks lists every registered check, sorted by name.
	Checks []CheckState `json:"checks"`
}

// Diagnostics returns every check's settings and last result with the
// current score, status, stability, reliability and trend.
func (m *Monitor) Diagnostics() Diagnostics {
	m.mu.Lock()
	defer m.mu.Unlock()
	c := m.current
	d := Diagnostics{
		Time: c.Time, Status: c.Status, Score: c.Score, Stability: c.Stability,
		Reliability: c.Reliability, Trend: c.Trend, Failing: slices.Clone(c.Failing),
		Checks: make([]CheckState, 0, len(m.checks)),
	}
	for _, e := range m.checks {
		s := CheckState{
			Name: e.name, Config: e.cfg,
			Interval: m.intervalOf(e.cfg), Timeout: m.timeoutOf(e.cfg), Retries: m.retriesOf(e.cfg),
			Running: e.running, Calls: int(e.calls.Load()), NextDue: e.nextDue,
		}
		if e.hasLast {
			last := e.last
			s.Last = &last
		}
		if e.isPending {
			p := e.pending
			s.Pending = &p
		}
		d.Checks = append(d.Checks, s)
	}
	sort.Slice(d.Checks, func(i, j int) bool { return d.Checks[i].Name < d.Checks[j].Name })
	return d
}
