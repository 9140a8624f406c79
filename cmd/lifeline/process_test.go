package main

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/lifeline-bot/lifeline/internal/childproc"
	"github.com/lifeline-bot/lifeline/internal/testutil"
)

// processBound bounds every wait on a lifeline process: generous, because
// the CI machine is shared and the binary may run with -race.
const processBound = 60 * time.Second

// binProcess is a running lifeline binary (`lifeline run`, `lifeline
// fake-discord`) with its output collected.
type binProcess struct {
	*childproc.Process
	stdout testutil.SyncBuffer
	stderr testutil.SyncBuffer
}

// startLifeline starts the binary with args, in the test's environment
// without DISCORD_TOKEN and LIFELINE_HTTP_TOKEN plus env, and kills it at
// the end of the test if it still runs.
func startLifeline(t *testing.T, env []string, args ...string) *binProcess {
	t.Helper()
	p := &binProcess{}
	cmd := exec.Command(lifelineBin, args...)
	cmd.Stderr = &p.stderr
	// A -race binary sleeps 1 s at exit by default; a race it finds still
	// makes it exit 66, which the tests report.
	base := []string{"GORACE=atexit_sleep_ms=0"}
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "DISCORD_TOKEN=") && !strings.HasPrefix(kv, "LIFELINE_HTTP_TOKEN=") {
			base = append(base, kv)
		}
	}
	cmd.Env = append(base, env...)
	proc, err := childproc.Start(cmd, childproc.Options{Stdout: &p.stdout})
	if err != nil {
		t.Fatal(err)
	}
	p.Process = proc
	t.Cleanup(func() { _ = proc.Kill() })
	return p
}

// firstLine returns the process's first stdout line.
func (p *binProcess) firstLine(t *testing.T) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), processBound)
	defer cancel()
	l, err := p.WaitLine(ctx, nil)
	if err != nil {
		t.Fatalf("no first stdout line: %v\nstderr:\n%s", err, p.stderr.String())
	}
	return l
}

// wait waits for the process to end and returns its exit code.
func (p *binProcess) wait(t *testing.T) int {
	t.Helper()
	select {
	case <-p.Done():
	case <-time.After(processBound):
		t.Fatalf("process still running %v after it was told to stop\nstderr:\n%s", processBound, p.stderr.String())
	}
	var ee *exec.ExitError
	if err := p.Err(); err != nil && !errors.As(err, &ee) {
		t.Fatalf("wait: %v", err)
	}
	return p.ExitCode()
}

// inProcessRun is `lifeline run` running in the test's own process, with
// run's signal subscription replaced by a channel the test sends on, and
// its output collected.
type inProcessRun struct {
	t              *testing.T
	stdout, stderr testutil.SyncBuffer
	hups           chan chan<- os.Signal // run's SIGHUP channel, once it subscribed
	cancel         context.CancelFunc    // what SIGINT and SIGTERM do through main's context
	done           chan int              // run's exit code
}

// startRun runs `lifeline run args...` in-process with getenv as its
// environment (nil: no variable set). runSignals is restored and the run
// ended at the end of the test; a test that checks how it ends calls stop.
func startRun(t *testing.T, getenv func(string) string, args ...string) *inProcessRun {
	t.Helper()
	if getenv == nil {
		getenv = func(string) string { return "" }
	}
	r := &inProcessRun{t: t, hups: make(chan chan<- os.Signal, 1), done: make(chan int, 1)}
	old := runSignals
	runSignals = func(ch chan<- os.Signal) func() {
		select {
		case r.hups <- ch:
		default:
		}
		return func() {}
	}
	ctx, cancel := context.WithCancel(context.Background())
	r.cancel = cancel
	t.Cleanup(func() {
		cancel()
		select {
		case <-r.done:
		case <-time.After(processBound):
			t.Errorf("run did not return within %v after its context ended", processBound)
		}
		runSignals = old
	})
	env := &cliEnv{Stdout: &r.stdout, Stderr: &r.stderr, Getenv: getenv}
	go func() { r.done <- run(ctx, env, append([]string{"run"}, args...)) }()
	return r
}

// waitFor polls cond every 20ms for up to processBound.
func (r *inProcessRun) waitFor(what string, cond func() bool) {
	r.t.Helper()
	for deadline := time.Now().Add(processBound); !cond(); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			r.t.Fatalf("never: %s\nstderr:\n%s", what, r.stderr.String())
		}
	}
}

// waitReady waits for run's "ready" line.
func (r *inProcessRun) waitReady() {
	r.t.Helper()
	r.waitFor("READY", func() bool { return strings.Contains(r.stderr.String(), "lifeline: ready:") })
}

// httpURL returns the URL of the HTTP surface, from the first stdout line.
func (r *inProcessRun) httpURL() string {
	r.t.Helper()
	m := httpLine.FindStringSubmatch(strings.SplitN(r.stdout.String(), "\n", 2)[0])
	if m == nil {
		r.t.Fatalf("first stdout line is not http=URL: %q", r.stdout.String())
	}
	return m[1]
}

// sighup sends SIGHUP on the channel run subscribed.
func (r *inProcessRun) sighup() {
	r.t.Helper()
	select {
	case hup := <-r.hups:
		hup <- syscall.SIGHUP
	case <-time.After(processBound):
		r.t.Fatalf("run never subscribed to SIGHUP\nstderr:\n%s", r.stderr.String())
	}
}

// stop ends the run as SIGINT or SIGTERM do (main's context) and checks
// that it returns exit 0.
func (r *inProcessRun) stop() {
	r.t.Helper()
	r.cancel()
	select {
	case code := <-r.done:
		r.done <- code // for the cleanup
		if code != 0 {
			r.t.Fatalf("exit %d\nstderr:\n%s", code, r.stderr.String())
		}
	case <-time.After(processBound):
		r.t.Fatal("run did not return after its context ended")
	}
}
