package pluginhost

import (
	"fmt"
	"io"
	"strings"
	"sync"
	"testing"
	"time"

	hclog "github.com/hashicorp/go-hclog"

	"github.com/lifeline-bot/lifeline/core/clock"
	"github.com/lifeline-bot/lifeline/core/events"
	"github.com/lifeline-bot/lifeline/sdk"
)

// dropEvents keeps the PLUGIN_LOGS_DROPPED events a host publishes.
type dropEvents struct {
	mu  sync.Mutex
	got []events.PluginLogs
	ch  chan struct{} // receives after every event
}

func (d *dropEvents) Publish(e events.Event) {
	if pl, ok := e.Data.(events.PluginLogs); ok {
		d.mu.Lock()
		d.got = append(d.got, pl)
		d.mu.Unlock()
		d.ch <- struct{}{}
	}
}

func (d *dropEvents) all() []events.PluginLogs {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([]events.PluginLogs(nil), d.got...)
}

func (d *dropEvents) total() int {
	n := 0
	for _, e := range d.all() {
		n += e.Dropped
	}
	return n
}

// await waits (real time, bounded) for the next event, which a report
// timer's callback publishes from a goroutine of its own.
func (d *dropEvents) await(t *testing.T) {
	t.Helper()
	select {
	case <-d.ch:
	case <-time.After(20 * time.Second):
		t.Fatal("no PLUGIN_LOGS_DROPPED within 20s")
	}
}

// budget is one plugin's loggers on a fake clock, without a process.
type budget struct {
	t   *testing.T
	clk *clock.Fake
	h   *Host
	m   *managed
	out *syncBuffer
	evs *dropEvents
}

func newBudget(t *testing.T, rate float64, burst int, level hclog.Level) *budget {
	t.Helper()
	b := &budget{t: t, clk: clock.NewFake(time.Time{}), out: &syncBuffer{}, evs: &dropEvents{ch: make(chan struct{}, 100)}}
	b.h = New(Options{Clock: b.clk, Events: b.evs, LogRate: rate, LogBurst: burst,
		Logger: hclog.New(&hclog.LoggerOptions{Output: b.out, Level: level})})
	b.m = newManaged(b.h, Spec{Name: "p"})
	t.Cleanup(b.stop)
	return b
}

// stop stops the plugin (which reports what is left) and the host.
func (b *budget) stop() {
	b.m.stop("test over")
	b.h.Stop()
}

// lines counts the plugin's lines in the log ("line N").
func (b *budget) lines() int { return strings.Count(b.out.String(), ": line ") }

// reports returns the host's WARN lines about dropped lines.
func (b *budget) reports() []string {
	var out []string
	for _, l := range strings.Split(b.out.String(), "\n") {
		if strings.Contains(l, "[WARN]  plugin.p: dropped ") {
			out = append(out, l)
		}
	}
	return out
}

func (b *budget) log(n int) {
	for i := range n {
		b.m.plog.Info("line " + fmt.Sprint(i))
	}
}

// A plugin gets a burst of lines, then the rate; what it logs beyond is
// dropped, and reported (WARN and PLUGIN_LOGS_DROPPED) by the next line let
// through, before that line.
func TestLogBudgetBurstThenRateAndReportWhenLinesFlowAgain(t *testing.T) {
	b := newBudget(t, 2, 5, hclog.Info)
	b.log(20)
	if n := b.lines(); n != 5 {
		t.Fatalf("%d lines of a burst of 5 written", n)
	}
	if len(b.reports()) != 0 || len(b.evs.all()) != 0 {
		t.Fatalf("reported before lines flowed again:\n%s", b.out)
	}
	b.clk.Advance(250 * time.Millisecond) // half a token at 2/s
	b.log(1)
	b.clk.Advance(250 * time.Millisecond)
	b.m.plog.Info("line after")
	out := b.out.String()
	report := "[WARN]  plugin.p: dropped 16 log lines from plugin p: limit=\"2 lines/s, bursts of 5\""
	if i, j := strings.Index(out, report), strings.Index(out, "line after"); i < 0 || j < i {
		t.Fatalf("want %q before the line let through:\n%s", report, out)
	}
	if got := b.evs.all(); len(got) != 1 || got[0] != (events.PluginLogs{Name: "p", Dropped: 16}) {
		t.Fatalf("events = %+v", got)
	}
}

// Under a sustained flood, drops are reported at most once per
// LogReportInterval, and every line is either written or counted.
func TestLogBudgetReportsAtMostOncePerInterval(t *testing.T) {
	b := newBudget(t, 100, 1000, hclog.Info)
	const steps, perStep = 250, 20 // 25 s, 200 lines/s: twice the rate
	for range steps {
		b.log(perStep)
		b.clk.Advance(100 * time.Millisecond)
	}
	// The burst runs out 10 s in: the next line let through reports the
	// drops; 10 s later the next report is due, made by the first line
	// let through or by the timer (on a goroutine of its own: wait for
	// it); the last, at 25 s, when the plugin stops.
	for len(b.evs.all()) < 2 {
		b.evs.await(t)
	}
	b.stop()
	reports := b.reports()
	if len(reports) != 3 {
		t.Fatalf("%d reports in 25 s of flood:\n%s", len(reports), strings.Join(reports, "\n"))
	}
	if written, dropped := b.lines(), b.evs.total(); written+dropped != steps*perStep {
		t.Fatalf("%d lines written + %d dropped, want %d logged", written, dropped, steps*perStep)
	}
	if written := b.lines(); written > 1000+25*100+1 {
		t.Fatalf("%d lines written in 25 s at 100/s with a burst of 1000", written)
	}
}

// A plugin that goes quiet after a flood has its drops reported by the
// timer, LogReportInterval after the first line dropped.
func TestLogBudgetReportsAfterTheIntervalWhenThePluginGoesQuiet(t *testing.T) {
	b := newBudget(t, 1, 2, hclog.Info)
	b.log(7)
	if b.clk.Waiters() != 1 {
		t.Fatalf("%d timers after drops, want the report's", b.clk.Waiters())
	}
	b.clk.Advance(LogReportInterval - time.Millisecond)
	if len(b.evs.all()) != 0 {
		t.Fatalf("reported early: %+v", b.evs.all())
	}
	b.clk.Advance(time.Millisecond)
	b.evs.await(t)
	if got := b.evs.all(); len(got) != 1 || got[0].Dropped != 5 {
		t.Fatalf("events = %+v", got)
	}
	if b.clk.Waiters() != 0 {
		t.Fatalf("%d timers left after the report", b.clk.Waiters())
	}
}

// Stopping the plugin reports what is left at once and leaves no timer.
func TestLogBudgetStopReportsWhatIsLeft(t *testing.T) {
	b := newBudget(t, 1, 2, hclog.Info)
	b.log(10)
	b.m.stop("test over")
	if got := b.evs.all(); len(got) != 1 || got[0].Dropped != 8 {
		t.Fatalf("events at stop = %+v", got)
	}
	if b.clk.Waiters() != 0 {
		t.Fatalf("%d timers left after stop", b.clk.Waiters())
	}
	b.h.Stop() // returns: no report timer in flight
}

// What counts against the budget: every path of the plugin's, through
// derived loggers too, but not lines the logger discards for their level;
// a negative LogRate means no limit.
func TestLogBudgetCounts(t *testing.T) {
	tests := []struct {
		name          string
		rate          float64
		burst         int
		level         hclog.Level
		log           func(m *managed)
		written, drop int
	}{
		{"every path, one budget", 1, 6, hclog.Info, func(m *managed) {
			for i := range 4 {
				m.plog.Warn("line from Host.Log", "i", i)
				m.pluginLog.Named("p").Info("line relayed from stderr", "i", i)
				_, _ = (&lineLogger{log: m.plog.Info}).Write([]byte("line printed\n"))
				s := &services{h: m.h, name: "p", log: m.plog}
				_ = s.Log(t.Context(), sdk.LogError, "line through services")
			}
			m.pluginLog.With("k", "v").StandardLogger(nil).Print("line std")
		}, 6, 11},
		{"below the level costs nothing", 1, 3, hclog.Info, func(m *managed) {
			for range 1000 {
				m.plog.Debug("line at debug")
				m.pluginLog.Named("p").Trace("line at trace")
			}
			for range 3 {
				m.plog.Info("line at info")
			}
		}, 3, 0},
		{"unlimited", -1, 0, hclog.Info, func(m *managed) {
			for range 5000 {
				m.plog.Info("line")
			}
		}, 5000, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := newBudget(t, tt.rate, tt.burst, tt.level)
			tt.log(b.m)
			b.stop()
			if n := strings.Count(b.out.String(), ": line"); n != tt.written {
				t.Errorf("%d lines written, want %d:\n%s", n, tt.written, b.out)
			}
			if n := b.evs.total(); n != tt.drop {
				t.Errorf("%d lines reported dropped, want %d", n, tt.drop)
			}
		})
	}
}

// Lines go-plugin relays from a plugin's standard error are escaped like
// those logged through the host: a plugin cannot forge host log lines.
func TestRelayedPluginLinesAreEscaped(t *testing.T) {
	b := newBudget(t, -1, 0, hclog.Trace)
	forged := "2026-11-27T00:00:00.000Z [ERROR] lifeline: token rotated"
	l := b.m.pluginLog.Named("p")
	l.Error("hello\n"+forged+"\x1b[2J", "key\n"+forged, "value\n"+forged)
	l.Log(hclog.Info, "again\n"+forged)
	_, _ = (&lineLogger{log: b.m.plog.Info}).Write([]byte("printed\r" + forged + "\n"))
	out := b.out.String()
	for _, line := range strings.Split(out, "\n") {
		if strings.HasPrefix(line, "2026-11-27T00:00:00.000Z") || strings.Contains(line, "\x1b") {
			t.Fatalf("a forged line in the host log: %q\n%s", line, out)
		}
	}
	for _, want := range []string{`hello\n2026-11-27T00:00:00.000Z [ERROR] lifeline: token rotated\x1b[2J`, `again\n2026`, `printed\r2026`} {
		if !strings.Contains(out, want) {
			t.Fatalf("log lacks %q:\n%s", want, out)
		}
	}
}

// countingLogger is an hclog.Logger that counts its info lines, writes
// none, and discards every other level.
type countingLogger struct {
	hclog.Logger
	n int
}

func (c *countingLogger) IsInfo() bool              { return true }
func (c *countingLogger) Info(string, ...any)       { c.n++ }
func (c *countingLogger) Named(string) hclog.Logger { return c }

// Under the limit, a line costs the limiter and the escaping no
// allocation: only what the caller and the logger allocate anyway.
func TestLimitedLoggerAllocatesNothingUnderTheLimit(t *testing.T) {
	inner := &countingLogger{Logger: hclog.NewNullLogger()}
	h := New(Options{Clock: clock.Real{}, LogRate: 1e9, LogBurst: 1 << 30})
	defer h.Stop()
	lim := newLogLimiter(h.o, &h.wg, func(int) { t.Error("a line was dropped") })
	defer lim.close()
	limited := &limitedLogger{Logger: inner, lim: lim}
	var wrapped hclog.Logger = limited
	args := []any{"key", "value", "n", 1} // the caller's, made once
	if a := testing.AllocsPerRun(1000, func() { wrapped.Info("a line", args...) }); a != 0 {
		t.Fatalf("%v allocations per line through the limit", a)
	}
	if a := testing.AllocsPerRun(1000, func() { wrapped.Warn("a line", args...) }); a != 0 {
		t.Fatalf("%v allocations per line below the logger's level", a)
	}
	if inner.n != 1001 { // AllocsPerRun runs f once more to warm up
		t.Fatalf("%d lines reached the logger, want 1001", inner.n)
	}
	if a := testing.AllocsPerRun(100, func() { safeKeyvals([]any{"key", "value"}) }); a != 0 {
		t.Fatalf("safeKeyvals allocates %v times for clean keys", a)
	}
}

// BenchmarkPluginLogLine is one plugin line into an hclog logger writing
// to io.Discard: straight, through the plugin's log budget under its
// limit, and over it (dropped).
func BenchmarkPluginLogLine(b *testing.B) {
	inner := hclog.New(&hclog.LoggerOptions{Output: io.Discard, Level: hclog.Info})
	h := New(Options{LogRate: 1e9, LogBurst: 1 << 30})
	defer h.Stop()
	lim := newLogLimiter(h.o, &h.wg, func(int) {})
	defer lim.close()
	over := newLogLimiter(Options{Clock: clock.Real{}, LogRate: 1e-9, LogBurst: 1}.withDefaults(), &h.wg, func(int) {})
	defer over.close()
	for _, bc := range []struct {
		name string
		l    hclog.Logger
	}{{"direct", inner}, {"limited", &limitedLogger{Logger: inner, lim: lim}}, {"dropped", &limitedLogger{Logger: inner, lim: over}}} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for range b.N {
				bc.l.Info("flooding the host's log", "n", 42)
			}
		})
	}
}
