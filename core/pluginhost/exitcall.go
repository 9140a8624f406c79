package pluginhost

import (
	"context"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// exitGrace bounds how long a call whose connection broke waits for the
// plugin's process to be reaped, so that the call's error can say why the
// process died ("exit status 3 (last output: ...)") rather than only that
// the connection closed. It is real time, like StartTimeout: it waits on a
// real process, and only after a call already failed.
const exitGrace = 250 * time.Millisecond

// exitDuringCall returns how p ended when a call to it failed with err
// because the process died (it has exited, or the connection broke — gRPC
// Unavailable — and it exits within exitGrace or before ctx ends), and ""
// when the process still runs.
func (p *process) exitDuringCall(ctx context.Context, err error) string {
	select {
	case <-p.runner.exited:
		return p.exitReason()
	default:
	}
	if status.Code(err) != codes.Unavailable {
		return ""
	}
	t := time.NewTimer(exitGrace)
	defer t.Stop()
	select {
	case <-p.runner.exited:
		return p.exitReason()
	case <-t.C:
	case <-ctx.Done():
	}
	return ""
}

// exitReason is how the exited process ended, with why the host killed it
// when it did. Call it after p.runner.exited is closed.
func (p *process) exitReason() string {
	reason := p.runner.exitReason()
	if k := p.killedFor.Load(); k != nil {
		reason = *k + "; " + reason
	}
	return reason
}
