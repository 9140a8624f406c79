package health

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/lifeline-bot/lifeline/core/clock"
	"github.com/lifeline-bot/lifeline/core/metrics"
)

// WorkerChecker is an optional interface of a Checker. A Checker whose
// KeepWorker method reports true has its calls made by a goroutine the
// monitor keeps for it between runs, rather than by a new goroutine for each
// attempt. It suits a check whose call path is deep (a remote call through
// gRPC, as a plugin check makes): a new goroutine starts with a small stack
// that such a call grows, by copying it, several times on every call, while
// a kept goroutine keeps the stack it has grown.
//
// A kept goroutine costs memory while the check waits for its next run, so
// checks that only read the Snapshot (the built-in ones) do not ask for one.
// It ends when the check is removed, when Stop is called, and when an
// attempt on it is abandoned (timed out, or its run cut short): it then
// ends as soon as that call returns, and the check's next attempt gets a new
// goroutine, so a hung call never holds up the check's later attempts.
type WorkerChecker interface {
	Checker
	// KeepWorker reports whether the monitor should keep a goroutine for
	// the check's calls between runs.
	KeepWorker() bool
}

// keepsWorker reports whether c asks for a kept goroutine.
func keepsWorker(c Checker) bool {
	w, ok := c.(WorkerChecker)
	return ok && w.KeepWorker()
}

// worker is a goroutine kept for one check's calls. It runs the calls sent
// on calls, one at a time, until calls is closed.
type worker struct {
	calls chan call
}

func (w *worker) loop() {
	for c := range w.calls {
		c.run()
	}
}

// workers is the kept goroutine of one registered check.
type workers struct {
	mu   sync.Mutex
	cur  *worker // the goroutine taking the check's next call; nil when none
	gone bool    // the check was removed: no goroutine is kept any more
}

// dispatch starts c: on the check's kept goroutine (started if there is
// none) when keep is set, else on a goroutine of its own. It returns the
// kept goroutine that took c, nil for a goroutine of its own. It never
// waits for an earlier call.
func (ws *workers) dispatch(c call, keep bool) *worker {
	ws.mu.Lock()
	defer ws.mu.Unlock()
	if !keep || ws.gone {
		// The check (after a Replace) no longer asks for a kept goroutine,
		// or it was removed while this run went on.
		ws.retireLocked(ws.cur)
		go c.run()
		return nil
	}
	if ws.cur == nil {
		ws.cur = &worker{calls: make(chan call, 1)}
		go ws.cur.loop()
	}
	// The kept goroutine is idle: it is handed a call only after it has
	// answered the previous one (an attempt abandoned on it retires it),
	// so the buffer is empty. Should it not be, the call goes to a fresh
	// goroutine rather than wait.
	select {
	case ws.cur.calls <- c:
		return ws.cur
	default:
		ws.retireLocked(ws.cur)
		ws.cur = &worker{calls: make(chan call, 1)}
		go ws.cur.loop()
		ws.cur.calls <- c
		return ws.cur
	}
}

// retire stops keeping w: it ends once the call it is making (if any) has
// returned. It does nothing when w is nil or no longer kept.
func (ws *workers) retire(w *worker) {
	ws.mu.Lock()
	defer ws.mu.Unlock()
	ws.retireLocked(w)
}

func (ws *workers) retireLocked(w *worker) {
	if w == nil || ws.cur != w {
		return
	}
	close(w.calls)
	ws.cur = nil
}

// stop ends the kept goroutine, if any, once its call in progress
// returns; a later call starts a new one (Monitor.Stop).
func (ws *workers) stop() {
	ws.mu.Lock()
	defer ws.mu.Unlock()
	ws.retireLocked(ws.cur)
}

// close ends the kept goroutine for good (the check was removed).
func (ws *workers) close() {
	ws.mu.Lock()
	defer ws.mu.Unlock()
	ws.gone = true
	ws.retireLocked(ws.cur)
}

// call is one call of a check's Check, made on a kept goroutine or on one
// of its own. It reports to its run's events unless the run has ended.
type call struct {
	ctx   context.Context
	check Checker
	snap  *metrics.Snapshot // the run's Snapshot, read-only
	e     *entry
	out   chan<- event
	ended <-chan struct{} // closed when the run has ended
	job   int
	seq   int
}

// run makes the call; a panic in Check becomes a failed Result.
func (c call) run() {
	var res Result
	defer func() {
		if p := recover(); p != nil {
			res = Result{Message: fmt.Sprintf("check panicked: %v", p)}
		}
		c.e.calls.Add(-1)
		select {
		case c.out <- event{kind: answered, job: c.job, seq: c.seq, res: res}:
		case <-c.ended: // the run is over; nobody waits for this result
		}
	}()
	res = c.check.Check(c.ctx, *c.snap)
}

// eventKind says what happened to a job of a run.
type eventKind int

const (
	answered eventKind = iota // a call returned
	timedOut                  // an attempt's timeout fired
	retryDue                  // a retry's delay is over
)

// event is something that happened to job (an index into the run's jobs);
// seq tells a current event from a late one.
type event struct {
	kind eventKind
	job  int
	seq  int
	res  Result
}

// phase is where a job of a run is.
type phase int

const (
	calling  phase = iota // an attempt's call is out
	retrying              // waiting for the retry delay
	finished              // the job has its result
)

// jobRun is one job's progress through a run.
type jobRun struct {
	job
	phase    phase
	seq      int // the current attempt or retry wait; events of others are late
	start    time.Time
	attempts int
	res      Result
	cut      bool
	timer    clock.Timer
	cancel   context.CancelFunc // the current attempt's context
	w        *worker            // the kept goroutine of the current call; nil when none
}

// runner runs one batch of jobs: every attempt, timeout and retry delay of
// every job is driven from the goroutine that called runJobs; only the
// checks' calls run elsewhere (on kept goroutines or goroutines of their
// own), and timers report through events.
type runner struct {
	m      *Monitor
	ctx    context.Context
	snap   metrics.Snapshot
	jobs   []jobRun
	events chan event
	ended  chan struct{}
	left   int // jobs not finished
}

// runJobs runs jobs concurrently against one Snapshot and records the
// results.
func (m *Monitor) runJobs(ctx context.Context, jobs []job) (Evaluation, error) {
	if len(jobs) == 0 {
		ev := m.Latest()
		ev.Results = nil
		return ev, nil
	}
	rn := &runner{
		m:      m,
		ctx:    ctx,
		snap:   m.source(),
		jobs:   make([]jobRun, len(jobs)),
		events: make(chan event, len(jobs)),
		ended:  make(chan struct{}),
		left:   len(jobs),
	}
	rn.run(jobs)
	close(rn.ended)
	results := make([]Result, len(jobs))
	cut := make([]bool, len(jobs))
	for i := range rn.jobs {
		results[i], cut[i] = rn.jobs[i].res, rn.jobs[i].cut
	}
	ev, recorded := m.record(jobs, results, cut)
	if recorded && m.onEval != nil {
		m.onEval(ev.clone())
	}
	if slices.Contains(cut, true) {
		return ev, fmt.Errorf("health: run of %d checks cut short: %w", len(jobs), context.Cause(ctx))
	}
	return ev, nil
}

// run drives every job to its result, or until ctx ends.
func (rn *runner) run(jobs []job) {
	start := rn.m.clk.Now()
	for i := range jobs {
		rn.jobs[i] = jobRun{job: jobs[i], start: start}
		rn.attempt(i)
	}
	for rn.left > 0 {
		select {
		case ev := <-rn.events:
			rn.handle(ev)
		case <-rn.ctx.Done():
			rn.cutAll()
			return
		}
	}
}

// send reports ev to the run, unless the run has ended.
func (rn *runner) send(ev event) {
	select {
	case rn.events <- ev:
	case <-rn.ended:
	}
}

// attempt makes one call of job i's check, bounded by its timeout. When the
// check already has maxCallsPerCheck calls that have not returned, the
// attempt is not started and the job finishes with a failure saying so.
func (rn *runner) attempt(i int) {
	jr := &rn.jobs[i]
	e := jr.e
	if n := e.calls.Add(1); n > maxCallsPerCheck {
		e.calls.Add(-1)
		msg := fmt.Sprintf("%d earlier calls are still running after their timeouts", n-1)
		if jr.attempts == 0 {
			jr.res = Result{Message: msg}
		} else {
			jr.res.Message += "; retry not started: " + msg
		}
		rn.finish(i)
		return
	}
	jr.seq++
	jr.phase = calling
	seq := jr.seq
	// The timer exists before Check is called, so the deadline is fixed
	// by then, whatever a fake clock does next.
	jr.timer = rn.m.clk.AfterFunc(jr.timeout, func() { rn.send(event{kind: timedOut, job: i, seq: seq}) })
	actx, cancel := context.WithCancel(rn.ctx)
	jr.cancel = cancel
	jr.w = e.workers.dispatch(call{ctx: actx, check: jr.check, snap: &rn.snap, e: e, out: rn.events, ended: rn.ended, job: i, seq: seq}, jr.keep)
}

// handle applies one event; late events (of an attempt or wait that is
// over) are dropped.
func (rn *runner) handle(ev event) {
	jr := &rn.jobs[ev.job]
	if ev.seq != jr.seq {
		return
	}
	switch {
	case ev.kind == answered && jr.phase == calling:
		jr.timer.Stop()
		jr.cancel()
		ev.res.TimedOut = false
		rn.attempted(ev.job, ev.res)
	case ev.kind == timedOut && jr.phase == calling:
		rn.abandon(jr)
		rn.attempted(ev.job, Result{TimedOut: true, Message: fmt.Sprintf("timed out after %s", jr.timeout)})
	case ev.kind == retryDue && jr.phase == retrying:
		rn.attempt(ev.job)
	}
}

// abandon gives up on job's call in flight: its context is canceled and its
// kept goroutine, if any, is retired, so the next attempt does not queue
// behind a call that may never return.
func (rn *runner) abandon(jr *jobRun) {
	jr.cancel()
	jr.e.workers.retire(jr.w)
	jr.w = nil
}

// attempted takes the result of job i's attempt: the job finishes, or is
// retried at once or after the retry delay.
func (rn *runner) attempted(i int, res Result) {
	jr := &rn.jobs[i]
	jr.attempts++
	jr.res = res
	if res.Passed || res.Pending || jr.attempts > jr.retries {
		rn.finish(i)
		return
	}
	if d := rn.m.retryDelay; d > 0 {
		jr.seq++
		jr.phase = retrying
		seq := jr.seq
		jr.timer = rn.m.clk.AfterFunc(d, func() { rn.send(event{kind: retryDue, job: i, seq: seq}) })
		return
	}
	rn.attempt(i)
}

// finish fills in what the monitor sets in job i's result.
func (rn *runner) finish(i int) {
	jr := &rn.jobs[i]
	jr.phase = finished
	jr.res.Name = jr.e.name
	jr.res.Time = jr.start
	jr.res.Duration = rn.m.clk.Since(jr.start)
	jr.res.Attempts = jr.attempts
	rn.left--
}

// cutAll ends every job not finished when the run's context ends; their
// results are dropped.
func (rn *runner) cutAll() {
	msg := "cut short: " + context.Cause(rn.ctx).Error()
	for i := range rn.jobs {
		jr := &rn.jobs[i]
		switch jr.phase {
		case finished:
			continue
		case calling:
			jr.timer.Stop()
			rn.abandon(jr)
		case retrying:
			jr.timer.Stop()
		}
		jr.phase = finished
		jr.res = Result{Name: jr.e.name, Message: msg}
		jr.cut = true
	}
	rn.left = 0
}
