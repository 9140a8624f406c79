// Package flight is lifeline's flight recorder and its replay: it writes what
// the running system saw, one JSON line per tick, and plays a recording back
// through a policy to show what that policy would have done.
//
// # Recording
//
// A Recorder is off by default: nothing is written unless one is opened
// (Open) and fed, typically from orchestrator.Config.OnTick and an event
// listener. Each tick becomes one Line: the time (from the injected clock),
// the metrics.Snapshot, the live Decision and level, the events published
// since the previous tick (at most Settings.MaxEvents of them, the rest
// counted in Dropped) and the markers set with Mark. A Snapshot has no
// slices or maps, so a line is about 0.8 KB and a minute at one tick per
// second about 50 KB.
//
// Lines go to Settings.Path. When the next line would make that file larger
// than MaxFileBytes, the file is renamed PATH.N (N counting up from 1) and a
// new one started; then the oldest rotated files are deleted until the
// recording, all files together, holds at most MaxTotalBytes:
//
//	size(PATH) + Σ size(PATH.N) <= MaxTotalBytes   after every line
//
// Opening a path that already has a current file rotates it first, so each
// run starts a new file and a crash's half-written line is never followed by
// new lines in the same file.
//
// # Reading
//
// ReadFile reads PATH.N in increasing N, then PATH. A last line without its
// newline (the writer was killed mid-write) is dropped and reported in
// Recording.Truncated; any other line that is not valid JSON is an error
// (ErrCorrupt) naming the file and line.
//
// # Replay
//
// Replay drives a fresh degrade.Engine, with a clock.Fake set to each line's
// time, through policy.Evaluate and Engine.ApplyDecision, the very calls the
// orchestrator's tick makes. Hysteresis and recovery_delay therefore behave
// as they did live. Before evaluating, the Snapshot's degradation view is
// replaced with the replay engine's own (a policy may read
// degradation.level), so a policy other than the recorded one sees its own
// level. A replay of a recording with the policy that produced it gives the
// live levels tick by tick.
//
// The Timeline lists each level change with the actions applied and rolled
// back, the recovery strategies the policy would choose for each recorded
// error, and a Summary: time spent at each level, the number of transitions,
// and flaps avoided — ticks where the policy's target was below the current
// level but the engine held it (recover condition not holding, or
// recovery_delay not yet served).
package flight
