package main

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"strings"
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
