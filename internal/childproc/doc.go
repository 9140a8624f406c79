// Package childproc runs one child process the way lifeline's harnesses
// need it: the child's standard output is read line by line as it comes
// (and, if asked, copied to a writer), and the child is reaped by a
// goroutine of its own, so that a caller can wait for a line the child
// prints (a URL, "ready"), signal it, and learn how it ended.
//
// It exists because the fleet demo (internal/fleetdemo, behind `lifeline
// demo --fleet`) and cmd/lifeline's process tests did this by hand, each
// in its own way. Doing it once also does it in the order os/exec asks:
// the reaper reads stdout to its end before it calls exec.Cmd.Wait (Wait
// closes the pipe, and a read racing it can lose the last lines).
//
// Behaviour:
//   - Start starts the command with its stdout piped to the reader; the
//     caller sets Path, Args, Env and Stderr on the exec.Cmd as usual,
//     and leaves Stdout nil.
//   - Each stdout line is offered to Lines, a channel of Options.LineBuffer
//     lines (default 64). A line that finds the channel full is dropped
//     from Lines (it still reaches Options.Stdout): a chatty child never
//     blocks on a reader that stopped listening. Lines is closed when
//     stdout ends.
//   - Done is closed once the child has exited and its stdout has been read
//     to the end; Err is then exec.Cmd.Wait's result (nil for exit status
//     0, an *exec.ExitError otherwise) and ExitCode the status (-1 when a
//     signal ended it).
//   - WaitLine waits for the first line that matches, failing with
//     ErrExited when the child exits first. Stop sends a signal and waits,
//     killing the child (SIGKILL) when its context ends first. Kill kills
//     and waits. None of them leaves the child unreaped.
package childproc
