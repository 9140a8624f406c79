package conn

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/lifeline-bot/lifeline/core/clock"
)

// ErrWatchdogTimeout is returned (wrapped) by Watchdog.Run when the call
// did not return before its deadline and was abandoned.
var ErrWatchdogTimeout = errors.New("watchdog deadline passed")

// ErrCallPanicked is returned (wrapped) by Watchdog.Run when the watched
// call panicked; the panic is recovered so that a bug in the library it
// calls (discordgo) does not bring the bot down.
var ErrCallPanicked = errors.New("watched call panicked")

// WatchdogSettings configures a Watchdog. The zero value is valid.
type WatchdogSettings struct {
	// Clock times the deadlines. Default: clock.Real.
	Clock clock.Clock
	// Timeout is the deadline Run uses when its timeout argument is 0.
	// Default: 30s.
	Timeout time.Duration
	// OnAbandon is called, on Run's goroutine, each time a call is
	// abandoned (deadline passed or context ended). Default: nothing.
	OnAbandon func(name string, cause error)
	// OnLateReturn is called, on the abandoned call's goroutine, when an
	// abandoned call finally returns, with its result. Default: nothing.
	OnLateReturn func(name string, err error)
}

// Watchdog runs calls that may hang, such as discordgo's Session.Open
// (which has no deadline and waits forever for a HELLO that never comes)
// and Session.Close (which sleeps a second while holding the session lock),
// under a deadline taken from its Clock.
//
// Go cannot stop a goroutine from outside, so when the deadline passes,
// Run returns ErrWatchdogTimeout and the call keeps running in the
// background: it is abandoned. The caller must treat whatever the call was
// working on as lost (for a discordgo Session: never touch it again and
// build a new one). Abandoned counts every abandonment and Lingering the
// abandoned calls that have not returned yet, so a leak is visible in
// diagnostics rather than silent. A Watchdog is safe for concurrent use.
type Watchdog struct {
	clock        clock.Clock
	timeout      time.Duration
	onAbandon    func(string, error)
	onLateReturn func(string, error)

	abandoned atomic.Uint64
	lingering atomic.Int64
}

// NewWatchdog returns a Watchdog.
func NewWatchdog(s WatchdogSettings) *Watchdog {
	w := &Watchdog{clock: clock.Or(s.Clock), timeout: s.Timeout,
		onAbandon: s.OnAbandon, onLateReturn: s.OnLateReturn}
	if w.timeout <= 0 {
		w.timeout = 30 * time.Second
	}
	return w
}

// Run calls fn on a new goroutine and waits for it, for ctx, or for
// timeout (the Watchdog's default when timeout <= 0), whichever comes
// first. It returns fn's error when fn returns in time; an error wrapping
// ErrWatchdogTimeout when the deadline passes; ctx's error (wrapped) when
// ctx ends; an error wrapping ErrCallPanicked when fn panics. In the
// second and third cases fn is abandoned: it goes on running, Abandoned
// and Lingering count it, and its eventual result goes to OnLateReturn.
// name says in errors which call it was, e.g. "session open".
func (w *Watchdog) Run(ctx context.Context, name string, timeout time.Duration, fn func() error) error {
	if timeout <= 0 {
		timeout = w.timeout
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("conn: %s not started: %w", name, err)
	}
	var abandoned atomic.Bool
	done := make(chan error, 1)
	go func() {
		err := callRecovering(name, fn)
		done <- err
		// Whoever wins the swap decides: Run's side marks abandoned
		// before it gives up waiting, so exactly one of "Run returned
		// err" and "OnLateReturn got err" happens.
		if abandoned.Swap(true) {
			w.lingering.Add(-1)
			if w.onLateReturn != nil {
				w.onLateReturn(name, err)
			}
		}
	}()

	timer := w.clock.NewTimer(timeout)
	defer timer.Stop()
	var cause error
	select {
	case err := <-done:
		return err
	case <-timer.C():
		cause = fmt.Errorf("conn: %s did not return within %v and was abandoned: %w", name, timeout, ErrWatchdogTimeout)
	case <-ctx.Done():
		cause = fmt.Errorf("conn: %s abandoned: %w", name, ctx.Err())
	}
	w.lingering.Add(1)
	if abandoned.Swap(true) {
		// fn returned while we were deciding: take its result after all.
		w.lingering.Add(-1)
		return <-done
	}
	w.abandoned.Add(1)
	if w.onAbandon != nil {
		w.onAbandon(name, cause)
	}
	return cause
}

// callRecovering calls fn and turns a panic into an error.
func callRecovering(name string, fn func() error) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("conn: %s: %w: %v", name, ErrCallPanicked, r)
		}
	}()
	return fn()
}

// Abandoned returns how many calls Run has abandoned since the Watchdog
// was made.
func (w *Watchdog) Abandoned() uint64 { return w.abandoned.Load() }

// Lingering returns how many abandoned calls are still running: goroutines
// (and whatever they hold) that cannot be reclaimed.
func (w *Watchdog) Lingering() int64 { return w.lingering.Load() }
