package recovery

import (
	"context"
	"errors"
	"net"
	"os"

	"github.com/lifeline-bot/lifeline/core/conn"
	"github.com/lifeline-bot/lifeline/core/events"
	"github.com/lifeline-bot/lifeline/core/gateway"
	"github.com/lifeline-bot/lifeline/core/policy"
)

// Classify turns an error into the `error.*` variables of recovery
// conditions, with the kinds core/conn publishes:
//
//   - a gateway.End: its reason ("closed" becomes "close" with the close
//     code; "zombie", "invalid_session", "handshake_timeout", ...), fatal
//     for a fatal close code; for "invalid_session", resumable as op 9's d
//     said;
//   - a *conn.CloseError: "close" with its code, fatal as ClassifyClose says;
//   - conn.ErrSessionStartLimit: "identify_limit", fatal;
//   - a deadline (context.DeadlineExceeded, conn.ErrWatchdogTimeout,
//     ErrAttemptTimeout, a net timeout): "timeout";
//   - any other *net.OpError while dialing: "dial";
//   - anything else: "error".
//
// Message is err.Error(), which lifeline's own errors keep free of the
// token; source names the reporting component (e.g. "conn").
func Classify(source string, err error) policy.ErrorInfo {
	if err == nil {
		return policy.ErrorInfo{}
	}
	info := policy.ErrorInfo{Message: err.Error(), Source: source, Kind: "error"}
	var end gateway.End
	var ce *conn.CloseError
	var ne net.Error
	var oe *net.OpError
	switch {
	case errors.As(err, &end):
		info.Kind = end.Reason.String()
		info.Resumable = end.Reason == gateway.EndInvalidSession && end.Resumable
		if end.Reason == gateway.EndClosed {
			info.Kind, info.CloseCode = "close", end.CloseCode
			info.Fatal = conn.ClassifyClose(end.CloseCode).Fatal()
		}
		if errors.Is(err, conn.ErrSessionStartLimit) {
			info.Fatal = true
		}
	case errors.As(err, &ce):
		info.Kind, info.CloseCode, info.Fatal = "close", ce.Code, ce.Fatal()
	case errors.Is(err, conn.ErrSessionStartLimit):
		info.Kind, info.Fatal = "identify_limit", true
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, conn.ErrWatchdogTimeout),
		errors.Is(err, ErrAttemptTimeout), errors.Is(err, os.ErrDeadlineExceeded),
		errors.As(err, &ne) && ne.Timeout():
		info.Kind = "timeout"
	case errors.As(err, &oe) && oe.Op == "dial":
		info.Kind = "dial"
	}
	return info
}

// FailureFromEvent turns an ERROR_OCCURRED event into a Failure, so that
// an orchestrator can hand every error the core publishes to Engine.Handle.
// It reports false for any other event and for the Engine's own errors
// (Source "recovery"). Fatal errors are kept: the policy's conditions
// decide (the default rules never apply to them).
func FailureFromEvent(ev events.Event) (Failure, bool) {
	d, ok := ev.Data.(events.Error)
	if !ok || d.Source == Source {
		return Failure{}, false
	}
	return Failure{Error: policy.ErrorFromEvent(d), Shard: ev.Shard}, true
}
