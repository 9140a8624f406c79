package childproc_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"os/signal"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/lifeline-bot/lifeline/internal/childproc"
)

// childEnv names the mode the test binary runs in when it is the child.
const childEnv = "CHILDPROC_TEST_CHILD"

// bound bounds every wait on a child: generous, for a loaded machine.
const bound = 60 * time.Second

func TestMain(m *testing.M) {
	if mode := os.Getenv(childEnv); mode != "" {
		os.Exit(child(mode))
	}
	code := m.Run()
	if code == 0 {
		if err := goleak.Find(); err != nil {
			fmt.Fprintf(os.Stderr, "goleak: %v\n", err)
			code = 1
		}
	}
	os.Exit(code)
}

// child is the test binary run as the child process, in one of the modes
// the tests ask for.
func child(mode string) int {
	term := make(chan os.Signal, 1)
	// awaitTerm waits (bounded, so that a child whose test died goes away)
	// for SIGTERM, and says so on stdout.
	awaitTerm := func() int {
		select {
		case <-term:
			fmt.Println("bye")
			return 3
		case <-time.After(bound):
			return 9
		}
	}
	switch mode {
	case "lines": // three lines, then exit 3 on SIGTERM
		signal.Notify(term, syscall.SIGTERM)
		fmt.Println("a")
		fmt.Println("b")
		fmt.Println("http=x")
		return awaitTerm()
	case "silent": // nothing on stdout until SIGTERM
		signal.Notify(term, syscall.SIGTERM)
		return awaitTerm()
	case "fail": // a message on stderr, exit 7
		fmt.Fprintln(os.Stderr, "failing on purpose")
		return 7
	case "many": // 200 lines, exit 0
		for i := range 200 {
			fmt.Printf("line %d\n", i)
		}
		return 0
	case "long": // a line, then one over the scanner's limit, then one more
		fmt.Println("first")
		fmt.Println(strings.Repeat("x", 100_000))
		fmt.Println("after")
		return 0
	case "close": // closes stdout, then exits 3 on SIGTERM
		signal.Notify(term, syscall.SIGTERM)
		os.Stdout.Close()
		select {
		case <-term:
			return 3
		case <-time.After(bound):
			return 9
		}
	case "deaf": // ignores SIGTERM, says so, runs until killed
		signal.Ignore(syscall.SIGTERM)
		fmt.Println("ready")
		time.Sleep(bound)
		return 9
	}
	fmt.Fprintf(os.Stderr, "unknown child mode %q\n", mode)
	return 2
}

// command is the test binary as a child in mode, its stderr in errOut.
func command(mode string, errOut *bytes.Buffer) *exec.Cmd {
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), childEnv+"="+mode)
	cmd.Stderr = errOut
	return cmd
}

// start starts a child in mode and kills it at the end of the test.
func start(t *testing.T, mode string, o childproc.Options) (*childproc.Process, *bytes.Buffer) {
	t.Helper()
	var errOut bytes.Buffer
	p, err := childproc.Start(command(mode, &errOut), o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := p.Kill(); err != nil {
			t.Errorf("Kill: %v", err)
		}
	})
	return p, &errOut
}

func boundCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), bound)
	t.Cleanup(cancel)
	return ctx
}

// TestWaitLine: WaitLine returns the first line match accepts, consuming
// the ones before it.
func TestWaitLine(t *testing.T) {
	tests := []struct {
		name  string
		match func(string) bool
		want  string
		next  string // the line Lines gives after it
	}{
		{"any line", nil, "a", "b"},
		{"a prefix", func(l string) bool { return strings.HasPrefix(l, "http=") }, "http=x", ""},
		{"the second", func(l string) bool { return l == "b" }, "b", "http=x"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, _ := start(t, "lines", childproc.Options{})
			got, err := p.WaitLine(boundCtx(t), tt.match)
			if err != nil || got != tt.want {
				t.Fatalf("WaitLine = %q, %v; want %q", got, err, tt.want)
			}
			if tt.next != "" {
				if l := <-p.Lines(); l != tt.next {
					t.Fatalf("next line %q, want %q", l, tt.next)
				}
			}
		})
	}
}

// TestStopEndsTheChildWithItsStatus: Stop signals, waits, and the child's
// own exit status, its last stdout line and the copy of stdout are all
// there afterwards.
func TestStopEndsTheChildWithItsStatus(t *testing.T) {
	var out bytes.Buffer
	p, _ := start(t, "lines", childproc.Options{Stdout: &out})
	if _, err := p.WaitLine(boundCtx(t), func(l string) bool { return l == "http=x" }); err != nil {
		t.Fatal(err)
	}
	if p.Exited() {
		t.Fatal("Exited before Stop")
	}
	if err := p.Stop(boundCtx(t), syscall.SIGTERM); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	if !p.Exited() {
		t.Fatal("not Exited after Stop")
	}
	if code := p.ExitCode(); code != 3 {
		t.Fatalf("ExitCode = %d, want 3 (the child's answer to SIGTERM)", code)
	}
	var ee *exec.ExitError
	if err := p.Err(); !errors.As(err, &ee) {
		t.Fatalf("Err = %v, want an *exec.ExitError", err)
	}
	if got, want := out.String(), "a\nb\nhttp=x\nbye\n"; got != want {
		t.Fatalf("stdout copy %q, want %q", got, want)
	}
	if l, ok := <-p.Lines(); !ok || l != "bye" {
		t.Fatalf("Lines after Stop gave %q (open %t), want the last line \"bye\"", l, ok)
	}
	if _, ok := <-p.Lines(); ok {
		t.Fatal("Lines still open after the child exited")
	}
	// Once it has exited: Stop and Kill are no-ops, Signal says so.
	if err := p.Stop(boundCtx(t), syscall.SIGTERM); err != nil {
		t.Fatalf("Stop after exit: %v", err)
	}
	if err := p.Kill(); err != nil {
		t.Fatalf("Kill after exit: %v", err)
	}
	if err := p.Signal(syscall.SIGTERM); !errors.Is(err, os.ErrProcessDone) {
		t.Fatalf("Signal after exit = %v, want os.ErrProcessDone", err)
	}
}

// TestStopKillsAChildThatDoesNotExit: when the context ends before the
// child exits, Stop kills it (SIGKILL, not the signal it ignored) and says
// so.
func TestStopKillsAChildThatDoesNotExit(t *testing.T) {
	p, _ := start(t, "deaf", childproc.Options{})
	if _, err := p.WaitLine(boundCtx(t), nil); err != nil { // "ready": SIGTERM is ignored from now on
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	err := p.Stop(ctx, syscall.SIGTERM)
	if !errors.Is(err, context.Canceled) || !strings.Contains(err.Error(), "did not exit") {
		t.Fatalf("Stop = %v, want a 'did not exit' error wrapping context.Canceled", err)
	}
	if !p.Exited() || p.ExitCode() != -1 {
		t.Fatalf("after Stop: exited %t, code %d; want exited by a signal", p.Exited(), p.ExitCode())
	}
	var ee *exec.ExitError
	if !errors.As(p.Err(), &ee) {
		t.Fatalf("Err = %v, want an *exec.ExitError", p.Err())
	}
	if ws, ok := ee.Sys().(syscall.WaitStatus); !ok || ws.Signal() != syscall.SIGKILL {
		t.Fatalf("ended by %v, want SIGKILL", ee.Sys())
	}
}

// TestWaitLineFailsWhenTheChildExitsFirst: the error wraps ErrExited and
// says how the child ended; stderr went where the caller put it.
func TestWaitLineFailsWhenTheChildExitsFirst(t *testing.T) {
	p, errOut := start(t, "fail", childproc.Options{})
	_, err := p.WaitLine(boundCtx(t), nil)
	if !errors.Is(err, childproc.ErrExited) || !strings.Contains(err.Error(), "exit status 7") {
		t.Fatalf("WaitLine = %v, want ErrExited with exit status 7", err)
	}
	if code := p.ExitCode(); code != 7 {
		t.Fatalf("ExitCode = %d, want 7", code)
	}
	if !strings.Contains(errOut.String(), "failing on purpose") {
		t.Fatalf("stderr %q", errOut.String())
	}
}

// TestWaitLineWhenStdoutClosesFirst: a child that closes stdout and exits
// later: Lines closes; WaitLine ends with its context while the child runs
// on, and reports ErrExited once it has exited.
func TestWaitLineWhenStdoutClosesFirst(t *testing.T) {
	p, _ := start(t, "close", childproc.Options{})
	for range p.Lines() { // until the child closes its stdout
	}
	if p.Exited() {
		t.Fatal("exited before SIGTERM")
	}
	// While it runs on, WaitLine ends with its context, not ErrExited.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := p.WaitLine(ctx, nil); !errors.Is(err, context.Canceled) || errors.Is(err, childproc.ErrExited) {
		t.Fatalf("WaitLine while the child runs on = %v, want context.Canceled and not ErrExited", err)
	}
	if err := p.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	_, err := p.WaitLine(boundCtx(t), nil)
	if !errors.Is(err, childproc.ErrExited) || !strings.Contains(err.Error(), "exit status 3") {
		t.Fatalf("WaitLine = %v, want ErrExited with exit status 3", err)
	}
}

// TestWaitLineEndsWithItsContext: WaitLine on a silent child ends with
// the context, and leaves the child running.
func TestWaitLineEndsWithItsContext(t *testing.T) {
	p, _ := start(t, "silent", childproc.Options{})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := p.WaitLine(ctx, nil); !errors.Is(err, context.Canceled) {
		t.Fatalf("WaitLine = %v, want context.Canceled", err)
	}
	if p.Exited() {
		t.Fatal("WaitLine ended the child")
	}
	if err := p.Kill(); err != nil {
		t.Fatal(err)
	}
	if p.ExitCode() != -1 {
		t.Fatalf("ExitCode after Kill = %d, want -1", p.ExitCode())
	}
}

// TestUnreadLinesAreDroppedNotBlocking: with nobody reading, Lines keeps
// LineBuffer lines and drops the rest; the child is not held up and the
// stdout copy has every line.
func TestUnreadLinesAreDroppedNotBlocking(t *testing.T) {
	var out bytes.Buffer
	p, _ := start(t, "many", childproc.Options{Stdout: &out, LineBuffer: 4})
	if err := p.Err(); err != nil {
		t.Fatalf("child: %v", err)
	}
	var got []string
	for l := range p.Lines() {
		got = append(got, l)
	}
	if want := []string{"line 0", "line 1", "line 2", "line 3"}; strings.Join(got, ",") != strings.Join(want, ",") {
		t.Fatalf("Lines = %q, want %q", got, want)
	}
	if n := strings.Count(out.String(), "\n"); n != 200 {
		t.Fatalf("stdout copy has %d lines, want 200", n)
	}
}

// TestOverlongLineIsDrained: a line over the scanner's limit ends Lines,
// but stdout is still read to the end, so the child exits.
func TestOverlongLineIsDrained(t *testing.T) {
	var out bytes.Buffer
	p, _ := start(t, "long", childproc.Options{Stdout: &out})
	if err := p.Err(); err != nil {
		t.Fatalf("child: %v", err)
	}
	var got []string
	for l := range p.Lines() {
		got = append(got, l)
	}
	if len(got) != 1 || got[0] != "first" {
		t.Fatalf("Lines = %q, want only \"first\"", got)
	}
	if !strings.HasSuffix(out.String(), "\nafter\n") {
		t.Fatal("stdout copy lacks the line after the long one")
	}
}

// TestStartErrors: Start says which command it could not start and why.
func TestStartErrors(t *testing.T) {
	missing := exec.Command("/nonexistent/lifeline-childproc-test")
	withStdout := command("lines", &bytes.Buffer{})
	withStdout.Stdout = &bytes.Buffer{}
	tests := []struct {
		name string
		cmd  *exec.Cmd
		is   error
		says []string
	}{
		{"no such binary", missing, fs.ErrNotExist, []string{"childproc: start", "/nonexistent/lifeline-childproc-test"}},
		{"stdout already set", withStdout, nil, []string{"childproc:", "stdout", "Stdout already set"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := childproc.Start(tt.cmd, childproc.Options{})
			if err == nil {
				p.Kill()
				t.Fatal("Start succeeded")
			}
			if tt.is != nil && !errors.Is(err, tt.is) {
				t.Errorf("error %v does not wrap %v", err, tt.is)
			}
			for _, s := range tt.says {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("error %q lacks %q", err, s)
				}
			}
		})
	}
}

// TestConcurrentWaiters: several goroutines wait on one child; each sees
// the same end.
func TestConcurrentWaiters(t *testing.T) {
	p, _ := start(t, "lines", childproc.Options{})
	if _, err := p.WaitLine(boundCtx(t), nil); err != nil { // its SIGTERM handler is in place
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	codes := make([]int, 4)
	for i := range codes {
		wg.Go(func() {
			<-p.Done()
			_ = p.Err()
			codes[i] = p.ExitCode()
		})
	}
	if err := p.Stop(boundCtx(t), syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	for i, c := range codes {
		if c != 3 {
			t.Errorf("waiter %d saw exit code %d, want 3", i, c)
		}
	}
}

// ExampleStart runs a command, waits for the line it prints, and stops it.
func ExampleStart() {
	p, err := childproc.Start(exec.Command("sh", "-c", `echo "url=http://127.0.0.1:8080"; exec sleep 60`), childproc.Options{})
	if err != nil {
		fmt.Println(err)
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	line, err := p.WaitLine(ctx, func(l string) bool { return strings.HasPrefix(l, "url=") })
	fmt.Println(line, err)
	fmt.Println(p.Stop(ctx, syscall.SIGTERM), p.ExitCode())
	// Output:
	// url=http://127.0.0.1:8080 <nil>
	// <nil> -1
}
