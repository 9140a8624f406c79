package pluginhost

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"strconv"
	"strings"
	"sync"

	"github.com/hashicorp/go-plugin/runner"
)

// procRunner is the go-plugin runner for one plugin process. go-plugin's own
// command runner does not say when or how the process ended; this one does
// (exited, exitErr) and keeps the tail of the process's standard error, so a
// crash is reported with its exit status and last words ("panic: ...").
// It also starts the plugin in its own process group and kills the whole
// group, so a plugin's own children do not outlive it.
type procRunner struct {
	cmd    *exec.Cmd
	name   string
	path   string
	stdout io.ReadCloser
	stderr io.ReadCloser
	tail   *tailBuffer
	// forwarded is the tail of what the plugin wrote to os.Stderr after
	// go-plugin redirected it (forwarded over gRPC, best effort: the last
	// lines may arrive after the exit).
	forwarded *tailBuffer

	mu      sync.Mutex
	pid     int
	exitErr error
	exited  chan struct{}
}

var _ runner.Runner = (*procRunner)(nil)

func newProcRunner(name string, cmd *exec.Cmd) (*procRunner, error) {
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		return nil, err
	}
	tail := &tailBuffer{max: 2048}
	setProcessGroup(cmd)
	return &procRunner{
		cmd:    cmd,
		name:   name,
		path:   cmd.Path,
		stdout: stdout,
		stderr: struct {
			io.Reader
			io.Closer
		}{io.TeeReader(stderr, tail), stderr},
		tail:   tail,
		exited: make(chan struct{}),
	}, nil
}

func (r *procRunner) Start(context.Context) error {
	if err := r.cmd.Start(); err != nil {
		return err
	}
	r.mu.Lock()
	r.pid = r.cmd.Process.Pid
	r.mu.Unlock()
	return nil
}

// Wait is called once, by go-plugin, after the process's output is drained.
func (r *procRunner) Wait(context.Context) error {
	err := r.cmd.Wait()
	r.mu.Lock()
	r.exitErr = err
	r.mu.Unlock()
	close(r.exited)
	return err
}

// Kill kills the process and its group at once. Killing a process that has
// exited is not an error.
func (r *procRunner) Kill(context.Context) error {
	r.mu.Lock()
	pid := r.pid
	r.mu.Unlock()
	if pid == 0 {
		return nil
	}
	select {
	case <-r.exited:
		return nil
	default:
	}
	return killGroup(r.cmd, pid)
}

func (r *procRunner) Stdout() io.ReadCloser { return r.stdout }
func (r *procRunner) Stderr() io.ReadCloser { return r.stderr }

// Name is the plugin's policy name: go-plugin logs the process's output
// under it.
func (r *procRunner) Name() string { return r.name }

func (r *procRunner) ID() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.pid == 0 {
		return ""
	}
	return strconv.Itoa(r.pid)
}

// PID returns the process id, 0 before Start.
func (r *procRunner) PID() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.pid
}

func (r *procRunner) Diagnose(context.Context) string {
	if t := r.tail.lastLines(5); t != "" {
		return "last output: " + t
	}
	return ""
}

func (r *procRunner) PluginToHost(n, a string) (string, string, error) { return n, a, nil }
func (r *procRunner) HostToPlugin(n, a string) (string, string, error) { return n, a, nil }

// exitReason describes how the process ended: its exit status or signal and
// the last lines it wrote to standard error. Call it after exited is closed.
func (r *procRunner) exitReason() string {
	r.mu.Lock()
	err := r.exitErr
	r.mu.Unlock()
	reason := "exit status 0"
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		reason = ee.Error() // "exit status 3", "signal: killed"
	case err != nil:
		reason = err.Error()
	}
	t := r.tail.lastLines(3)
	if t == "" && r.forwarded != nil {
		t = r.forwarded.lastLines(3)
	}
	if t != "" {
		reason += " (last output: " + t + ")"
	}
	return reason
}

// tailBuffer keeps the last max bytes written to it.
type tailBuffer struct {
	mu  sync.Mutex
	max int
	b   []byte
}

// lineLogger writes each line written to it to a logger (and a tail),
// for what a plugin prints on os.Stdout and os.Stderr, which go-plugin
// forwards over the connection.
type lineLogger struct {
	mu   sync.Mutex
	log  func(msg string, args ...any)
	tail *tailBuffer
	buf  []byte
}

func (w *lineLogger) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.tail != nil {
		_, _ = w.tail.Write(p)
	}
	w.buf = append(w.buf, p...)
	for {
		i := bytes.IndexByte(w.buf, '\n')
		if i < 0 {
			break
		}
		if line := strings.TrimRight(string(w.buf[:i]), "\r"); line != "" {
			w.log(line)
		}
		w.buf = w.buf[i+1:]
	}
	if len(w.buf) > 64<<10 { // a line that never ends
		w.log(string(w.buf))
		w.buf = w.buf[:0]
	}
	return len(p), nil
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.b = append(t.b, p...)
	if over := len(t.b) - t.max; over > 0 {
		t.b = append(t.b[:0], t.b[over:]...)
	}
	return len(p), nil
}

// lastLines summarises the end of the output: the Go runtime's
// "panic: ..." or "fatal error: ..." line when there is one (the stack trace
// after it says little in a log line), otherwise up to n non-empty lines
// from the end, joined by " | ", a JSON log line (hclog's format) shown by
// its message.
func (t *tailBuffer) lastLines(n int) string {
	t.mu.Lock()
	lines := strings.Split(strings.TrimSpace(string(t.b)), "\n")
	t.mu.Unlock()
	for i := len(lines) - 1; i >= 0; i-- {
		l := strings.TrimSpace(lines[i])
		if strings.HasPrefix(l, "panic: ") || strings.HasPrefix(l, "fatal error: ") {
			return clip(l)
		}
	}
	var out []string
	for i := len(lines) - 1; i >= 0 && len(out) < n; i-- {
		l := strings.TrimSpace(lines[i])
		if l == "" {
			continue
		}
		var js struct {
			Level   string `json:"@level"`
			Message string `json:"@message"`
		}
		if strings.HasPrefix(l, "{") && json.Unmarshal([]byte(l), &js) == nil && js.Message != "" {
			// Routine log lines (go-plugin's own among them) say nothing
			// about why a process ended.
			if js.Level != "warn" && js.Level != "error" {
				continue
			}
			l = js.Message
		}
		out = append(out, l)
	}
	for i, j := 0, len(out)-1; i < j; i, j = i+1, j-1 {
		out[i], out[j] = out[j], out[i]
	}
	return clip(strings.Join(out, " | "))
}

func clip(s string) string {
	if len(s) > 400 {
		return s[:400] + "..."
	}
	return s
}

func (r *procRunner) String() string { return fmt.Sprintf("%s (pid %d)", r.path, r.PID()) }
