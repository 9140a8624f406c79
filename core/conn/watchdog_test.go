package conn

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lifeline-bot/lifeline/core/clock"
)

const testWait = 10 * time.Second // real-time bound on waits for goroutines in tests

type lateResult struct {
	name string
	err  error
}

func newTestWatchdog(t *testing.T) (*Watchdog, *clock.Fake, chan lateResult, chan string) {
	t.Helper()
	fake := clock.NewFake(time.Time{})
	late := make(chan lateResult, 4)
	abandons := make(chan string, 4)
	w := NewWatchdog(WatchdogSettings{
		Clock:        fake,
		Timeout:      5 * time.Second,
		OnAbandon:    func(name string, cause error) { abandons <- name },
		OnLateReturn: func(name string, err error) { late <- lateResult{name, err} },
	})
	return w, fake, late, abandons
}

func TestWatchdogReturnsInTime(t *testing.T) {
	errBoom := errors.New("boom")
	for _, want := range []error{nil, errBoom} {
		w, _, _, _ := newTestWatchdog(t)
		got := w.Run(context.Background(), "open", 0, func() error { return want })
		if got != want {
			t.Errorf("Run = %v, want %v", got, want)
		}
		if w.Abandoned() != 0 || w.Lingering() != 0 {
			t.Errorf("Abandoned %d Lingering %d after an in-time call", w.Abandoned(), w.Lingering())
		}
	}
}

func TestWatchdogTimeoutAbandons(t *testing.T) {
	tests := []struct {
		name    string
		timeout time.Duration // Run's argument
		advance time.Duration // total fake time to reach the deadline
	}{
		{"default timeout", 0, 5 * time.Second},
		{"explicit timeout", 2 * time.Second, 2 * time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w, fake, late, abandons := newTestWatchdog(t)
			release := make(chan struct{})
			result := make(chan error, 1)
			go func() {
				result <- w.Run(context.Background(), "session open", tt.timeout, func() error {
					<-release
					return errors.New("too late")
				})
			}()
			if !fake.BlockUntil(1, testWait) {
				t.Fatal("Run never armed its timer")
			}
			fake.Advance(tt.advance - time.Millisecond)
			select {
			case err := <-result:
				t.Fatalf("Run returned %v before the deadline", err)
			default:
			}
			fake.Advance(time.Millisecond)
			var err error
			select {
			case err = <-result:
			case <-time.After(testWait):
				t.Fatal("Run did not return after the deadline")
			}
			if !errors.Is(err, ErrWatchdogTimeout) || !strings.Contains(err.Error(), "session open") {
				t.Fatalf("Run = %v, want ErrWatchdogTimeout naming the call", err)
			}
			if got := <-abandons; got != "session open" {
				t.Errorf("OnAbandon got %q", got)
			}
			if w.Abandoned() != 1 || w.Lingering() != 1 {
				t.Errorf("Abandoned %d Lingering %d, want 1 1", w.Abandoned(), w.Lingering())
			}
			close(release)
			select {
			case r := <-late:
				if r.name != "session open" || r.err == nil || r.err.Error() != "too late" {
					t.Errorf("OnLateReturn got %+v", r)
				}
			case <-time.After(testWait):
				t.Fatal("OnLateReturn never called")
			}
			if w.Abandoned() != 1 || w.Lingering() != 0 {
				t.Errorf("after the late return: Abandoned %d Lingering %d, want 1 0", w.Abandoned(), w.Lingering())
			}
		})
	}
}

func TestWatchdogContext(t *testing.T) {
	w, fake, late, _ := newTestWatchdog(t)

	canceled, cancel := context.WithCancel(context.Background())
	cancel()
	called := false
	err := w.Run(canceled, "close", 0, func() error { called = true; return nil })
	if !errors.Is(err, context.Canceled) || called {
		t.Fatalf("Run on a done context = %v (called %v), want context.Canceled without calling", err, called)
	}

	ctx, cancel := context.WithCancel(context.Background())
	release := make(chan struct{})
	result := make(chan error, 1)
	go func() {
		result <- w.Run(ctx, "close", 0, func() error { <-release; return nil })
	}()
	if !fake.BlockUntil(1, testWait) {
		t.Fatal("Run never armed its timer")
	}
	cancel()
	select {
	case err = <-result:
	case <-time.After(testWait):
		t.Fatal("Run ignored the context")
	}
	if !errors.Is(err, context.Canceled) || errors.Is(err, ErrWatchdogTimeout) {
		t.Fatalf("Run = %v, want context.Canceled", err)
	}
	if w.Abandoned() != 1 || w.Lingering() != 1 {
		t.Errorf("Abandoned %d Lingering %d", w.Abandoned(), w.Lingering())
	}
	close(release)
	<-late
	if w.Lingering() != 0 {
		t.Errorf("Lingering %d after the late return", w.Lingering())
	}
	if fake.Waiters() != 0 {
		t.Errorf("%d timers left armed", fake.Waiters())
	}
}

func TestWatchdogPanic(t *testing.T) {
	w, _, _, _ := newTestWatchdog(t)
	err := w.Run(context.Background(), "open", 0, func() error {
		panic("discordgo exploded")
	})
	if !errors.Is(err, ErrCallPanicked) || !strings.Contains(err.Error(), "discordgo exploded") {
		t.Fatalf("Run = %v, want ErrCallPanicked with the panic value", err)
	}
	if w.Abandoned() != 0 {
		t.Errorf("a panicking call counted as abandoned")
	}
}

func TestWatchdogConcurrentCalls(t *testing.T) {
	w, fake, late, _ := newTestWatchdog(t)
	const hung, quick = 3, 5
	release := make(chan struct{})
	var wg sync.WaitGroup
	errs := make(chan error, hung+quick)
	for i := range hung + quick {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs <- w.Run(context.Background(), fmt.Sprint("call", i), 0, func() error {
				if i < hung {
					<-release
				}
				return nil
			})
		}()
	}
	// Let the quick calls finish (their timers are stopped when Run
	// returns), then wait until exactly the hung calls' timers are armed.
	quickDone := 0
	for quickDone < quick {
		select {
		case err := <-errs:
			if err != nil {
				t.Fatalf("quick call: %v", err)
			}
			quickDone++
		case <-time.After(testWait):
			t.Fatal("quick calls did not finish")
		}
	}
	if !fake.BlockUntil(hung, testWait) {
		t.Fatal("hung calls never armed their timers")
	}
	fake.Advance(5 * time.Second)
	wg.Wait()
	close(errs)
	for err := range errs {
		if !errors.Is(err, ErrWatchdogTimeout) {
			t.Errorf("hung call: %v", err)
		}
	}
	if w.Abandoned() != hung || w.Lingering() != hung {
		t.Errorf("Abandoned %d Lingering %d, want %d", w.Abandoned(), w.Lingering(), hung)
	}
	close(release)
	for range hung {
		<-late
	}
	if w.Lingering() != 0 {
		t.Errorf("Lingering %d", w.Lingering())
	}
}

func ExampleWatchdog() {
	fake := clock.NewFake(time.Time{})
	w := NewWatchdog(WatchdogSettings{Clock: fake, Timeout: 10 * time.Second})
	hang := make(chan struct{})
	defer close(hang)
	go func() {
		fake.BlockUntil(1, time.Minute)
		fake.Advance(10 * time.Second) // HELLO never came
	}()
	err := w.Run(context.Background(), "session open", 0, func() error { <-hang; return nil })
	fmt.Println(errors.Is(err, ErrWatchdogTimeout), w.Abandoned(), w.Lingering())
	// Output: true 1 1
}
