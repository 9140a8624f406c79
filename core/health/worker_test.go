package health

import (
	"context"
	"errors"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/lifeline-bot/lifeline/core/clock"
	"github.com/lifeline-bot/lifeline/core/metrics"
)

// goid returns the calling goroutine's id, from the first line of its
// stack trace ("goroutine 42 [running]:"). Go never reuses an id.
func goid() string {
	buf := make([]byte, 64)
	buf = buf[:runtime.Stack(buf, false)]
	return strings.Fields(string(buf))[1]
}

// goroutineGone waits (bounded) until the goroutine with id has ended.
func goroutineGone(t *testing.T, id string) {
	t.Helper()
	deadline := time.Now().Add(wait)
	buf := make([]byte, 1<<20)
	for time.Now().Before(deadline) {
		n := runtime.Stack(buf, true)
		if !strings.Contains(string(buf[:n]), "goroutine "+id+" [") {
			return
		}
		time.Sleep(time.Millisecond)
	}
	t.Fatalf("goroutine %s is still there", id)
}

// kept is a Checker that says whether it wants a kept goroutine and
// reports the goroutine of each call. A call whose hang channel is not nil
// waits for it, ignoring its context; one with boom set panics.
type kept struct {
	keep  bool
	calls chan string // goroutine id of each call
	hang  chan struct{}
	boom  bool
}

func (k *kept) KeepWorker() bool { return k.keep }

func (k *kept) Check(context.Context, metrics.Snapshot) Result {
	// The fields are read before the call is reported: the test changes
	// them once it has seen the call.
	hang, boom := k.hang, k.boom
	k.calls <- goid()
	if hang != nil {
		<-hang
	}
	if boom {
		panic("kaboom")
	}
	return Result{Passed: true}
}

// runOnce runs m's one check, bounded in real time: a run stuck behind a
// wedged call fails the test rather than hang it.
func runOnce(t *testing.T, m *Monitor) Result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	ev, err := m.RunOnce(ctx)
	if err != nil || len(ev.Results) != 1 {
		t.Fatalf("run: %v, results %+v", err, ev.Results)
	}
	return ev.Results[0]
}

func TestWorkerCheckerCallsShareAGoroutineBetweenRuns(t *testing.T) {
	tests := []struct {
		name     string
		keep     bool
		wantSame bool
	}{
		{"KeepWorker true: one goroutine for every call", true, true},
		{"KeepWorker false: a goroutine per call", false, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			k := &kept{keep: tt.keep, calls: make(chan string, 8)}
			m := NewMonitor(Options{Clock: clock.NewFake(time.Time{}), Retries: -1})
			mustAdd(t, m, "k", k, CheckConfig{})
			var ids []string
			for range 3 {
				if r := runOnce(t, m); !r.Passed {
					t.Fatalf("result = %+v", r)
				}
				ids = append(ids, recv(t, k.calls, "the call"))
			}
			same := ids[0] == ids[1] && ids[1] == ids[2]
			distinct := ids[0] != ids[1] && ids[1] != ids[2] && ids[0] != ids[2]
			if tt.wantSame && !same || !tt.wantSame && !distinct {
				t.Fatalf("calls ran on goroutines %v", ids)
			}
			m.Stop()
			goroutineGone(t, ids[2])
		})
	}
}

func TestAbandonedCallLeavesItsKeptGoroutineBehind(t *testing.T) {
	tests := []struct {
		name    string
		abandon func(clk *clock.Fake, cancel context.CancelFunc)
		wantErr bool
	}{
		{"timed out", func(clk *clock.Fake, _ context.CancelFunc) { clk.Advance(5 * time.Second) }, false},
		{"run cut short", func(_ *clock.Fake, cancel context.CancelFunc) { cancel() }, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clk := clock.NewFake(time.Time{})
			hang := make(chan struct{})
			k := &kept{keep: true, calls: make(chan string, 8), hang: hang}
			m := NewMonitor(Options{Clock: clk, Timeout: 5 * time.Second, Retries: -1})
			mustAdd(t, m, "k", k, CheckConfig{})

			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			type out struct {
				ev  Evaluation
				err error
			}
			got := make(chan out, 1)
			go func() {
				ev, err := m.RunOnce(ctx)
				got <- out{ev, err}
			}()
			wedged := recv(t, k.calls, "the hanging call")
			tt.abandon(clk, cancel)
			o := recv(t, got, "the run")
			if tt.wantErr != (o.err != nil) {
				t.Fatalf("run: err = %v", o.err)
			}
			if !tt.wantErr && (len(o.ev.Results) != 1 || !o.ev.Results[0].TimedOut) {
				t.Fatalf("run: %+v", o.ev.Results)
			}

			// The next run does not wait for the wedged call: it gets a
			// goroutine of its own, which is kept in turn.
			k.hang = nil
			if r := runOnce(t, m); !r.Passed {
				t.Fatalf("run after the wedged call = %+v", r)
			}
			fresh := recv(t, k.calls, "the next call")
			if fresh == wedged {
				t.Fatal("the next call queued on the wedged goroutine")
			}
			if d := m.Diagnostics(); d.Checks[0].Calls != 1 {
				t.Fatalf("calls outstanding = %d, want the wedged one", d.Checks[0].Calls)
			}
			runOnce(t, m)
			if again := recv(t, k.calls, "the third call"); again != fresh {
				t.Fatalf("third call on %s, want the kept %s", again, fresh)
			}

			// Once the wedged call returns, its goroutine ends.
			close(hang)
			waitCalls(t, m, "k")
			goroutineGone(t, wedged)
			if err := m.Remove("k"); err != nil {
				t.Fatal(err)
			}
			goroutineGone(t, fresh)
		})
	}
}

func TestKeptGoroutineSurvivesAPanicAndEndsWithItsCheck(t *testing.T) {
	k := &kept{keep: true, calls: make(chan string, 8), boom: true}
	m := NewMonitor(Options{Clock: clock.NewFake(time.Time{}), Retries: -1})
	mustAdd(t, m, "k", k, CheckConfig{})
	if r := runOnce(t, m); r.Passed || !strings.Contains(r.Message, "check panicked: kaboom") {
		t.Fatalf("panicking check = %+v", r)
	}
	first := recv(t, k.calls, "the panicking call")
	k.boom = false
	if r := runOnce(t, m); !r.Passed {
		t.Fatalf("after the panic = %+v", r)
	}
	if id := recv(t, k.calls, "the call after the panic"); id != first {
		t.Fatalf("call after the panic on %s, want the kept %s", id, first)
	}

	// Replaced by a Checker that wants no kept goroutine: the kept one
	// ends.
	plain := &kept{calls: make(chan string, 8)}
	if err := m.Replace("k", plain); err != nil {
		t.Fatal(err)
	}
	runOnce(t, m)
	if id := recv(t, plain.calls, "the plain call"); id == first {
		t.Fatal("a Checker without KeepWorker ran on the kept goroutine")
	}
	goroutineGone(t, first)

	// Stop ends a kept goroutine; a later run starts another.
	if err := m.Replace("k", k); err != nil {
		t.Fatal(err)
	}
	runOnce(t, m)
	second := recv(t, k.calls, "a call on a new kept goroutine")
	m.Stop()
	goroutineGone(t, second)
	runOnce(t, m)
	third := recv(t, k.calls, "a call after Stop")
	if third == second {
		t.Fatal("the kept goroutine outlived Stop")
	}
	if err := m.Remove("k"); err != nil {
		t.Fatal(err)
	}
	goroutineGone(t, third)
	if err := m.Remove("k"); !errors.Is(err, ErrUnknownCheck) {
		t.Fatalf("second Remove: %v", err)
	}
}

func TestRemovedCheckMidRunKeepsNoGoroutine(t *testing.T) {
	clk := clock.NewFake(time.Time{})
	hang := make(chan struct{})
	k := &kept{keep: true, calls: make(chan string, 8), hang: hang}
	// A retry after the timeout comes after Remove: it must not leave a
	// kept goroutine behind for a check nobody can remove any more.
	m := NewMonitor(Options{Clock: clk, Timeout: 5 * time.Second, Retries: 1})
	mustAdd(t, m, "k", k, CheckConfig{})
	got := make(chan Evaluation, 1)
	go func() {
		ev, _ := m.RunOnce(context.Background())
		got <- ev
	}()
	first := recv(t, k.calls, "the first call")
	if err := m.Remove("k"); err != nil {
		t.Fatal(err)
	}
	clk.Advance(5 * time.Second)
	retry := recv(t, k.calls, "the retry")
	close(hang)
	if ev := recv(t, got, "the run"); len(ev.Results) != 0 {
		t.Fatalf("a removed check's result was kept: %+v", ev.Results)
	}
	goroutineGone(t, first)
	goroutineGone(t, retry)
}
