package childproc

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
)

// ErrExited is returned (wrapped) by WaitLine when the process exits
// before it printed the line waited for.
var ErrExited = errors.New("childproc: the process exited")

// DefaultLineBuffer is the number of stdout lines Lines holds while nobody
// reads them, when Options.LineBuffer is 0.
const DefaultLineBuffer = 64

// Options configures Start. The zero value is valid.
type Options struct {
	// Stdout receives a copy of everything the child writes to its
	// standard output, before each line is offered to Lines. It is
	// written from the reaper goroutine only. Default: nil, no copy.
	Stdout io.Writer
	// LineBuffer is how many stdout lines Lines holds while nobody reads
	// them; a line that finds it full is dropped from Lines. Default:
	// DefaultLineBuffer (64).
	LineBuffer int
}

// Process is a started child process. Its methods are safe for concurrent
// use.
type Process struct {
	cmd   *exec.Cmd
	lines chan string
	done  chan struct{}
	err   error // cmd.Wait's result, set before done is closed
}

// Start starts cmd, which must not have Stdout set (Start reads it), and
// returns once the child runs. Everything else of cmd (Path, Args, Env,
// Dir, Stderr, SysProcAttr) is the caller's. The child is reaped by a
// goroutine of Start's whatever the caller does next; a caller that does
// not wait for it should Kill it when done with it.
func Start(cmd *exec.Cmd, o Options) (*Process, error) {
	if o.LineBuffer <= 0 {
		o.LineBuffer = DefaultLineBuffer
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, fmt.Errorf("childproc: %s: stdout: %w", cmd.Path, err)
	}
	if err := cmd.Start(); err != nil {
		// Start closes the pipe it made when it fails.
		return nil, fmt.Errorf("childproc: start %s: %w", cmd.Path, err)
	}
	p := &Process{cmd: cmd, lines: make(chan string, o.LineBuffer), done: make(chan struct{})}
	go p.reap(out, o.Stdout)
	return p, nil
}

// reap reads stdout to its end, offering each line to p.lines, then waits
// for the child.
func (p *Process) reap(out io.Reader, tee io.Writer) {
	r := out
	if tee != nil {
		r = io.TeeReader(out, tee)
	}
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		select {
		case p.lines <- sc.Text():
		default: // nobody reads; the line is dropped from Lines
		}
	}
	close(p.lines)
	// After a scan error (a line over the scanner's limit) the rest still
	// has to be read, or the child blocks writing to a full pipe.
	_, _ = io.Copy(io.Discard, r)
	p.err = p.cmd.Wait()
	close(p.done)
}

// Pid returns the child's process ID.
func (p *Process) Pid() int { return p.cmd.Process.Pid }

// Lines returns the child's stdout lines, as many as Options.LineBuffer
// while nobody reads them. It is closed when stdout ends.
func (p *Process) Lines() <-chan string { return p.lines }

// Done is closed once the child has exited and its stdout was read to the
// end.
func (p *Process) Done() <-chan struct{} { return p.done }

// Exited reports whether Done is closed.
func (p *Process) Exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// Err waits for the child to exit and returns how it ended: nil for exit
// status 0, an *exec.ExitError for another status or a signal, or the
// error that ended the wait.
func (p *Process) Err() error {
	<-p.done
	return p.err
}

// ExitCode waits for the child to exit and returns its exit status, -1
// when a signal ended it.
func (p *Process) ExitCode() int {
	<-p.done
	return p.cmd.ProcessState.ExitCode()
}

// WaitLine returns the first line from Lines that match accepts (any line
// when match is nil); lines it does not accept are consumed. It fails with
// an error wrapping ErrExited when the child exits first (Err then returns
// at once), and with one wrapping ctx's error when ctx ends first (a child
// that closed its stdout but runs on ends so too). It does not end the
// child in either case.
func (p *Process) WaitLine(ctx context.Context, match func(line string) bool) (string, error) {
	for {
		select {
		case l, ok := <-p.lines:
			if !ok {
				return "", p.exitedError(ctx)
			}
			if match == nil || match(l) {
				return l, nil
			}
		case <-ctx.Done():
			return "", fmt.Errorf("childproc: pid %d: waiting for a line: %w", p.Pid(), ctx.Err())
		}
	}
}

// exitedError is WaitLine's error once stdout has ended: how the child
// exited, when it did before ctx ends.
func (p *Process) exitedError(ctx context.Context) error {
	select {
	case <-p.done:
		status := "exit status 0"
		if p.err != nil {
			status = p.err.Error()
		}
		return fmt.Errorf("childproc: pid %d ended (%s) before printing the line: %w", p.Pid(), status, ErrExited)
	case <-ctx.Done():
		return fmt.Errorf("childproc: pid %d closed its stdout without printing the line, and runs on: %w", p.Pid(), ctx.Err())
	}
}

// Signal sends sig to the child. Once the child has exited it returns an
// error wrapping os.ErrProcessDone.
func (p *Process) Signal(sig os.Signal) error {
	if p.Exited() {
		return fmt.Errorf("childproc: signal %v to pid %d: %w", sig, p.Pid(), os.ErrProcessDone)
	}
	if err := p.cmd.Process.Signal(sig); err != nil {
		return fmt.Errorf("childproc: signal %v to pid %d: %w", sig, p.Pid(), err)
	}
	return nil
}

// Kill kills the child (SIGKILL) unless it has exited, and waits until it
// is reaped. It returns nil when the child has exited either way; how it
// ended is Err's.
func (p *Process) Kill() error {
	if !p.Exited() {
		if err := p.cmd.Process.Kill(); err != nil && !errors.Is(err, os.ErrProcessDone) {
			return fmt.Errorf("childproc: kill pid %d: %w", p.Pid(), err)
		}
	}
	<-p.done
	return nil
}

// Stop sends sig to the child and waits for it to exit; when ctx ends
// first it kills the child, waits for it, and returns an error wrapping
// ctx's. It returns nil once the child has exited (whatever its status:
// Err tells), including when it had exited before Stop.
func (p *Process) Stop(ctx context.Context, sig os.Signal) error {
	if err := p.Signal(sig); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return err
	}
	select {
	case <-p.done:
		return nil
	case <-ctx.Done():
	}
	if err := p.Kill(); err != nil {
		return fmt.Errorf("childproc: pid %d did not exit on %v (%w), and %w", p.Pid(), sig, ctx.Err(), err)
	}
	return fmt.Errorf("childproc: pid %d did not exit on %v; killed: %w", p.Pid(), sig, ctx.Err())
}
