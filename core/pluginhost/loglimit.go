package pluginhost

import (
	"io"
	"log"
	"sync"
	"time"

	hclog "github.com/hashicorp/go-hclog"

	"github.com/lifeline-bot/lifeline/core/clock"
)

// logLimiter is one plugin's budget of lines in the host's log: a token
// bucket of burst lines refilled at rate lines per second on the host's
// clock. A line that finds no token is dropped and counted; the count is
// reported (report) by the first line let through after the drops, unless
// a report was made less than LogReportInterval before, and otherwise by a
// timer LogReportInterval after the first line dropped since the last
// report. So a plugin that floods gets one report per interval, one that
// stops logging gets its last report within the interval, and nothing is
// dropped unsaid. A nil *logLimiter lets every line through.
type logLimiter struct {
	clk    clock.Clock
	rate   float64 // tokens per second
	burst  float64
	wg     *sync.WaitGroup // the host's: a report timer in flight
	report func(dropped int)

	mu       sync.Mutex
	tokens   float64
	last     time.Time // when tokens was last refilled
	pending  int       // lines dropped since the last report
	reported time.Time // when the last report was made; zero before it
	timer    clock.Timer
	seq      uint64 // bumped whenever the timer is armed or cancelled
	closed   bool
}

// newLogLimiter returns the limiter of Options o (after withDefaults), or
// nil when o.LogRate is negative (unlimited).
func newLogLimiter(o Options, wg *sync.WaitGroup, report func(int)) *logLimiter {
	if o.LogRate < 0 {
		return nil
	}
	return &logLimiter{clk: o.Clock, rate: o.LogRate, burst: float64(o.LogBurst), wg: wg, report: report,
		tokens: float64(o.LogBurst), last: o.Clock.Now()}
}

// allow reports whether one more line may reach the log, counting it as
// dropped when not. A line let through after drops may first report them.
// Under the limit with nothing to report, it takes a lock and reads the
// clock, and allocates nothing.
func (l *logLimiter) allow() bool {
	if l == nil {
		return true
	}
	now := l.clk.Now()
	l.mu.Lock()
	if l.closed {
		// The plugin is stopped: what its last calls log in flight goes
		// through.
		l.mu.Unlock()
		return true
	}
	if elapsed := now.Sub(l.last); elapsed > 0 {
		l.tokens = min(l.burst, l.tokens+elapsed.Seconds()*l.rate)
		l.last = now
	}
	if l.tokens < 1 {
		l.pending++
		if l.timer == nil {
			l.armLocked()
		}
		l.mu.Unlock()
		return false
	}
	l.tokens--
	if l.pending == 0 || (!l.reported.IsZero() && now.Sub(l.reported) < LogReportInterval) {
		l.mu.Unlock()
		return true
	}
	n := l.takeLocked(now)
	l.mu.Unlock()
	l.report(n)
	return true
}

// armLocked arms the report timer. l.mu must be held.
func (l *logLimiter) armLocked() {
	l.seq++
	seq := l.seq
	l.wg.Add(1)
	l.timer = l.clk.AfterFunc(LogReportInterval, func() {
		defer l.wg.Done()
		l.mu.Lock()
		if l.seq != seq {
			l.mu.Unlock() // cancelled after it fired
			return
		}
		l.timer = nil
		n := l.takeLocked(l.clk.Now())
		l.mu.Unlock()
		if n > 0 {
			l.report(n)
		}
	})
}

// takeLocked returns the lines dropped since the last report and starts a
// new count, cancelling the report timer. l.mu must be held.
func (l *logLimiter) takeLocked(now time.Time) int {
	n := l.pending
	l.pending = 0
	l.reported = now
	l.seq++
	if l.timer != nil {
		if l.timer.Stop() {
			l.wg.Done() // its callback will not run
		}
		l.timer = nil
	}
	return n
}

// close reports what is still to report and ends the limiter: no timer
// is left, and later lines go through.
func (l *logLimiter) close() {
	if l == nil {
		return
	}
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return
	}
	l.closed = true
	n := l.takeLocked(l.clk.Now())
	l.mu.Unlock()
	if n > 0 {
		l.report(n)
	}
}

// limitedLogger is the logger a plugin's lines go through on their way to
// the host's: each line the logger would write at its level takes a token
// of the plugin's logLimiter or is dropped, and its message and field
// names are escaped (safeLogText). Loggers derived from it (Named, With,
// ResetNamed) share the limiter, so everything go-plugin relays for the
// plugin counts against one budget.
type limitedLogger struct {
	hclog.Logger
	lim *logLimiter
}

var _ hclog.Logger = (*limitedLogger)(nil)

// admit reports whether a line at level is written: the logger would
// write it, and the plugin's budget allows it. A line the logger discards
// for its level costs nothing.
func (l *limitedLogger) admit(level hclog.Level) bool {
	var on bool
	switch level {
	case hclog.Trace:
		on = l.Logger.IsTrace()
	case hclog.Debug:
		on = l.Logger.IsDebug()
	case hclog.Warn:
		on = l.Logger.IsWarn()
	case hclog.Error:
		on = l.Logger.IsError()
	case hclog.Off:
		on = false
	default:
		on = l.Logger.IsInfo()
	}
	return on && l.lim.allow()
}

// Log writes a line at level, within the plugin's budget.
func (l *limitedLogger) Log(level hclog.Level, msg string, args ...any) {
	if l.admit(level) {
		l.Logger.Log(level, safeLogText(msg), safeKeyvals(args)...)
	}
}

// Trace writes a trace line, within the plugin's budget.
func (l *limitedLogger) Trace(msg string, args ...any) {
	if l.admit(hclog.Trace) {
		l.Logger.Trace(safeLogText(msg), safeKeyvals(args)...)
	}
}

// Debug writes a debug line, within the plugin's budget.
func (l *limitedLogger) Debug(msg string, args ...any) {
	if l.admit(hclog.Debug) {
		l.Logger.Debug(safeLogText(msg), safeKeyvals(args)...)
	}
}

// Info writes an info line, within the plugin's budget.
func (l *limitedLogger) Info(msg string, args ...any) {
	if l.admit(hclog.Info) {
		l.Logger.Info(safeLogText(msg), safeKeyvals(args)...)
	}
}

// Warn writes a warning, within the plugin's budget.
func (l *limitedLogger) Warn(msg string, args ...any) {
	if l.admit(hclog.Warn) {
		l.Logger.Warn(safeLogText(msg), safeKeyvals(args)...)
	}
}

// Error writes an error line, within the plugin's budget.
func (l *limitedLogger) Error(msg string, args ...any) {
	if l.admit(hclog.Error) {
		l.Logger.Error(safeLogText(msg), safeKeyvals(args)...)
	}
}

// With returns a logger with args on every line, sharing the budget.
func (l *limitedLogger) With(args ...any) hclog.Logger {
	return &limitedLogger{Logger: l.Logger.With(safeKeyvals(args)...), lim: l.lim}
}

// Named returns a sub-logger, sharing the budget.
func (l *limitedLogger) Named(name string) hclog.Logger {
	return &limitedLogger{Logger: l.Logger.Named(safeLogText(name)), lim: l.lim}
}

// ResetNamed returns a logger with name as its name, sharing the budget.
func (l *limitedLogger) ResetNamed(name string) hclog.Logger {
	return &limitedLogger{Logger: l.Logger.ResetNamed(safeLogText(name)), lim: l.lim}
}

// StandardWriter returns a writer whose every line is an info line of l.
func (l *limitedLogger) StandardWriter(*hclog.StandardLoggerOptions) io.Writer {
	return &lineLogger{log: l.Info}
}

// StandardLogger returns a standard library logger writing to
// StandardWriter.
func (l *limitedLogger) StandardLogger(opts *hclog.StandardLoggerOptions) *log.Logger {
	return log.New(l.StandardWriter(opts), "", 0)
}
